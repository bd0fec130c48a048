package fakeslack_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/secretbot/secretbot/e2e/fakeslack"
)

const wait = 5 * time.Second

// client runs a slack-go Socket Mode client against s. Every request is
// passed to handle, which returns the ack payload, or skip=true to not ack.
type client struct {
	api  *slack.Client
	sm   *socketmode.Client
	reqs chan socketmode.Event
	done chan error
}

func startClient(t *testing.T, s *fakeslack.Server, handle func(socketmode.Event) (payload any, skip bool), opts ...socketmode.Option) *client {
	t.Helper()
	api := slack.New(s.BotToken(), slack.OptionAppLevelToken(s.AppToken()), slack.OptionAPIURL(s.APIURL()+"/"))
	sm := socketmode.New(api, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{api: api, sm: sm, reqs: make(chan socketmode.Event, 100), done: make(chan error, 1)}
	go func() { c.done <- sm.RunContext(ctx) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-sm.Events:
				if ev.Request == nil || ev.Request.EnvelopeID == "" {
					continue
				}
				if handle != nil {
					p, skip := handle(ev)
					if skip {
						c.reqs <- ev
						continue
					}
					if p != nil {
						_ = sm.Ack(*ev.Request, p)
					} else {
						_ = sm.Ack(*ev.Request)
					}
				} else {
					_ = sm.Ack(*ev.Request)
				}
				c.reqs <- ev
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(wait):
			t.Error("socketmode client did not stop")
		}
	})
	return c
}

func (c *client) next(t *testing.T) socketmode.Event {
	t.Helper()
	select {
	case ev := <-c.reqs:
		return ev
	case <-time.After(wait):
		t.Fatal("no request reached the client")
	}
	return socketmode.Event{}
}

func TestSlashCommandAckAndResponseURL(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(100*time.Millisecond))
	s.AddUser(fakeslack.User{ID: "U0ALICE", Name: "alice", Email: "alice@lumi.test"})
	c := startClient(t, s, func(ev socketmode.Event) (any, bool) {
		return map[string]string{"response_type": "ephemeral", "text": "working on it"}, false
	})
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	envID, respURL := s.SendSlashCommand("U0ALICE", "whoami")
	payload, latency, err := s.WaitAck(envID, wait)
	if err != nil {
		t.Fatal(err)
	}
	if latency <= 0 || latency > wait {
		t.Errorf("latency = %v", latency)
	}
	var ack map[string]string
	if err := json.Unmarshal(payload, &ack); err != nil || ack["text"] != "working on it" {
		t.Errorf("ack payload = %s (%v)", payload, err)
	}
	ev := c.next(t)
	cmd, ok := ev.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("event data = %T", ev.Data)
	}
	if cmd.UserID != "U0ALICE" || cmd.UserName != "alice" || cmd.Text != "whoami" || cmd.Command != "/secrets" ||
		cmd.ResponseURL != respURL || cmd.TriggerID == "" || cmd.Token != fakeslack.VerificationToken || cmd.IsEnterpriseInstall {
		t.Errorf("slash command = %+v", cmd)
	}

	// The bot answers through the response_url.
	_, _, err = c.api.PostMessageContext(context.Background(), "", slack.MsgOptionText("done", false),
		slack.MsgOptionResponseURL(respURL, slack.ResponseTypeEphemeral))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.WaitResponse(respURL, wait, func(r fakeslack.Response) bool { return r.Text == "done" })
	if err != nil {
		t.Fatal(err)
	}
	if r.ResponseType != "ephemeral" {
		t.Errorf("response = %+v", r)
	}

	// A trigger_id opens one modal, once.
	mv := slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "request",
		Title: slack.NewTextBlockObject("plain_text", "Request", false, false)}
	if _, err := c.api.OpenViewContext(context.Background(), cmd.TriggerID, mv); err != nil {
		t.Fatal(err)
	}
	if _, err := c.api.OpenViewContext(context.Background(), cmd.TriggerID, mv); err == nil || err.Error() != "expired_trigger_id" {
		t.Errorf("second views.open err = %v", err)
	}
	if v, err := s.WaitView(func(v fakeslack.View) bool { return v.CallbackID == "request" }, wait); err != nil || v.User != "U0ALICE" {
		t.Errorf("view = %+v, %v", v, err)
	}
}

func TestRedeliverAfterMissingAck(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(100*time.Millisecond))
	first := true
	c := startClient(t, s, func(ev socketmode.Event) (any, bool) {
		skip := first
		first = false
		return nil, skip
	})
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	envID, _ := s.OpenHome("U0ALICE")
	ev := c.next(t)
	if _, _, err := s.WaitAck(envID, 300*time.Millisecond); err == nil {
		t.Fatal("unacked envelope reported as acked")
	}
	if err := s.Redeliver(envID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.WaitAck(envID, wait); err != nil {
		t.Fatal(err)
	}
	ev = c.next(t)
	if ev.Request.RetryAttempt != 1 || ev.Request.RetryReason != "timeout" {
		t.Errorf("redelivery = %+v", ev.Request)
	}
	api, ok := ev.Data.(slackevents.EventsAPIEvent)
	if !ok {
		t.Fatalf("data = %T", ev.Data)
	}
	if home, ok := api.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); !ok || home.User != "U0ALICE" {
		t.Errorf("inner event = %#v", api.InnerEvent.Data)
	}
	if acks := s.Acks(envID); len(acks) != 1 || acks[0].Attempt != 1 {
		t.Errorf("acks = %+v", acks)
	}
}

func TestReconnects(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(100*time.Millisecond), fakeslack.WithDisconnectGrace(200*time.Millisecond))
	startClient(t, s, nil)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	s.Disconnect("refresh_requested")
	if err := s.WaitOpened(2, wait); err != nil {
		t.Fatal(err)
	}
	s.DropConnection()
	if err := s.WaitOpened(3, wait); err != nil {
		t.Fatal(err)
	}
	// slack-go treats link_disabled like any reason; the fake keeps
	// apps.connections.open working, so only the bot can decide to stop.
	s.Disconnect("link_disabled")
	if err := s.WaitOpened(4, wait); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	if n := len(s.CallsTo("apps.connections.open")); n < 4 {
		t.Errorf("apps.connections.open calls = %d", n)
	}
}

func TestPingsKeepClientAlive(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ping      time.Duration
		reconnect bool
	}{
		{"pings", 100 * time.Millisecond, false},
		{"no pings", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeslack.New(t, fakeslack.WithPingInterval(tc.ping))
			startClient(t, s, nil, socketmode.OptionPingInterval(500*time.Millisecond))
			time.Sleep(1500 * time.Millisecond)
			if got := s.Opened() > 1; got != tc.reconnect {
				t.Errorf("opened %d connections, reconnect want %v", s.Opened(), tc.reconnect)
			}
		})
	}
}

func TestAuthFailStopsClient(t *testing.T) {
	s := fakeslack.New(t)
	s.AuthFail("invalid_auth")
	api := slack.New(s.BotToken(), slack.OptionAppLevelToken(s.AppToken()), slack.OptionAPIURL(s.APIURL()+"/"))
	if _, err := api.AuthTestContext(context.Background()); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("auth.test err = %v", err)
	}
	sm := socketmode.New(api)
	go func() {
		for range sm.Events {
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := sm.RunContext(ctx); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("RunContext err = %v", err)
	}
}

func TestClickSubmitAndEvents(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(100*time.Millisecond))
	s.AddUser(fakeslack.User{ID: "U0BOB", Name: "bob", Email: "bob@lumi.test"})
	c := startClient(t, s, nil)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	approve := slack.NewButtonBlockElement("approve", "grant-7", slack.NewTextBlockObject("plain_text", "Approve", false, false))
	deny := slack.NewButtonBlockElement("deny", "grant-7", slack.NewTextBlockObject("plain_text", "Deny", false, false))
	_, ts, err := c.api.PostMessageContext(ctx, "C0SECURITY", slack.MsgOptionText("request", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("", approve, deny)))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := s.Message("C0SECURITY", ts)
	if !ok {
		t.Fatal("message not recorded")
	}
	envID, respURL, err := s.ClickButton("U0BOB", m, "approve")
	if err != nil {
		t.Fatal(err)
	}
	ev := c.next(t)
	cb, ok := ev.Data.(slack.InteractionCallback)
	if !ok {
		t.Fatalf("data = %T", ev.Data)
	}
	if ev.Request.EnvelopeID != envID || cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U0BOB" ||
		len(cb.ActionCallback.BlockActions) != 1 || cb.ActionCallback.BlockActions[0].Value != "grant-7" ||
		cb.ActionCallback.BlockActions[0].ActionID != "approve" || cb.Container.MessageTs != ts ||
		cb.Channel.ID != "C0SECURITY" || cb.Message.Timestamp != ts || cb.ResponseURL != respURL {
		t.Errorf("callback = %+v", cb)
	}

	// The card is updated through chat.update.
	if _, _, _, err := c.api.UpdateMessageContext(ctx, "C0SECURITY", ts, slack.MsgOptionText("approved by bob", false)); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message("C0SECURITY", ts); m.Text != "approved by bob" || m.Edits != 1 {
		t.Errorf("updated message = %+v", m)
	}

	// A modal submission carries its state.
	input := slack.NewInputBlock("reason", slack.NewTextBlockObject("plain_text", "Reason", false, false), nil,
		slack.NewPlainTextInputBlockElement(nil, "reason_input"))
	v := fakeslack.View{ID: "V1", Type: "modal", CallbackID: "deny"}
	v.Blocks, _ = json.Marshal([]slack.Block{input})
	s.SubmitView("U0BOB", v, map[string]map[string]string{"reason": {"reason_input": "no ticket"}})
	ev = c.next(t)
	cb = ev.Data.(slack.InteractionCallback)
	if !ev.Request.AcceptsResponsePayload || cb.Type != slack.InteractionTypeViewSubmission || cb.View.CallbackID != "deny" ||
		cb.View.State.Values["reason"]["reason_input"].Value != "no ticket" {
		t.Errorf("submission = %+v", cb.View)
	}

	// A users_select reports the pick as selected_user, as Slack does.
	pick := slack.NewInputBlock("owner", slack.NewTextBlockObject("plain_text", "Owner", false, false), nil,
		slack.NewOptionsSelectBlockElement(slack.OptTypeUser, nil, "owner"))
	v = fakeslack.View{ID: "V2", Type: "modal", CallbackID: "register"}
	v.Blocks, _ = json.Marshal([]slack.Block{pick})
	s.SubmitView("U0BOB", v, map[string]map[string]string{"owner": {"owner": "U0ALICE"}})
	ev = c.next(t)
	cb = ev.Data.(slack.InteractionCallback)
	if got := cb.View.State.Values["owner"]["owner"]; got.SelectedUser != "U0ALICE" || got.SelectedOption.Value != "" {
		t.Errorf("users_select submission = %+v", got)
	}
}

func TestWebAPI(t *testing.T) {
	s := fakeslack.New(t)
	s.AddUser(fakeslack.User{ID: "U0ALICE", Name: "alice", Email: "alice@lumi.test"})
	s.AddUser(fakeslack.User{ID: "U0GUEST", Name: "guest", Email: "g@x.test", IsRestricted: true})
	s.AddGroup("platform-security", "S0PLATSEC", "U0ALICE")
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()+"/"))
	ctx := context.Background()

	at, err := api.AuthTestContext(ctx)
	if err != nil || at.UserID != fakeslack.BotUserID || at.TeamID != fakeslack.DefaultTeamID {
		t.Errorf("auth.test = %+v, %v", at, err)
	}
	u, err := api.GetUserInfoContext(ctx, "U0ALICE")
	if err != nil || u.Profile.Email != "alice@lumi.test" || u.Deleted || u.IsBot {
		t.Errorf("users.info = %+v, %v", u, err)
	}
	if g, err := api.GetUserInfoContext(ctx, "U0GUEST"); err != nil || !g.IsRestricted {
		t.Errorf("guest = %+v, %v", g, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U0NOBODY"); err == nil || err.Error() != "user_not_found" {
		t.Errorf("unknown user err = %v", err)
	}
	groups, err := api.GetUserGroupsContext(ctx, slack.GetUserGroupsOptionIncludeUsers(true))
	if err != nil || len(groups) != 1 || groups[0].Handle != "platform-security" || len(groups[0].Users) != 1 {
		t.Errorf("usergroups.list = %+v, %v", groups, err)
	}
	members, err := api.GetUserGroupMembersContext(ctx, "S0PLATSEC")
	if err != nil || len(members) != 1 || members[0] != "U0ALICE" {
		t.Errorf("usergroups.users.list = %v, %v", members, err)
	}
	ch, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0ALICE"}})
	if err != nil || ch.ID != fakeslack.DMChannel("U0ALICE") {
		t.Errorf("conversations.open = %+v, %v", ch, err)
	}
	if _, _, err := api.PostMessageContext(ctx, "U0ALICE", slack.MsgOptionText("your grant", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitMessage(fakeslack.InChannel("U0ALICE"), wait); err != nil {
		t.Error(err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C0GENERAL", "U0ALICE", slack.MsgOptionText("only you", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U0ALICE",
		View: slack.HomeTabViewRequest{Type: slack.VTHomeTab}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.HomeView("U0ALICE"); !ok {
		t.Error("home view not recorded")
	}
	call, err := s.WaitCall("chat.postEphemeral", func(c fakeslack.Call) bool { return c.Param("user") == "U0ALICE" }, wait)
	if err != nil || call.Form.Get("token") != "" {
		t.Errorf("call = %+v, %v", call, err)
	}

	bad := slack.New("xoxb-test-wrong", slack.OptionAPIURL(s.APIURL()+"/"))
	if _, err := bad.AuthTestContext(ctx); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("wrong token err = %v", err)
	}

	s.SetFailure("chat.postMessage", 429)
	_, _, err = api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Errorf("rate limited err = %v", err)
	}
	s.SetFailure("chat.postMessage", 0)
	s.SetError("chat.postMessage", "channel_not_found")
	if _, _, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false)); err == nil || err.Error() != "channel_not_found" {
		t.Errorf("error reply err = %v", err)
	}
}

func TestWithRedeliveryRetriesUnackedOnTimeout(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(100*time.Millisecond), fakeslack.WithRedelivery(200*time.Millisecond))
	first := true
	c := startClient(t, s, func(ev socketmode.Event) (any, bool) {
		skip := first
		first = false
		return nil, skip
	})
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	envID, _ := s.SendSlashCommand("U0ALICE", "whoami")
	if ev := c.next(t); ev.Request.RetryAttempt != 0 {
		t.Fatalf("first delivery = %+v", ev.Request)
	}
	// Not acked: it comes again by itself, and once acked, no more.
	if ev := c.next(t); ev.Request.RetryAttempt != 1 || ev.Request.RetryReason != "timeout" {
		t.Fatalf("redelivery = %+v", ev.Request)
	}
	if _, _, err := s.WaitAck(envID, wait); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := s.Redelivered(); n != 1 {
		t.Errorf("%d redeliveries, want 1", n)
	}
}

func TestStalledConnectionLosesFramesUntilReplaced(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(100*time.Millisecond), fakeslack.WithRedelivery(time.Hour))
	c := startClient(t, s, nil)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	s.Stall()
	s.SendHello() // lost too
	envID, _ := s.SendSlashCommand("U0ALICE", "whoami")
	select {
	case ev := <-c.reqs:
		t.Fatalf("a frame crossed a stalled connection: %+v", ev.Request)
	case <-time.After(300 * time.Millisecond):
	}
	// The client gives up on the silent connection (here, the test drops
	// it): the unacked envelope comes again on the next connection.
	s.DropConnection()
	if ev := c.next(t); ev.Request.EnvelopeID != envID || ev.Request.RetryAttempt != 1 {
		t.Fatalf("after reconnecting got %+v", ev.Request)
	}
	if _, _, err := s.WaitAck(envID, wait); err != nil {
		t.Fatal(err)
	}
}
