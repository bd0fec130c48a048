package logging

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestRedactsEveryEncoding(t *testing.T) {
	secret := `xoxb-test-1234"abc/def+ghi`
	r := NewRedactor(secret, "short")
	var buf bytes.Buffer
	log := New(&buf, "debug", r)
	basic := base64.StdEncoding.EncodeToString([]byte("ops@example.test:" + secret))
	js, _ := json.Marshal(secret)
	log.Debug("calling", "raw", secret, "json", string(js), "url", "https://x.test/?t="+url.QueryEscape(secret),
		"b64", base64.StdEncoding.EncodeToString([]byte(secret)), "basic", "Basic "+basic,
		"note", "short", "err", errors.New("post https://x.test/"+url.PathEscape(secret)+": refused"))
	out := buf.String()
	for _, v := range variants(secret) {
		if strings.Contains(out, v) {
			t.Fatalf("log line carries %q:\n%s", v, out)
		}
	}
	if strings.Contains(out, strings.TrimRight(basic, "=")[4:]) {
		t.Fatalf("basic-auth header leaked:\n%s", out)
	}
	if !strings.Contains(out, "short") {
		t.Fatal("values shorter than a credential should be left alone")
	}
	if !strings.Contains(out, Redacted) {
		t.Fatal("no redaction marker")
	}
}

func TestAddLater(t *testing.T) {
	r := NewRedactor()
	r.Add("hvs.TESTtokenvalue0001")
	if got := r.String("token=hvs.TESTtokenvalue0001"); got != "token="+Redacted {
		t.Fatalf("got %q", got)
	}
}

func TestBase64AtAnyAlignment(t *testing.T) {
	secret := "jira-test-apitoken-0042"
	r := NewRedactor(secret)
	for n := 0; n < 6; n++ {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("u", n) + ":" + secret + "!tail"))
		if got := r.String(enc); got == enc {
			t.Errorf("prefix %d: secret inside %q not redacted", n, enc)
		}
	}
}
