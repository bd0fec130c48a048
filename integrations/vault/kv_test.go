package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

// The shapes below are those of Vault 1.21's KV v2 backend (checked against
// the real in-process Vault with the secretbot-bot policy, e2e/vaulttest).

type kvVersion struct {
	data      map[string]any
	created   time.Time
	deleted   bool
	destroyed bool
}

type kvSecret struct {
	versions map[int]*kvVersion
	current  int
	custom   map[string]any
}

type kvReq struct {
	Method, Path, Query, Token string
	Body                       map[string]any
	Raw                        string
}

// fakeKV is a KV v2 engine mounted at kv/.
type fakeKV struct {
	srv *httptest.Server

	mu      sync.Mutex
	secrets map[string]*kvSecret
	reqs    []kvReq
	// force answers every request to a path prefix (after /v1/) with this
	// status; the error text echoes the request body when echo is set.
	force     map[string]int
	echo      bool
	rawReply  map[string]string // canned 200 bodies by path prefix
	beforePut func()            // runs before a write is applied (a concurrent writer)
}

func newFakeKV(t *testing.T) *fakeKV {
	f := &fakeKV{secrets: map[string]*kvSecret{}, force: map[string]int{}, rawReply: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKV) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(testConfig(f.srv.URL, config.Credentials{VaultToken: testBotToken}), f.srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.api.SetMaxRetries(0)
	t.Cleanup(c.Close)
	return c
}

func (f *fakeKV) requests() []kvReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]kvReq(nil), f.reqs...)
}

func (f *fakeKV) put(path string, data map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.putLocked(path, data)
}

func (f *fakeKV) putLocked(path string, data map[string]any) int {
	s := f.secrets[path]
	if s == nil {
		s = &kvSecret{versions: map[int]*kvVersion{}}
		f.secrets[path] = s
	}
	s.current++
	s.versions[s.current] = &kvVersion{data: data, created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return s.current
}

func versionMeta(n int, v *kvVersion) map[string]any {
	del := ""
	if v.deleted {
		del = "2026-01-03T00:00:00Z"
	}
	return map[string]any{"version": n, "created_time": v.created.Format(time.RFC3339Nano), "deletion_time": del, "destroyed": v.destroyed, "custom_metadata": nil}
}

func (f *fakeKV) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	b, _ := io.ReadAll(r.Body)
	raw := string(b)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	f.reqs = append(f.reqs, kvReq{Method: r.Method, Path: path, Query: r.URL.RawQuery, Token: r.Header.Get("X-Vault-Token"), Body: body, Raw: raw})
	if r.Header.Get("X-Vault-Token") != testBotToken {
		errReply(w, http.StatusForbidden, "permission denied")
		return
	}
	for prefix, st := range f.force {
		if strings.HasPrefix(path, prefix) {
			msg := http.StatusText(st)
			if f.echo {
				msg += ": request was " + raw
			}
			errReply(w, st, msg)
			return
		}
	}
	for prefix, b := range f.rawReply {
		if strings.HasPrefix(path, prefix) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, b)
			return
		}
	}
	kind, secretPath, ok := strings.Cut(strings.TrimPrefix(path, "kv/"), "/")
	if !strings.HasPrefix(path, "kv/") || !ok {
		errReply(w, http.StatusNotFound, "no handler for route")
		return
	}
	s := f.secrets[secretPath]
	switch {
	case kind == "data" && r.Method == http.MethodGet:
		if s == nil {
			errReply(w, http.StatusNotFound)
			return
		}
		n := s.current
		if q := r.URL.Query().Get("version"); q != "" {
			n, _ = strconv.Atoi(q)
		}
		v := s.versions[n]
		if v == nil {
			errReply(w, http.StatusNotFound)
			return
		}
		if v.deleted || v.destroyed {
			reply(w, http.StatusNotFound, envelope(map[string]any{"data": nil, "metadata": versionMeta(n, v)}, nil, nil))
			return
		}
		reply(w, http.StatusOK, envelope(map[string]any{"data": v.data, "metadata": versionMeta(n, v)}, nil, nil))
	case kind == "data" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		if f.beforePut != nil {
			f.beforePut()
		}
		cur := 0
		if s != nil {
			cur = s.current
		}
		if opts, _ := body["options"].(map[string]any); opts != nil {
			if cas, ok := opts["cas"].(float64); ok && int(cas) != cur {
				errReply(w, http.StatusBadRequest, "check-and-set parameter did not match the current version")
				return
			}
		}
		data, _ := body["data"].(map[string]any)
		if len(data) == 0 {
			errReply(w, http.StatusBadRequest, "no data provided")
			return
		}
		n := f.putLocked(secretPath, data)
		reply(w, http.StatusOK, envelope(versionMeta(n, f.secrets[secretPath].versions[n]), nil, nil))
	case kind == "metadata" && r.Method == http.MethodGet:
		if s == nil {
			errReply(w, http.StatusNotFound)
			return
		}
		versions := map[string]any{}
		for n, v := range s.versions {
			versions[strconv.Itoa(n)] = versionMeta(n, v)
		}
		reply(w, http.StatusOK, envelope(map[string]any{"cas_required": false, "created_time": "2026-01-02T03:04:05Z",
			"current_version": s.current, "custom_metadata": s.custom, "delete_version_after": "0s", "max_versions": 0,
			"oldest_version": 0, "updated_time": "2026-01-02T03:04:05Z", "versions": versions}, nil, nil))
	case kind == "metadata" && r.Method == http.MethodPatch:
		if r.Header.Get("Content-Type") != "application/merge-patch+json" {
			errReply(w, http.StatusUnsupportedMediaType, "PATCH requires Content-Type application/merge-patch+json")
			return
		}
		if s == nil {
			errReply(w, http.StatusNotFound)
			return
		}
		if s.custom == nil {
			s.custom = map[string]any{}
		}
		cm, _ := body["custom_metadata"].(map[string]any)
		maps.Copy(s.custom, cm)
		w.WriteHeader(http.StatusNoContent)
	case (kind == "destroy" || kind == "delete") && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		for _, x := range anyStrings(body["versions"]) {
			n, _ := strconv.Atoi(x)
			if s == nil || s.versions[n] == nil {
				continue
			}
			if kind == "destroy" {
				s.versions[n].destroyed = true
			} else {
				s.versions[n].deleted = true
			}
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		errReply(w, http.StatusMethodNotAllowed, "unsupported operation")
	}
}

const (
	kvValue1 = "v4lue-one-N0T-FOR-LOGS"
	kvValue2 = "v4lue-two-N0T-FOR-LOGS"
)

// noValue fails when err's text (or its %+v form) holds a secret value.
func noValue(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for _, v := range []string{kvValue1, kvValue2, "N0T-FOR-LOGS"} {
			if strings.Contains(s, v) {
				t.Errorf("error text carries a secret value: %s", s)
			}
		}
	}
	assertNoCredential(t, "error", err.Error())
}

func TestKVRoundTrip(t *testing.T) {
	f := newFakeKV(t)
	c := f.client(t)
	ctx := context.Background()
	const mount, path = "kv", "platform/payments-db"

	if v, err := c.Current(ctx, mount, path); v != 0 || err != nil {
		t.Fatalf("Current(missing) = %d, %v; want 0, nil", v, err)
	}
	if md, v, err := c.Metadata(ctx, mount, path); md != nil || v != 0 || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Metadata(missing) = %v, %d, %v; want ErrNotFound", md, v, err)
	}
	if _, err := c.Read(ctx, mount, path, 0); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Read(missing) = %v", err)
	}
	if err := c.PatchMetadata(ctx, mount, path, map[string]string{"owner_team": "payments"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PatchMetadata(missing) = %v", err)
	}

	v1, err := c.Write(ctx, mount, "/"+path+"/", map[string]string{"value": kvValue1}, 0)
	if err != nil || v1 != 1 {
		t.Fatalf("Write = %d, %v", v1, err)
	}
	_, err = c.Write(ctx, mount, path, map[string]string{"value": kvValue2}, 0)
	if !errors.Is(err, ErrCASMismatch) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Write(cas 0 on existing) = %v", err)
	}
	noValue(t, err)
	v2, err := c.Write(ctx, mount, path, map[string]string{"value": kvValue2, "user": "app"}, 1)
	if err != nil || v2 != 2 {
		t.Fatalf("Write(cas 1) = %d, %v", v2, err)
	}
	_, err = c.Write(ctx, mount, path, map[string]string{"value": kvValue1}, 1)
	var ve *Error
	if !errors.Is(err, ErrCASMismatch) || !errors.As(err, &ve) || ve.StatusCode != 400 || !strings.Contains(err.Error(), "no longer at version 1") {
		t.Fatalf("Write(stale cas) = %v", err)
	}
	noValue(t, err)
	if v, err := c.Current(ctx, mount, path); v != 2 || err != nil {
		t.Fatalf("Current = %d, %v", v, err)
	}

	// The writes carried the check-and-set version and nothing else but the data.
	var puts []kvReq
	for _, r := range f.requests() {
		if r.Path == "kv/data/"+path && r.Method != http.MethodGet {
			puts = append(puts, r)
		}
	}
	if len(puts) != 4 {
		t.Fatalf("%d writes, want 4", len(puts))
	}
	for i, want := range []float64{0, 0, 1, 1} {
		opts, _ := puts[i].Body["options"].(map[string]any)
		if opts["cas"] != want {
			t.Errorf("write %d options = %v, want cas %v", i, puts[i].Body["options"], want)
		}
		if puts[i].Token != testBotToken {
			t.Errorf("write %d without the bot token", i)
		}
	}

	got, err := c.Read(ctx, mount, path, 1)
	if err != nil || len(got) != 1 || got["value"] != kvValue1 {
		t.Fatalf("Read(1) = %v, %v", got, err)
	}
	got, err = c.Read(ctx, mount, path, 0)
	if err != nil || got["value"] != kvValue2 || got["user"] != "app" {
		t.Fatalf("Read(current) = %v, %v", got, err)
	}
	if _, err := c.Read(ctx, mount, path, 7); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "has no version 7") {
		t.Fatalf("Read(7) = %v", err)
	}

	custom := map[string]string{"owner_team": "payments", "environment": "prod", "last_ticket": "SEC-1"}
	if err := c.PatchMetadata(ctx, mount, path, custom); err != nil {
		t.Fatal(err)
	}
	if err := c.PatchMetadata(ctx, mount, path, map[string]string{"last_ticket": "SEC-2"}); err != nil {
		t.Fatal(err)
	}
	md, cur, err := c.Metadata(ctx, mount, path)
	want := map[string]string{"owner_team": "payments", "environment": "prod", "last_ticket": "SEC-2"}
	if err != nil || cur != 2 || !maps.Equal(md, want) {
		t.Fatalf("Metadata = %v, %d, %v; want %v, 2", md, cur, err, want)
	}
	for _, r := range f.requests() {
		if r.Method == http.MethodPatch {
			if _, other := r.Body["max_versions"]; other || len(r.Body) != 1 {
				t.Errorf("metadata patch touches more than custom_metadata: %s", r.Raw)
			}
		}
	}

	if err := c.Destroy(ctx, mount, path, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(ctx, mount, path, 1); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "destroyed") {
		t.Fatalf("Read(destroyed) = %v", err)
	}
	if err := c.SoftDelete(ctx, mount, path, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(ctx, mount, path, 0); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("Read(deleted current) = %v", err)
	}
	// A deleted current version still counts for check-and-set.
	if v, err := c.Current(ctx, mount, path); v != 2 || err != nil {
		t.Fatalf("Current after delete = %d, %v", v, err)
	}
	var destroyBody, deleteBody map[string]any
	for _, r := range f.requests() {
		switch r.Path {
		case "kv/destroy/" + path:
			destroyBody = r.Body
		case "kv/delete/" + path:
			deleteBody = r.Body
		}
	}
	if fmt.Sprint(destroyBody["versions"]) != "[1]" || fmt.Sprint(deleteBody["versions"]) != "[2]" {
		t.Errorf("destroy %v, delete %v: want exactly the one version each", destroyBody, deleteBody)
	}
}

func TestKVConcurrentWriterDetected(t *testing.T) {
	f := newFakeKV(t)
	c := f.client(t)
	ctx := context.Background()
	f.put("app/key", map[string]any{"value": "old"})
	read, err := c.Current(ctx, "kv", "app/key")
	if err != nil || read != 1 {
		t.Fatal(read, err)
	}
	f.beforePut = func() { f.putLocked("app/key", map[string]any{"value": "theirs"}) }
	_, err = c.Write(ctx, "kv", "app/key", map[string]string{"value": kvValue1}, read)
	if !errors.Is(err, ErrCASMismatch) {
		t.Fatalf("err = %v, want ErrCASMismatch", err)
	}
	noValue(t, err)
	f.beforePut = nil
	got, _ := c.Read(ctx, "kv", "app/key", 0)
	if got["value"] != "theirs" {
		t.Errorf("the other writer's value was overwritten: %v", got)
	}
}

func TestKVValuesNeverInErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("server error echoing the request", func(t *testing.T) {
		f := newFakeKV(t)
		f.force["kv/data/"], f.echo = http.StatusInternalServerError, true
		_, err := f.client(t).Write(ctx, "kv", "app/key", map[string]string{"value": kvValue1, "other": kvValue2}, 0)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
		noValue(t, err)
		if !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("the echoed body was not scrubbed: %v", err)
		}
	})
	t.Run("undecodable read reply", func(t *testing.T) {
		f := newFakeKV(t)
		f.rawReply["kv/data/"] = `{"data":{"data":"` + kvValue1 + `","metadata":{"version":1}}}`
		got, err := f.client(t).Read(ctx, "kv", "app/key", 0)
		if err == nil || got != nil {
			t.Fatalf("Read = %v, %v; want an error", got, err)
		}
		noValue(t, err)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "unexpected reply") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("undecodable write reply", func(t *testing.T) {
		f := newFakeKV(t)
		f.rawReply["kv/data/"] = `{"data":{"version":"` + kvValue1 + `"}}`
		_, err := f.client(t).Write(ctx, "kv", "app/key", map[string]string{"value": kvValue2}, 0)
		if err == nil {
			t.Fatal("no error")
		}
		noValue(t, err)
	})
	t.Run("bad request echoing the request", func(t *testing.T) {
		f := newFakeKV(t)
		f.force["kv/data/"], f.echo = http.StatusBadRequest, true
		_, err := f.client(t).Write(ctx, "kv", "app/key", map[string]string{"value": kvValue2}, 3)
		if err == nil || errors.Is(err, ErrCASMismatch) {
			t.Fatalf("err = %v", err)
		}
		noValue(t, err)
	})
}

func TestKVErrorKinds(t *testing.T) {
	tests := []struct {
		status int
		want   error
	}{
		{http.StatusForbidden, ErrPermissionDenied},
		{http.StatusServiceUnavailable, ErrUnavailable},
		{http.StatusTooManyRequests, ErrUnavailable},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			f := newFakeKV(t)
			f.force["kv/"] = tt.status
			c := f.client(t)
			calls := map[string]error{}
			_, calls["Current"] = c.Current(ctx, "kv", "a/b")
			_, _, calls["Metadata"] = c.Metadata(ctx, "kv", "a/b")
			_, calls["Write"] = c.Write(ctx, "kv", "a/b", map[string]string{"v": kvValue1}, 0)
			_, calls["Read"] = c.Read(ctx, "kv", "a/b", 1)
			calls["Destroy"] = c.Destroy(ctx, "kv", "a/b", 1)
			calls["SoftDelete"] = c.SoftDelete(ctx, "kv", "a/b", 1)
			calls["PatchMetadata"] = c.PatchMetadata(ctx, "kv", "a/b", map[string]string{"k": "v"})
			for name, err := range calls {
				var ve *Error
				if !errors.Is(err, tt.want) || !errors.As(err, &ve) || ve.StatusCode != tt.status {
					t.Errorf("%s: err = %v, want %v", name, err, tt.want)
				}
				noValue(t, err)
			}
		})
	}
	t.Run("canceled", func(t *testing.T) {
		f := newFakeKV(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := f.client(t).Write(cctx, "kv", "a/b", map[string]string{"v": kvValue1}, 0)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
		noValue(t, err)
	})
}

func TestKVInvalidArguments(t *testing.T) {
	f := newFakeKV(t)
	c := f.client(t)
	ctx := context.Background()
	long := strings.Repeat("x", 600)
	tooMany := map[string]string{}
	for i := range 65 {
		tooMany[fmt.Sprintf("k%d", i)] = "v"
	}
	errs := map[string]error{}
	_, errs["empty mount"] = c.Current(ctx, "", "a")
	_, errs["empty path"] = c.Current(ctx, "kv", "/")
	_, errs["dot-dot"] = c.Read(ctx, "kv", "platform/../../sys/x", 0)
	_, errs["dot"] = c.Read(ctx, "kv", "./x", 0)
	_, errs["double slash"] = c.Read(ctx, "kv", "a//b", 0)
	_, errs["mount dot-dot"] = c.Read(ctx, "kv/..", "x", 0)
	_, errs["query"] = c.Read(ctx, "kv", "a?version=1", 0)
	_, errs["control"] = c.Read(ctx, "kv", "a\nb", 0)
	_, errs["negative version"] = c.Read(ctx, "kv", "a", -1)
	_, errs["negative cas"] = c.Write(ctx, "kv", "a", map[string]string{"v": kvValue1}, -1)
	_, errs["no value"] = c.Write(ctx, "kv", "a", nil, 0)
	_, errs["empty key"] = c.Write(ctx, "kv", "a", map[string]string{"": kvValue1}, 0)
	errs["destroy 0"] = c.Destroy(ctx, "kv", "a", 0)
	errs["delete 0"] = c.SoftDelete(ctx, "kv", "a", 0)
	errs["long value"] = c.PatchMetadata(ctx, "kv", "a", map[string]string{"k": long})
	errs["long key"] = c.PatchMetadata(ctx, "kv", "a", map[string]string{long: "v"})
	errs["too many keys"] = c.PatchMetadata(ctx, "kv", "a", tooMany)
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		noValue(t, err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests reached Vault for invalid arguments", n)
	}
	// An empty patch is nothing to do.
	if err := c.PatchMetadata(ctx, "kv", "a", nil); err != nil {
		t.Errorf("empty patch: %v", err)
	}
}

func TestStringMap(t *testing.T) {
	got := stringMap(map[string]any{"s": "x", "n": json.Number("42"), "b": true, "o": map[string]any{"a": 1.0}, "z": nil})
	want := map[string]string{"s": "x", "n": "42", "b": "true", "o": `{"a":1}`, "z": ""}
	if !maps.Equal(got, want) {
		t.Errorf("stringMap = %v, want %v", got, want)
	}
}
