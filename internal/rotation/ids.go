package rotation

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/secretbot/secretbot/internal/config"
)

// Crockford base32: no I, L, O or U, so ids read aloud unambiguously.
const idAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var (
	rotationIDRe = regexp.MustCompile(`^R[0-9A-HJKMNP-TV-Z]{8}$`)
	journalIDRe  = regexp.MustCompile(`^J[0-9A-HJKMNP-TV-Z]{8}$`)
)

func newID(prefix byte) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("rotation: crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	out := make([]byte, 9)
	out[0] = prefix
	for i, c := range b {
		out[i+1] = idAlphabet[int(c)%len(idAlphabet)] // 256 is a multiple of 32: no bias
	}
	return string(out)
}

// NewRotationID returns "R" + 8 random Crockford base32 characters.
func NewRotationID() string { return newID('R') }

// NewJournalID returns "J" + 8 random Crockford base32 characters.
func NewJournalID() string { return newID('J') }

// NormalizeRotationID upper-cases s and reports whether it is a rotation id.
func NormalizeRotationID(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	return s, rotationIDRe.MatchString(s)
}

// NormalizeJournalID upper-cases s and reports whether it is a journal id.
func NormalizeJournalID(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	return s, journalIDRe.MatchString(s)
}

// GenerateValue makes a new secret value: g.Length characters drawn
// uniformly from g.Alphabet (ranges expanded, see config.ExpandAlphabet)
// with bytes from r (crypto/rand.Reader in production). Rejection sampling
// keeps every character equally likely. The value goes to KV.Write and
// nowhere else.
func GenerateValue(r io.Reader, g Generate) (string, error) {
	alphabet, err := config.ExpandAlphabet(g.Alphabet)
	if err != nil {
		return "", err
	}
	if g.Length < config.MinGenerateLength || g.Length > config.MaxGenerateLength {
		return "", fmt.Errorf("rotation: length %d is out of range %d to %d", g.Length, config.MinGenerateLength, config.MaxGenerateLength)
	}
	n := len(alphabet)
	limit := 256 - 256%n // bytes at or above limit would favour the first characters
	out := make([]byte, 0, g.Length)
	buf := make([]byte, 64)
	for len(out) < g.Length {
		k, err := io.ReadFull(r, buf)
		if err != nil {
			return "", errors.New("rotation: the random source failed") // never include the partial value
		}
		for _, b := range buf[:k] {
			if int(b) < limit {
				out = append(out, alphabet[int(b)%n])
				if len(out) == g.Length {
					break
				}
			}
		}
	}
	return string(out), nil
}
