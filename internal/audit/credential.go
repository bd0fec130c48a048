package audit

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// ErrCredential is returned by Append when an event's text looks like it
// contains a token. Keeping credentials out is the callers' job; this is
// defence in depth, and the error never repeats the offending text.
var ErrCredential = errors.New("audit: refusing to record text that looks like a credential")

// credentialPatterns are the token shapes refused in events (and masked by
// Redact). Each is specific enough not to catch ordinary words. lit is text
// every match contains: checked first, it skips the regexp for almost all
// text (patterns starting with \b get no literal-prefix speed-up from
// regexp, and scanning every outbox message and audit event with all seven
// was a quarter of the daily reminder run over 10,000 secrets).
var credentialPatterns = []struct {
	name, lit string
	re        *regexp.Regexp
}{
	{"Slack token", "xox", regexp.MustCompile(`xox[abposr]-[A-Za-z0-9-]*`)},
	{"Slack app token", "xapp-", regexp.MustCompile(`xapp-[A-Za-z0-9-]*`)},
	{"Vault token", "hv", regexp.MustCompile(`hv[sbr]\.[A-Za-z0-9_-]+`)},
	{"legacy Vault token", "s.", regexp.MustCompile(`\bs\.[A-Za-z0-9]{24,}`)},
	{"bearer credential", "Bearer", regexp.MustCompile(`\bBearer\s+\S+`)},
	{"Atlassian API token", "ATATT", regexp.MustCompile(`\bATATT[A-Za-z0-9_=-]{20,}`)},
	{"private key", "-----BEGIN ", regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)},
}

// LooksLikeCredential reports whether s contains text shaped like a token.
func LooksLikeCredential(s string) bool {
	_, found := credentialKind(s)
	return found
}

func credentialKind(s string) (string, bool) {
	for _, p := range credentialPatterns {
		if strings.Contains(s, p.lit) && p.re.MatchString(s) {
			return p.name, true
		}
	}
	return "", false
}

// Redact replaces anything in s shaped like a token with "[redacted]", for
// free text (error messages) that must be kept but must not carry a secret.
func Redact(s string) string {
	for _, p := range credentialPatterns {
		if strings.Contains(s, p.lit) {
			s = p.re.ReplaceAllString(s, "[redacted]")
		}
	}
	return s
}

func checkCredentials(e Event) error {
	fields := []struct{ name, v string }{
		{"actor", e.Actor}, {"action", e.Action}, {"scope", e.Scope},
		{"secret", e.Secret}, {"outcome", e.Outcome}, {"reason", e.Reason},
	}
	keys := make([]string, 0, len(e.Links))
	for k := range e.Links {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same field every time
	for _, k := range keys {
		fields = append(fields, struct{ name, v string }{"links." + k, k + "=" + e.Links[k]})
	}
	for _, f := range fields {
		if kind, ok := credentialKind(f.v); ok {
			return fmt.Errorf("%w: field %s contains a %s", ErrCredential, f.name, kind)
		}
	}
	return nil
}
