package fakeslack_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/secretbot/secretbot/e2e/fakeslack"
)

// dial opens a websocket the way slack-go does, without slack-go.
func dial(t *testing.T, s *fakeslack.Server) *websocket.Conn {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"/apps.connections.open", nil)
	req.Header.Set("Authorization", "Bearer "+s.AppToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var open struct {
		OK  bool   `json:"ok"`
		URL string `json:"url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&open); err != nil || !open.OK {
		t.Fatalf("apps.connections.open: %+v %v", open, err)
	}
	c, _, err := websocket.DefaultDialer.Dial(open.URL, http.Header{"Origin": {"https://api.slack.com"}})
	if err != nil {
		t.Fatal(err)
	}
	// A ticket works once.
	if _, _, err := websocket.DefaultDialer.Dial(open.URL, nil); err == nil {
		t.Error("second dial with the same ticket succeeded")
	}
	var hello map[string]any
	if err := c.ReadJSON(&hello); err != nil || hello["type"] != "hello" {
		t.Fatalf("hello = %v, %v", hello, err)
	}
	return c
}

func TestOversizeAckDroppedAndTokenPlaces(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(0))
	c := dial(t, s)
	defer c.Close()
	envID, _ := s.SendSlashCommand("U0ALICE", "help")
	var env map[string]any
	if err := c.ReadJSON(&env); err != nil || env["envelope_id"] != envID || env["type"] != "slash_commands" {
		t.Fatalf("envelope = %v, %v", env, err)
	}
	big := map[string]any{"envelope_id": envID, "payload": map[string]string{"text": strings.Repeat("x", 21*1024)}}
	if err := c.WriteJSON(big); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.WaitAck(envID, 300*time.Millisecond); err == nil {
		t.Error("a 21 KB ack counted")
	}
	if len(s.DroppedAcks()) != 1 {
		t.Errorf("dropped = %d", len(s.DroppedAcks()))
	}

	for name, set := range map[string]func(http.Header, url.Values){
		"bearer": func(h http.Header, _ url.Values) { h.Set("Authorization", "Bearer "+s.BotToken()) },
		"body":   func(_ http.Header, v url.Values) { v.Set("token", s.BotToken()) },
	} {
		v := url.Values{"channel": {"C0GENERAL"}, "text": {name}}
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		set(h, v)
		req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"/chat.postMessage", strings.NewReader(v.Encode()))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out["ok"] != true {
			t.Errorf("%s: reply %v", name, out)
		}
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s := fakeslack.New(t, fakeslack.WithPingInterval(10*time.Millisecond))
		c := dial(t, s)
		defer c.Close()
		s.Disconnect("warning")
		s.Close()
	}()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after Close\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
