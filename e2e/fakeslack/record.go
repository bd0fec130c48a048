package fakeslack

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/secretbot/secretbot/e2e/internal/watch"
)

// Call is one Web API request. The token is never recorded.
type Call struct {
	Method string
	// Form holds form or query parameters (without "token").
	Form url.Values
	// JSON holds a JSON body, decoded.
	JSON map[string]any
	Time time.Time
	// Status is the HTTP status of a fault injected into the answer (0 when
	// none was), RetryAfter the Retry-After header sent with it.
	Status     int
	RetryAfter string
}

// Param returns a parameter from the form, or from the JSON body (strings
// as is, anything else as JSON).
func (c Call) Param(name string) string {
	if v := c.Form.Get(name); v != "" {
		return v
	}
	v, ok := c.JSON[name]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Message is a message the bot posted (or an ephemeral one), as it stands now.
type Message struct {
	Channel   string
	TS        string
	ThreadTS  string
	Ephemeral bool
	// User is who sees an ephemeral message.
	User   string
	Text   string
	Blocks json.RawMessage
	// Edits counts chat.update and replace_original calls.
	Edits    int
	Deleted  bool
	PostedAt time.Time
	EditedAt time.Time
}

// Response is one post to a response_url.
type Response struct {
	URL             string
	ResponseType    string
	Text            string
	Blocks          json.RawMessage
	ReplaceOriginal bool
	DeleteOriginal  bool
	Body            map[string]any
	Raw             []byte
	At              time.Time
}

// View is a modal opened (or updated) with views.open/push/update, or a Home tab.
type View struct {
	ID   string
	Type string // modal | home
	// User is who the view was opened for (from the trigger) or published to.
	User            string
	CallbackID      string
	PrivateMetadata string
	Blocks          json.RawMessage
	Raw             map[string]any
	At              time.Time
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	s.changed.Fire()
	observers.mu.Lock()
	fns := slices.Clone(observers.fns)
	observers.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
}

// observers are told of every Web API call any Server receives.
var observers struct {
	mu  sync.Mutex
	fns []func(Call)
}

// ObserveCalls registers fn to be told of every Web API call received by
// any Server in this process, for checks across a whole test suite (such
// as "every method the bot called is allowed by the manifest"). fn must be
// safe for concurrent use. The returned function unregisters it.
func ObserveCalls(fn func(Call)) (stop func()) {
	observers.mu.Lock()
	defer observers.mu.Unlock()
	observers.fns = append(observers.fns, fn)
	i := len(observers.fns) - 1
	return func() {
		observers.mu.Lock()
		defer observers.mu.Unlock()
		if i < len(observers.fns) {
			observers.fns[i] = func(Call) {}
		}
	}
}

// Calls returns every Web API call so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsTo returns the calls to one method.
func (s *Server) CallsTo(method string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// WaitCall waits for a call to method that match accepts (nil accepts any).
func (s *Server) WaitCall(method string, match func(Call) bool, timeout time.Duration) (Call, error) {
	var got Call
	ok := watch.Until(&s.changed, timeout, func() bool {
		for _, c := range s.CallsTo(method) {
			if match == nil || match(c) {
				got = c
				return true
			}
		}
		return false
	})
	if !ok {
		return Call{}, fmt.Errorf("fakeslack: no matching %s call within %v (%d calls to it)", method, timeout, len(s.CallsTo(method)))
	}
	return got, nil
}

// Messages returns every message posted so far (updated in place by edits).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = *m
	}
	return out
}

// Message returns the message at channel/ts.
func (s *Server) Message(channel, ts string) (Message, bool) {
	for _, m := range s.Messages() {
		if m.Channel == normalizeChannel(channel) && m.TS == ts {
			return m, true
		}
	}
	return Message{}, false
}

// WaitMessage waits for a message that match accepts.
func (s *Server) WaitMessage(match func(Message) bool, timeout time.Duration) (Message, error) {
	var got Message
	ok := watch.Until(&s.changed, timeout, func() bool {
		for _, m := range s.Messages() {
			if match(m) {
				got = m
				return true
			}
		}
		return false
	})
	if !ok {
		return Message{}, fmt.Errorf("fakeslack: no matching message within %v (%d messages)", timeout, len(s.Messages()))
	}
	return got, nil
}

// InChannel matches non-ephemeral messages in a channel (a user ID means
// the DM with that user).
func InChannel(channel string) func(Message) bool {
	channel = normalizeChannel(channel)
	return func(m Message) bool { return !m.Ephemeral && m.Channel == channel }
}

// DMChannel is the id of the bot's DM with a user.
func DMChannel(user string) string {
	if user == "" {
		return ""
	}
	return "D" + user[1:]
}

// normalizeChannel maps a user ID to the DM channel, as Slack does when a
// message is posted to a user.
func normalizeChannel(ch string) string {
	if len(ch) > 1 && (ch[0] == 'U' || ch[0] == 'W') {
		return DMChannel(ch)
	}
	return ch
}

// Responses returns the posts to one response_url ("" for all).
func (s *Server) Responses(responseURL string) []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Response
	for _, r := range s.responses {
		if responseURL == "" || r.URL == responseURL {
			out = append(out, r)
		}
	}
	return out
}

// WaitResponse waits for a post to responseURL that match accepts (nil accepts any).
func (s *Server) WaitResponse(responseURL string, timeout time.Duration, match func(Response) bool) (Response, error) {
	var got Response
	ok := watch.Until(&s.changed, timeout, func() bool {
		for _, r := range s.Responses(responseURL) {
			if match == nil || match(r) {
				got = r
				return true
			}
		}
		return false
	})
	if !ok {
		return Response{}, fmt.Errorf("fakeslack: no matching response to %s within %v (%d posts)", responseURL, timeout, len(s.Responses(responseURL)))
	}
	return got, nil
}

// Views returns every modal opened or updated, in order.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]View(nil), s.views...)
}

// HomeView returns the Home tab last published for a user.
func (s *Server) HomeView(user string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.homes[user]
	return v, ok
}

// WaitView waits for a modal that match accepts.
func (s *Server) WaitView(match func(View) bool, timeout time.Duration) (View, error) {
	var got View
	ok := watch.Until(&s.changed, timeout, func() bool {
		for _, v := range s.Views() {
			if match(v) {
				got = v
				return true
			}
		}
		return false
	})
	if !ok {
		return View{}, fmt.Errorf("fakeslack: no matching view within %v", timeout)
	}
	return got, nil
}
