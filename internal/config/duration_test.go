package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "30m", want: 30 * time.Minute},
		{in: "2h", want: 2 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "90s", want: 90 * time.Second},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "1d30m", want: 24*time.Hour + 30*time.Minute},
		{in: " 4h ", want: 4 * time.Hour},
		{in: "0", want: 0},
		{in: "", err: "empty duration"},
		{in: "600", err: `invalid duration "600"`},
		{in: "2w", err: `invalid duration "2w"`},
		{in: "12h1d", err: `invalid duration "12h1d"`},
		{in: "d", err: "invalid duration"},
		{in: "1dd", err: "invalid duration"},
		{in: "-1h", err: "no sign is accepted"},
		{in: "+1h", err: "no sign is accepted"},
		{in: "10 minutes", err: "invalid duration"},
		{in: "99999999999d", err: "invalid duration"},
		{in: strings.Repeat("9", 60), err: "..."},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
				}
				if !strings.Contains(err.Error(), "7d") {
					t.Errorf("error does not say what is accepted: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{30 * time.Second, "30s"},
		{10 * time.Second, "10s"},
		{time.Minute, "1m"},
		{90 * time.Minute, "1h30m"},
		{2 * time.Hour, "2h"},
		{12*time.Hour + 5*time.Second, "12h0m5s"},
		{24 * time.Hour, "1d"},
		{36 * time.Hour, "1d12h"},
		{7 * 24 * time.Hour, "7d"},
		{500 * time.Millisecond, "500ms"},
		{-time.Minute, "-1m0s"},
	}
	for _, tc := range tests {
		if got := Duration(tc.d).String(); got != tc.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.d, got, tc.want)
		}
		if tc.d <= 0 {
			continue
		}
		// What String prints parses back to the same value.
		if back, err := ParseDuration(Duration(tc.d).String()); err != nil || back != tc.d {
			t.Errorf("round trip of %v: %v, %v", tc.d, back, err)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	tests := []struct {
		doc  string
		want time.Duration
		err  bool
	}{
		{doc: "ttl: 7d", want: 7 * 24 * time.Hour},
		{doc: "ttl: 1h30m", want: 90 * time.Minute},
		{doc: `ttl: "1d12h"`, want: 36 * time.Hour},
		{doc: "ttl: 3600", err: true},
		{doc: "ttl: [1h]", err: true},
		{doc: "ttl: soon", err: true},
	}
	for _, tc := range tests {
		var v struct {
			TTL Duration `yaml:"ttl"`
		}
		err := yaml.Unmarshal([]byte(tc.doc), &v)
		if (err != nil) != tc.err || (!tc.err && v.TTL.D() != tc.want) {
			t.Errorf("%s: got %v, %v", tc.doc, v.TTL, err)
		}
	}

	out, err := yaml.Marshal(map[string]Duration{"ttl": Duration(36 * time.Hour)})
	if err != nil || string(out) != "ttl: 1d12h\n" {
		t.Errorf("Marshal = %q, %v", out, err)
	}
}
