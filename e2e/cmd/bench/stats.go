package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// figure is one line of the report.
type figure struct {
	Name  string
	Value float64
	Unit  string
	What  string
}

// target is a figure's goal from issue 6.
type target struct {
	atMost bool // else at least
	bound  float64
}

var targets = map[string]target{
	"ack_p99_added_ms_200": {true, 2},
	"ack_p99_ms_1000":      {true, 50},
	"grant_path_ratio":     {true, 1.15},
	"rss_idle_mb":          {true, 40},
	"ready_ms":             {true, 300},
	"audit_verify_per_s":   {false, 200000},
	"inventory_10k_ms":     {true, 100},
}

func (t target) String() string {
	if t.atMost {
		return "<= " + num(t.bound)
	}
	return ">= " + num(t.bound)
}

func (t target) met(v float64) bool {
	if t.atMost {
		return v <= t.bound
	}
	return v >= t.bound
}

// num prints a value with the precision that matters for it.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// writeTable prints the human table: figure, value, unit, target, met.
func writeTable(w io.Writer, figs []figure) {
	rows := [][]string{{"figure", "value", "unit", "target", "met", "what"}}
	for _, f := range figs {
		tg, met := "-", "-"
		if t, ok := targets[f.Name]; ok {
			tg, met = t.String(), "no"
			if t.met(f.Value) {
				met = "yes"
			}
		}
		rows = append(rows, []string{f.Name, num(f.Value), f.Unit, tg, met, f.What})
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	for n, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			if i == 1 { // values right-aligned
				fmt.Fprintf(&b, "%*s  ", width[i], c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", width[i], c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if n == 0 {
			fmt.Fprintln(w, strings.Repeat("-", len(strings.TrimRight(b.String(), " "))))
		}
	}
}

// writeLines prints one machine-readable `name value` line per figure.
func writeLines(w io.Writer, figs []figure) error {
	for _, f := range figs {
		if _, err := fmt.Fprintf(w, "%s %s\n", f.Name, strconv.FormatFloat(f.Value, 'f', -1, 64)); err != nil {
			return err
		}
	}
	return nil
}

// quantile is the q-quantile (nearest rank) of ds, in milliseconds.
func quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	i = min(max(i, 0), len(s)-1)
	return ms(s[i])
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// round3 keeps machine lines short: three decimals are below the noise.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
