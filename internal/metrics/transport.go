package metrics

import (
	"net/http"
	"time"
)

// Calls counts and times outbound calls to one integration.
type Calls struct {
	Total    *CounterVec   // labels: integration, outcome
	Duration *HistogramVec // labels: integration
}

// NewCalls registers the integration call series.
func NewCalls(r *Registry) *Calls {
	return &Calls{
		Total: r.Counter("secretbot_integration_calls_total",
			"Calls to outside systems by integration and outcome.", "integration", "outcome"),
		Duration: r.Histogram("secretbot_integration_call_duration_seconds",
			"Latency of calls to outside systems.", DefaultLatencyBuckets, "integration"),
	}
}

// Transport wraps base so every request to the named integration is counted.
// Only the outcome class is recorded, never a URL: URLs can carry secrets.
func (c *Calls) Transport(integration string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{calls: c, name: integration, base: base}
}

type transport struct {
	calls *Calls
	name  string
	base  http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.calls.Duration.Observe(time.Since(start).Seconds(), t.name)
	t.calls.Total.Inc(t.name, Outcome(resp, err))
	return resp, err
}

// Outcome classifies a call the way retry decisions need it.
func Outcome(resp *http.Response, err error) string {
	switch {
	case err != nil:
		return "error"
	case resp.StatusCode == http.StatusTooManyRequests:
		return "rate_limited"
	case resp.StatusCode >= 500:
		return "server_error"
	case resp.StatusCode >= 400:
		return "client_error"
	default:
		return "ok"
	}
}

// WithBase returns the same instrumentation around another base transport
// (the Vault client rebuilds its transport to trust a private CA).
func (t *transport) WithBase(base http.RoundTripper) http.RoundTripper {
	return &transport{calls: t.calls, name: t.name, base: base}
}
