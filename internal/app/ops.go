package app

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/secretbot/secretbot/internal/metrics"
)

// appMetrics are the series the bot exports on /metrics.
type appMetrics struct {
	reg           *metrics.Registry
	received      *metrics.CounterVec
	acked         *metrics.CounterVec
	duplicates    *metrics.CounterVec
	ackLatency    *metrics.HistogramVec
	handlerErrors *metrics.CounterVec
	delivered     *metrics.CounterVec
	calls         *metrics.Calls
}

func newAppMetrics() *appMetrics {
	r := metrics.NewRegistry()
	return &appMetrics{
		reg:        r,
		received:   r.Counter("secretbot_envelopes_received_total", "Socket Mode envelopes received, by type.", "type"),
		acked:      r.Counter("secretbot_envelopes_acked_total", "Socket Mode envelopes acked, by type.", "type"),
		duplicates: r.Counter("secretbot_envelopes_duplicate_total", "Redelivered envelopes recognised and not processed again."),
		ackLatency: r.Histogram("secretbot_ack_latency_seconds", "Time from reading an envelope to writing its ack.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 3}),
		handlerErrors: r.Counter("secretbot_handler_errors_total", "Handler failures, by kind.", "kind"),
		delivered:     r.Counter("secretbot_outbox_deliveries_total", "Outbox delivery attempts, by kind and result.", "kind", "result"),
		calls:         metrics.NewCalls(r),
	}
}

// readiness reports why the bot is not ready, or "" when it is.
type readiness func(ctx context.Context) string

// opsServer serves /healthz, /readyz and /metrics.
func opsServer(m *appMetrics, ready readiness) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if why := ready(ctx); why != "" {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.reg.WriteText(w)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// listen opens the ops address before anything else starts, so a port
// already in use is reported at once.
func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
