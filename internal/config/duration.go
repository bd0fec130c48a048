package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DurationAccepted says which durations ParseDuration takes; error messages
// and the configuration reference repeat it.
const DurationAccepted = "a number and a unit, combined largest first: 30m, 2h, 1h30m, 7d, 1d12h (units d, h, m, s)"

const day = 24 * time.Hour

var errTooLong = errors.New("longer than about 292 years")

// ParseDuration parses a duration the way people write one: Go's syntax
// ("30m", "2h", "1h30m", "90s") plus days ("7d", "1d12h", "1.5d"). Signs are
// refused: a lifetime or interval is never negative. Surrounding spaces are
// ignored. The error repeats the input (shortened) and says what is accepted.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("empty duration: use %s", DurationAccepted)
	}
	if strings.ContainsAny(in, "+-") {
		return 0, fmt.Errorf("invalid duration %s: no sign is accepted; use %s", quote(in), DurationAccepted)
	}
	d, err := parseDays(in)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %s: use %s", quote(in), DurationAccepted)
	}
	return d, nil
}

// parseDays splits off the "Nd" part, if any, and leaves the rest to
// time.ParseDuration. Days must lead ("1d12h"); "12h1d" is refused.
func parseDays(s string) (time.Duration, error) {
	i := strings.IndexByte(s, 'd')
	if i < 0 {
		return time.ParseDuration(s)
	}
	num, rest := s[:i], s[i+1:]
	if num == "" || strings.ContainsFunc(num, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }) {
		return 0, errors.New("days must come first")
	}
	// Multiplying the hours as a Duration keeps "1.5d" exact (36h).
	h, err := time.ParseDuration(num + "h")
	if err != nil {
		return 0, err
	}
	if h > math.MaxInt64/24 {
		return 0, errTooLong
	}
	d := h * 24
	if rest == "" {
		return d, nil
	}
	r, err := time.ParseDuration(rest)
	if err != nil {
		return 0, err
	}
	if r > math.MaxInt64-d { // the sum would wrap around to a negative duration
		return 0, errTooLong
	}
	return d + r, nil
}

// quote shortens s for an error message: a duration is never a credential,
// but a long input need not be repeated in full.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}

// UnmarshalYAML reads a duration written as text ("2h", "7d"). A bare number
// is refused: it would be ambiguous between seconds and hours.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("a duration must be a single value: use %s", DurationAccepted)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in the form String gives, so a dumped
// configuration loads again.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats with days when the value is a day or longer ("1d12h"), and
// drops zero minutes and seconds ("2h", not "2h0m0s").
func (d Duration) String() string {
	v := time.Duration(d)
	if v <= 0 {
		return v.String()
	}
	var b strings.Builder
	if days := v / day; days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		v -= days * day
		if v == 0 {
			return b.String()
		}
	}
	s := v.String()
	if strings.HasSuffix(s, "m0s") { // "1h30m0s" -> "1h30m"
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") { // "2h0m" -> "2h"
		s = s[:len(s)-2]
	}
	b.WriteString(s)
	return b.String()
}
