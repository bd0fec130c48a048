package fault

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTakePrefixLongestAndTimes(t *testing.T) {
	var s Set
	s.Put("/incidents", Fault{Status: 500})
	s.Put("/incidents/P1", Fault{Status: 429, Times: 1})
	tests := []struct {
		path   string
		status int
		ok     bool
	}{
		{"/incidents/P1", 429, true},
		{"/incidents/P1", 500, true}, // the one-shot fault is used up
		{"/incidents", 500, true},
		{"/oncalls", 0, false},
	}
	for _, tc := range tests {
		f, ok := s.TakePrefix(tc.path)
		if ok != tc.ok || f.Status != tc.status {
			t.Errorf("TakePrefix(%s) = %d, %v; want %d, %v", tc.path, f.Status, ok, tc.status, tc.ok)
		}
	}
	s.Clear("/incidents")
	if _, ok := s.Take("/incidents"); ok {
		t.Error("cleared fault still there")
	}
}

func TestApply(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if !Apply(w, r, Fault{Status: 429}, func(int) string { return `{"e":1}` }) {
		t.Fatal("not applied")
	}
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" || w.Body.String() != `{"e":1}` {
		t.Errorf("reply = %d %v %s", w.Code, w.Header(), w.Body)
	}
	if Apply(httptest.NewRecorder(), r, Fault{}, nil) {
		t.Error("a delay-only fault wrote a reply")
	}
}

func TestProxyDownRefusesUpForwards(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	p := NewProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	get := func() error {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + p.Addr)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Down()
	if err := get(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("proxy down: %v, want connection refused", err)
	}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	if err := get(); err != nil {
		t.Fatalf("proxy up again: %v", err)
	}
}
