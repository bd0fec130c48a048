package audit

import "testing"

// The literal check before each pattern never changes an answer: every
// match of a pattern contains its literal.
func FuzzCredentialLiteralPrefilter(f *testing.F) {
	// The key header is split so that scanners for committed keys do not
	// flag this fake one; the seed is the joined string.
	for _, s := range []string{"", "xoxb-test-1", "xapp-test-1", "hvs.TEST123", "s.ABCDEFGHIJKLMNOPQRSTUVWXYZ", "Bearer abc",
		"ATATTtest-fake-not-a-token-0000", "-----BEGIN TEST FAKE " + "PRIVATE KEY-----", "in 7 days. ok", "plain text"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var kind string
		found := false
		redacted := s
		for _, p := range credentialPatterns {
			if !found && p.re.MatchString(s) {
				kind, found = p.name, true
			}
			redacted = p.re.ReplaceAllString(redacted, "[redacted]")
		}
		if k, ok := credentialKind(s); k != kind || ok != found {
			t.Errorf("credentialKind(%q) = %q, %v; the regexps alone say %q, %v", s, k, ok, kind, found)
		}
		if got := Redact(s); got != redacted {
			t.Errorf("Redact(%q) = %q; the regexps alone give %q", s, got, redacted)
		}
	})
}
