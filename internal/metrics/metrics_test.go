package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTextFormat(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("x_total", "Things.", "kind")
	c.Inc("a")
	c.Add(2, `q"uote`)
	h := r.Histogram("lat_seconds", "Latency.", []float64{0.1, 1})
	h.Observe(0.05)
	h.Observe(0.5)
	h.Observe(5)
	var b strings.Builder
	r.WriteText(&b)
	want := []string{
		"# TYPE x_total counter",
		`x_total{kind="a"} 1`,
		`x_total{kind="q\"uote"} 2`,
		"# TYPE lat_seconds histogram",
		`lat_seconds_bucket{le="0.1"} 1`,
		`lat_seconds_bucket{le="1"} 2`,
		`lat_seconds_bucket{le="+Inf"} 3`,
		"lat_seconds_sum 5.55",
		"lat_seconds_count 3",
	}
	for _, w := range want {
		if !strings.Contains(b.String(), w+"\n") {
			t.Errorf("missing %q in\n%s", w, b.String())
		}
	}
}

func TestTransportCountsOutcomes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/429":
			w.WriteHeader(429)
		case "/500":
			w.WriteHeader(500)
		case "/404":
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	calls := NewCalls(NewRegistry())
	hc := &http.Client{Transport: calls.Transport("vault", nil)}
	for _, p := range []string{"/", "/429", "/500", "/404"} {
		resp, err := hc.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for outcome, want := range map[string]float64{"ok": 1, "rate_limited": 1, "server_error": 1, "client_error": 1} {
		if got := calls.Total.Value("vault", outcome); got != want {
			t.Errorf("%s = %v, want %v", outcome, got, want)
		}
	}
	if calls.Duration.Count("vault") != 4 {
		t.Errorf("duration count = %d", calls.Duration.Count("vault"))
	}
	if Outcome(nil, errors.New("x")) != "error" {
		t.Error("network error not classified")
	}
}
