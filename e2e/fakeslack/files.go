package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/secretbot/secretbot/e2e/internal/fault"
	"github.com/secretbot/secretbot/e2e/internal/watch"
)

// uploadPathPrefix is where files.getUploadURLExternal points the bytes.
const uploadPathPrefix = "/upload/"

// maxUploadBytes bounds what the fake keeps of one upload.
const maxUploadBytes = 16 << 20

// File is a file the bot uploaded: announced by files.getUploadURLExternal,
// its bytes posted to the upload URL, then shared by
// files.completeUploadExternal.
type File struct {
	ID string
	// Name is the filename given to files.getUploadURLExternal; Title the
	// title given to files.completeUploadExternal.
	Name, Title string
	// Length is the length announced; Data the bytes posted.
	Length int
	Data   []byte
	// Uploaded is set once the bytes arrived; UploadAuth is the
	// Authorization header of that POST ("" when none was sent).
	Uploaded   bool
	UploadAuth string
	// Completed is set by files.completeUploadExternal, with where the file
	// was shared: Channel (channel_id), User (the user whose DM Channel is,
	// "" for other channels), Comment (initial_comment) and ThreadTS.
	Completed bool
	Channel   string
	User      string
	Comment   string
	ThreadTS  string
	At        time.Time
}

// GroupUpdate is one usergroups.users.update the bot made.
type GroupUpdate struct {
	Group string   // the group's ID
	Users []string // the members it set
	At    time.Time
}

// Files returns the files shared so far (files.completeUploadExternal
// succeeded), in the order they were announced.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for _, id := range s.fileOrder {
		if f := s.files[id]; f.Completed {
			out = append(out, cloneFile(*f))
		}
	}
	return out
}

// AllFiles returns every announced file, shared or not (an upload whose last
// step failed shows with Completed false).
func (s *Server) AllFiles() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]File, 0, len(s.fileOrder))
	for _, id := range s.fileOrder {
		out = append(out, cloneFile(*s.files[id]))
	}
	return out
}

func cloneFile(f File) File {
	f.Data = append([]byte(nil), f.Data...)
	return f
}

// WaitFile waits for a shared file that match accepts (nil accepts any).
func (s *Server) WaitFile(match func(File) bool, timeout time.Duration) (File, error) {
	var got File
	ok := watch.Until(&s.changed, timeout, func() bool {
		for _, f := range s.Files() {
			if match == nil || match(f) {
				got = f
				return true
			}
		}
		return false
	})
	if !ok {
		return File{}, fmt.Errorf("fakeslack: no matching file within %v (%d shared)", timeout, len(s.Files()))
	}
	return got, nil
}

// GroupUpdates returns every usergroups.users.update that succeeded, in order.
func (s *Server) GroupUpdates() []GroupUpdate {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GroupUpdate, len(s.groupUpdates))
	for i, u := range s.groupUpdates {
		u.Users = append([]string(nil), u.Users...)
		out[i] = u
	}
	return out
}

// GroupMembers returns the current members of the group with this handle or
// ID, and whether it exists.
func (s *Server) GroupMembers(handleOrID string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if g.ID == handleOrID || g.Handle == handleOrID {
			return append([]string(nil), g.Members...), true
		}
	}
	return nil, false
}

func (s *Server) filesGetUploadURLExternal(r *http.Request, c Call) reply {
	name := c.Param("filename")
	n, err := strconv.Atoi(c.Param("length"))
	if name == "" || err != nil || n <= 0 {
		return slackError("invalid_arguments")
	}
	if n > maxUploadBytes {
		return slackError("file_too_large")
	}
	s.mu.Lock()
	id := fmt.Sprintf("F0FAKE%04d", s.nextID())
	if s.files == nil {
		s.files = map[string]*File{}
	}
	s.files[id] = &File{ID: id, Name: name, Length: n, At: s.now()}
	s.fileOrder = append(s.fileOrder, id)
	s.mu.Unlock()
	s.changed.Fire()
	return reply{"ok": true, "upload_url": "http://" + r.Host + uploadPathPrefix + id, "file_id": id}
}

// handleUpload takes a file's bytes, raw or multipart-encoded (any file
// field), the two forms Slack accepts. Faults are keyed "upload". Like
// Slack, it answers 200 with a short text body.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, uploadPathPrefix)
	if f, ok := s.faults.Take("upload"); ok && fault.Apply(w, r, f, errBody) {
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var data []byte
	var err error
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		data, err = multipartFile(r)
	} else {
		data, err = io.ReadAll(io.LimitReader(r.Body, maxUploadBytes+1))
	}
	if err != nil {
		http.Error(w, "bad upload: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	f, ok := s.files[id]
	switch {
	case !ok:
		s.mu.Unlock()
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	case f.Uploaded || f.Completed:
		s.mu.Unlock()
		http.Error(w, "upload URL already used", http.StatusGone)
		return
	case len(data) != f.Length:
		s.mu.Unlock()
		http.Error(w, fmt.Sprintf("got %d bytes, %d announced", len(data), f.Length), http.StatusBadRequest)
		return
	}
	f.Data, f.Uploaded, f.UploadAuth, f.At = data, true, r.Header.Get("Authorization"), s.now()
	s.mu.Unlock()
	s.changed.Fire()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "OK - "+strconv.Itoa(len(data)))
}

func multipartFile(r *http.Request) ([]byte, error) {
	if err := r.ParseMultipartForm(maxUploadBytes); err != nil {
		return nil, err
	}
	for _, fhs := range r.MultipartForm.File {
		if len(fhs) == 0 {
			continue
		}
		f, err := fhs[0].Open()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	return nil, fmt.Errorf("no file in the form")
}

func (s *Server) filesCompleteUploadExternal(_ *http.Request, c Call) reply {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(c.Param("files")), &files); err != nil || len(files) == 0 {
		return slackError("invalid_arguments")
	}
	channel := c.Param("channel_id")
	if channel == "" {
		channel = c.Param("channels")
	}
	s.mu.Lock()
	for _, in := range files {
		f, ok := s.files[in.ID]
		if !ok || !f.Uploaded {
			s.mu.Unlock()
			return slackError("file_not_found")
		}
		if f.Completed {
			s.mu.Unlock()
			return slackError("file_already_completed")
		}
	}
	user := s.dmUserLocked(channel)
	out := make([]reply, 0, len(files))
	for _, in := range files {
		f := s.files[in.ID]
		f.Completed, f.Title, f.Channel, f.User = true, in.Title, channel, user
		f.Comment, f.ThreadTS, f.At = c.Param("initial_comment"), c.Param("thread_ts"), s.now()
		if f.Title == "" {
			f.Title = f.Name
		}
		out = append(out, reply{"id": f.ID, "title": f.Title})
	}
	s.mu.Unlock()
	s.changed.Fire()
	return reply{"ok": true, "files": out}
}

// dmUserLocked is the user whose DM with the bot channel is ("" when it is
// not such a DM); a user ID is accepted as its DM too. Callers hold s.mu.
func (s *Server) dmUserLocked(channel string) string {
	if _, ok := s.users[channel]; ok {
		return channel
	}
	for id := range s.users {
		if DMChannel(id) == channel {
			return id
		}
	}
	return ""
}

func (s *Server) usergroupsUsersUpdate(_ *http.Request, c Call) reply {
	id, raw := c.Param("usergroup"), c.Param("users")
	var users []string
	for _, u := range strings.Split(raw, ",") {
		if u = strings.TrimSpace(u); u != "" {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return slackError("no_users_provided")
	}
	s.mu.Lock()
	for _, u := range users {
		if _, ok := s.users[u]; !ok {
			s.mu.Unlock()
			return slackError("invalid_users")
		}
	}
	for i := range s.groups {
		if s.groups[i].ID == id {
			s.groups[i].Members = users
			s.groupUpdates = append(s.groupUpdates, GroupUpdate{Group: id, Users: append([]string(nil), users...), At: s.now()})
			g := s.groupJSON(s.groups[i], true)
			s.mu.Unlock()
			s.changed.Fire()
			return reply{"ok": true, "usergroup": g}
		}
	}
	s.mu.Unlock()
	return slackError("no_such_subteam")
}

func (s *Server) usersLookupByEmail(_ *http.Request, c Call) reply {
	email := strings.TrimSpace(c.Param("email"))
	if email == "" {
		return slackError("invalid_email")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Email != "" && strings.EqualFold(u.Email, email) {
			return reply{"ok": true, "user": s.userJSON(u)}
		}
	}
	return slackError("users_not_found")
}
