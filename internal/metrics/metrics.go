// Package metrics is a small Prometheus text-format registry: counters and
// histograms with labels. The bot needs a dozen series; a client library
// would be the largest dependency in go.mod for that.
package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Registry holds every series the bot exports.
type Registry struct {
	mu    sync.Mutex
	order []string
	fams  map[string]family
}

type family interface {
	write(w io.Writer, name string)
	help() (string, string) // help text, type
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{fams: map[string]family{}} }

func (r *Registry) add(name string, f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.fams[name]; ok {
		panic("metrics: duplicate family " + name)
	}
	r.fams[name] = f
	r.order = append(r.order, name)
}

// WriteText writes every family in the Prometheus text exposition format.
func (r *Registry) WriteText(w io.Writer) {
	r.mu.Lock()
	names := append([]string(nil), r.order...)
	r.mu.Unlock()
	for _, n := range names {
		f := r.fams[n]
		h, t := f.help()
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", n, h, n, t)
		f.write(w, n)
	}
}

// CounterVec is a counter family with labels.
type CounterVec struct {
	helpText string
	labels   []string
	mu       sync.Mutex
	vals     map[string]*float64
}

// Counter registers a counter family.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{helpText: help, labels: labels, vals: map[string]*float64{}}
	r.add(name, c)
	return c
}

// Add adds v to the series with the given label values.
func (c *CounterVec) Add(v float64, labelValues ...string) {
	k := key(c.labels, labelValues)
	c.mu.Lock()
	p, ok := c.vals[k]
	if !ok {
		p = new(float64)
		c.vals[k] = p
	}
	*p += v
	c.mu.Unlock()
}

// Inc adds one.
func (c *CounterVec) Inc(labelValues ...string) { c.Add(1, labelValues...) }

// Value returns the current value of one series (for tests).
func (c *CounterVec) Value(labelValues ...string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.vals[key(c.labels, labelValues)]; ok {
		return *p
	}
	return 0
}

func (c *CounterVec) help() (string, string) { return c.helpText, "counter" }

func (c *CounterVec) write(w io.Writer, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range sortedKeys(c.vals) {
		fmt.Fprintf(w, "%s%s %s\n", name, k, fmtFloat(*c.vals[k]))
	}
}

// HistogramVec is a histogram family with labels.
type HistogramVec struct {
	helpText string
	labels   []string
	buckets  []float64
	mu       sync.Mutex
	vals     map[string]*hist
}

type hist struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

// DefaultLatencyBuckets suit calls measured in seconds, from 1 ms to 30 s.
var DefaultLatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Histogram registers a histogram family.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	h := &HistogramVec{helpText: help, labels: labels, buckets: buckets, vals: map[string]*hist{}}
	r.add(name, h)
	return h
}

// Observe records one value.
func (h *HistogramVec) Observe(v float64, labelValues ...string) {
	k := key(h.labels, labelValues)
	h.mu.Lock()
	s, ok := h.vals[k]
	if !ok {
		s = &hist{counts: make([]uint64, len(h.buckets))}
		h.vals[k] = s
	}
	for i, b := range h.buckets {
		if v <= b {
			s.counts[i]++
			break
		}
	}
	s.sum += v
	s.n++
	h.mu.Unlock()
}

// Count returns how many values one series has seen (for tests).
func (h *HistogramVec) Count(labelValues ...string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.vals[key(h.labels, labelValues)]; ok {
		return s.n
	}
	return 0
}

func (h *HistogramVec) help() (string, string) { return h.helpText, "histogram" }

func (h *HistogramVec) write(w io.Writer, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range sortedKeys(h.vals) {
		s := h.vals[k]
		var cum uint64
		for i, b := range h.buckets {
			cum += s.counts[i]
			fmt.Fprintf(w, "%s_bucket%s %d\n", name, withLE(k, fmtFloat(b)), cum)
		}
		fmt.Fprintf(w, "%s_bucket%s %d\n", name, withLE(k, "+Inf"), s.n)
		fmt.Fprintf(w, "%s_sum%s %s\n", name, k, fmtFloat(s.sum))
		fmt.Fprintf(w, "%s_count%s %d\n", name, k, s.n)
	}
}

// key renders label pairs as `{a="x",b="y"}`, which is also the series' map key.
func key(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		v := ""
		if i < len(values) {
			v = values[i]
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(escape(v))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func withLE(k, le string) string {
	if k == "" {
		return `{le="` + le + `"}`
	}
	return k[:len(k)-1] + `,le="` + le + `"}`
}

func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func fmtFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
