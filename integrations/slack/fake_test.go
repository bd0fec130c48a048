package slack

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

const (
	testBot = "xoxb-test-1234-abcd"
	testApp = "xapp-test-1-A1-5678-efgh"
)

// call is one request the fake received.
type call struct {
	Method string     // Web API method, or "respond"
	Form   url.Values // form posts
	JSON   map[string]any
	Auth   string // Authorization header
}

// reply is a canned answer; a nil reply means the default behaviour.
type reply struct {
	Status  int
	Header  map[string]string
	Body    string
	Delay   time.Duration
	handler func(form url.Values) any // computes a JSON body
}

// fakeSlack speaks the few Web API methods this package calls, checking the
// token the way Slack does: in the body for form posts, Bearer for JSON.
type fakeSlack struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	calls   []call
	replies map[string]reply
	users   map[string]map[string]any
	groups  []map[string]any
	uploads map[string]*fakeUpload // by file id
	upSeq   int
}

// fakeUpload is one file: announced by files.getUploadURLExternal, its
// bytes posted to the upload URL, then completed.
type fakeUpload struct {
	Filename string
	Length   int
	Data     []byte
	Posted   bool
	Auth     string // Authorization header of the byte upload
	Form     url.Values
	Channel  string
	Comment  string
	Title    string
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{t: t, replies: map[string]reply{}, users: map[string]map[string]any{}, uploads: map[string]*fakeUpload{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", f.api)
	mux.HandleFunc("/upload/{id}", f.upload)
	mux.HandleFunc("/respond/{id}", f.respond)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) client(t *testing.T) *Client {
	t.Helper()
	cfg := &config.Config{Creds: config.Credentials{SlackBotToken: testBot, SlackAppToken: testApp, SlackAPIURL: f.srv.URL + "/api"}}
	return New(cfg, f.srv.Client())
}

func (f *fakeSlack) set(method string, r reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[method] = r
}

func (f *fakeSlack) addUser(id, email string, extra map[string]any) {
	u := map[string]any{"id": id, "team_id": "T1", "name": strings.ToLower(id), "real_name": "User " + id,
		"profile": map[string]any{"email": email, "real_name": "User " + id}}
	for k, v := range extra {
		u[k] = v
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id] = u
}

func (f *fakeSlack) addGroup(id, handle string, members ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups = append(f.groups, map[string]any{"id": id, "handle": handle, "name": handle, "is_usergroup": true, "users": members})
}

func (f *fakeSlack) callsTo(method string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSlack) record(c call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeSlack) canned(w http.ResponseWriter, method string, form url.Values) bool {
	f.mu.Lock()
	r, ok := f.replies[method]
	f.mu.Unlock()
	if !ok {
		return false
	}
	time.Sleep(r.Delay)
	if r.handler != nil {
		writeJSON(w, r.handler(form))
		return true
	}
	for k, v := range r.Header {
		w.Header().Set(k, v)
	}
	if r.Status == 0 && r.Body == "" {
		return false // only a delay
	}
	if r.Status != 0 {
		w.WriteHeader(r.Status)
	}
	io.WriteString(w, r.Body)
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fakeSlack) api(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	c := call{Method: method, Auth: r.Header.Get("Authorization")}
	token := strings.TrimPrefix(c.Auth, "Bearer ")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		json.NewDecoder(r.Body).Decode(&c.JSON)
	} else {
		if err := r.ParseForm(); err != nil {
			f.t.Errorf("%s: bad form: %v", method, err)
		}
		c.Form = r.PostForm
		token = r.PostForm.Get("token")
	}
	f.record(c)
	if f.canned(w, method, c.Form) {
		return
	}
	want := testBot
	if method == "apps.connections.open" {
		want = testApp
	}
	if token != want {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	switch method {
	case "auth.test":
		writeJSON(w, map[string]any{"ok": true, "url": "https://lumi.slack.com/", "team": "Lumi", "user": "secretbot", "team_id": "T1", "user_id": "UBOT", "bot_id": "BBOT"})
	case "users.info":
		f.mu.Lock()
		u, ok := f.users[c.Form.Get("user")]
		f.mu.Unlock()
		if !ok {
			writeJSON(w, map[string]any{"ok": false, "error": "user_not_found"})
			return
		}
		writeJSON(w, map[string]any{"ok": true, "user": u})
	case "usergroups.list":
		f.mu.Lock()
		gs := make([]map[string]any, 0, len(f.groups))
		for _, g := range f.groups {
			if c.Form.Get("include_users") != "true" {
				g = map[string]any{"id": g["id"], "handle": g["handle"]}
			}
			gs = append(gs, g)
		}
		f.mu.Unlock()
		writeJSON(w, map[string]any{"ok": true, "usergroups": gs})
	case "chat.postMessage", "chat.update":
		ch := c.Form.Get("channel")
		if strings.HasPrefix(ch, "U") {
			ch = "D" + ch[1:]
		}
		writeJSON(w, map[string]any{"ok": true, "channel": ch, "ts": "1700000000.000100", "message": map[string]any{"ts": "1700000000.000100"}})
	case "chat.postEphemeral":
		writeJSON(w, map[string]any{"ok": true, "message_ts": "1700000000.000200"})
	default:
		if !f.directoryMethod(w, r, method, c.Form) {
			writeJSON(w, map[string]any{"ok": false, "error": "unknown_method"})
		}
	}
}

// directoryMethod answers the methods UploadCSV, GroupMembers,
// RemoveFromGroup and SlackIDByEmail call; false when method is not one.
func (f *fakeSlack) directoryMethod(w http.ResponseWriter, r *http.Request, method string, form url.Values) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case "conversations.open":
		u := form.Get("users")
		if _, ok := f.users[u]; !ok || strings.Contains(u, ",") {
			writeJSON(w, map[string]any{"ok": false, "error": "user_not_found"})
			return true
		}
		writeJSON(w, map[string]any{"ok": true, "channel": map[string]any{"id": "D" + u[1:]}})
	case "files.getUploadURLExternal":
		n, err := strconv.Atoi(form.Get("length"))
		if form.Get("filename") == "" || err != nil || n <= 0 {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_arguments"})
			return true
		}
		f.upSeq++
		id := fmt.Sprintf("F%04d", f.upSeq)
		f.uploads[id] = &fakeUpload{Filename: form.Get("filename"), Length: n}
		writeJSON(w, map[string]any{"ok": true, "upload_url": "http://" + r.Host + "/upload/" + id, "file_id": id})
	case "files.completeUploadExternal":
		var files []struct{ ID, Title string }
		if err := json.Unmarshal([]byte(form.Get("files")), &files); err != nil || len(files) == 0 {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_arguments"})
			return true
		}
		out := []map[string]any{}
		for _, fl := range files {
			up := f.uploads[fl.ID]
			if up == nil || !up.Posted {
				writeJSON(w, map[string]any{"ok": false, "error": "file_not_found"})
				return true
			}
			up.Channel, up.Comment, up.Title = form.Get("channel_id"), form.Get("initial_comment"), fl.Title
			out = append(out, map[string]any{"id": fl.ID, "title": fl.Title})
		}
		writeJSON(w, map[string]any{"ok": true, "files": out})
	case "usergroups.users.list":
		for _, g := range f.groups {
			if g["id"] == form.Get("usergroup") {
				writeJSON(w, map[string]any{"ok": true, "users": g["users"]})
				return true
			}
		}
		writeJSON(w, map[string]any{"ok": false, "error": "no_such_subteam"})
	case "usergroups.users.update":
		users := strings.Split(form.Get("users"), ",")
		if form.Get("users") == "" {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_users"})
			return true
		}
		for _, g := range f.groups {
			if g["id"] == form.Get("usergroup") {
				g["users"] = users
				writeJSON(w, map[string]any{"ok": true, "usergroup": g})
				return true
			}
		}
		writeJSON(w, map[string]any{"ok": false, "error": "no_such_subteam"})
	case "users.lookupByEmail":
		for _, u := range f.users {
			if p, _ := u["profile"].(map[string]any); p != nil && p["email"] == form.Get("email") && p["email"] != "" {
				writeJSON(w, map[string]any{"ok": true, "user": u})
				return true
			}
		}
		writeJSON(w, map[string]any{"ok": false, "error": "users_not_found"})
	default:
		return false
	}
	return true
}

// upload takes the bytes of an announced file, raw or multipart ("file").
func (f *fakeSlack) upload(w http.ResponseWriter, r *http.Request) {
	f.record(call{Method: "upload", Auth: r.Header.Get("Authorization")})
	if f.canned(w, "upload", nil) {
		return
	}
	var data []byte
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		file, _, err := r.FormFile("file")
		if err != nil {
			http.Error(w, "no file", http.StatusBadRequest)
			return
		}
		data, _ = io.ReadAll(file)
	} else {
		data, _ = io.ReadAll(r.Body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	up := f.uploads[r.PathValue("id")]
	if up == nil || len(data) != up.Length {
		http.Error(w, "bad upload", http.StatusBadRequest)
		return
	}
	up.Data, up.Posted, up.Auth = data, true, r.Header.Get("Authorization")
	io.WriteString(w, "OK - "+strconv.Itoa(len(data)))
}

func (f *fakeSlack) groupUsers(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.groups {
		if g["id"] == id {
			switch u := g["users"].(type) {
			case []string:
				return append([]string(nil), u...)
			}
		}
	}
	return nil
}

func (f *fakeSlack) uploadList() []fakeUpload {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeUpload
	for i := 1; i <= f.upSeq; i++ {
		if up := f.uploads[fmt.Sprintf("F%04d", i)]; up != nil {
			out = append(out, *up)
		}
	}
	return out
}

func (f *fakeSlack) respond(w http.ResponseWriter, r *http.Request) {
	c := call{Method: "respond", Auth: r.Header.Get("Authorization")}
	if err := json.NewDecoder(r.Body).Decode(&c.JSON); err != nil {
		f.t.Errorf("respond: body is not JSON: %v", err)
	}
	f.record(c)
	if f.canned(w, "respond", nil) {
		return
	}
	writeJSON(w, map[string]any{"ok": true})
}
