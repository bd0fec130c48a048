package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/secretbot/secretbot/handlers"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
	"github.com/secretbot/secretbot/internal/rotation"
)

type fuzzDirectory struct{}

func (d fuzzDirectory) PersonNow(ctx context.Context, id string) (policy.Person, error) {
	return d.Person(ctx, id)
}

func (fuzzDirectory) Person(_ context.Context, id string) (policy.Person, error) {
	if id == "" {
		return policy.Person{}, errors.New("users.info: user_not_found")
	}
	return policy.Person{SlackID: id, Email: "p@example.test", Groups: []string{"sre"}}, nil
}

// FuzzInteractivePayload runs an interactive payload through what the
// socket reader does before the ack: sanitize (what is stored), then the
// decode and the validation of a submitted modal. No panic; what is stored
// is JSON without the verification token, the clicked message's content or
// a typed secret value; the value held back is exactly the one typed; a
// validation answer is Slack's response_action JSON.
func FuzzInteractivePayload(f *testing.F) {
	f.Add([]byte(`{"type":"block_actions","token":"verif-test-1","user":{"id":"U1"},"channel":{"id":"C1"},` +
		`"message":{"ts":"1.2","text":"vault unwrap hvs.TESTwrap"},"container":{"message_ts":"1.2"},` +
		`"actions":[{"action_id":"grant_approve","value":"GK3D9QX2A"}]}`))
	f.Add([]byte(`{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"request_modal","private_metadata":"C1",` +
		`"state":{"values":{"scope":{"scope":{"type":"static_select","selected_option":{"value":"platform-ro"}}},` +
		`"ttl":{"ttl":{"type":"plain_text_input","value":"99d"}},"reason":{"reason":{"value":"<!channel>"}}}}}}`))
	f.Add([]byte(`{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"rotate_value_modal",` +
		`"state":{"values":{"value":{"value":{"type":"plain_text_input","value":"s3cr3t-TEST"}}}}}}`))
	f.Add([]byte(`{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"grant_deny_modal","private_metadata":"{\"grant\":",` +
		`"state":{"values":{"deny_reason":{"deny_reason":{"value":"  "}}}}}}`))
	f.Add([]byte(`{"view":{"state":{"values":{"value":[]}}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"View":{"State":{"values":{"value":{"value":{"Value":"s3cr3t-TEST"}}}}},"TOKEN":"verif-test-1"}`))
	cfg := &config.Config{Slack: config.Slack{Command: "/secrets"}, Scopes: []config.Scope{{Name: "platform-ro",
		MaxTTL: config.Duration(4 * time.Hour), Eligible: config.People{Groups: []string{"sre"}}, Evidence: []string{config.EvidenceApproval}}}}
	in := &inbox{handlers: &handlers.Handlers{Config: cfg, Directory: fuzzDirectory{},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	f.Fuzz(func(t *testing.T, payload []byte) {
		stored, value := sanitize(payload)
		typed := typedValue(payload)
		if value != "" && value != typed {
			t.Fatalf("held back %q, typed %q", value, typed)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(payload, &m) == nil && (m["token"] != nil || m["message"] != nil || m["view"] != nil) {
			var out map[string]json.RawMessage
			if err := json.Unmarshal(stored, &out); err != nil {
				t.Fatalf("stored payload is not a JSON object: %v\n%s", err, stored)
			}
			if _, ok := out["token"]; ok {
				t.Fatalf("the verification token is stored: %s", stored)
			}
			if msg, ok := out["message"]; ok {
				var rest map[string]json.RawMessage
				_ = json.Unmarshal(msg, &rest)
				delete(rest, "ts")
				delete(rest, "thread_ts")
				if len(rest) > 0 {
					t.Fatalf("the clicked message's content is stored: %s", msg)
				}
			}
		}
		var cb slack.InteractionCallback
		if json.Unmarshal(stored, &cb) == nil {
			// What a worker reads back from storage holds no typed value.
			if v := submission(cb).Values[rotation.ValueKey][rotation.ValueKey]; v != "" {
				t.Fatalf("the typed value %q is stored: %s", v, stored)
			}
		}
		ack := in.validate(context.Background(), envelope{Type: "interactive", Payload: payload})
		if ack != nil {
			var a struct {
				Action string            `json:"response_action"`
				Errors map[string]string `json:"errors"`
			}
			if err := json.Unmarshal(ack, &a); err != nil || a.Action != "errors" || len(a.Errors) == 0 {
				t.Fatalf("validation answer %s: %v", ack, err)
			}
		}
	})
}

// typedValue is the secret value field of a submitted view, as typed.
func typedValue(payload []byte) string {
	var p struct {
		View struct {
			State struct {
				Values map[string]map[string]struct {
					Value string `json:"value"`
				} `json:"values"`
			} `json:"state"`
		} `json:"view"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return ""
	}
	return p.View.State.Values[rotation.ValueKey][rotation.ValueKey].Value
}
