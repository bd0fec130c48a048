package fakeslack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/internal/fault"
	sbslack "github.com/secretbot/secretbot/integrations/slack"
	"github.com/secretbot/secretbot/internal/config"
)

const csv = "name,environment,owner,rotationDue\npayments-db,prod,payments,2026-04-01\n"

func apiClient(s *fakeslack.Server) *slack.Client {
	return slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()+"/"))
}

func TestFileUploadWithSlackGo(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(0))
	s.AddUser(fakeslack.User{ID: "U0ALICE", Email: "alice@lumi.test"})
	api := apiClient(s)
	sum, err := api.UploadFileContext(context.Background(), slack.UploadFileParameters{
		Filename: "inventory.csv", FileSize: len(csv), Reader: strings.NewReader(csv),
		Channel: fakeslack.DMChannel("U0ALICE"), InitialComment: "your export", Title: "Inventory"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.WaitFile(func(f fakeslack.File) bool { return f.ID == sum.ID }, wait)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Data) != csv || f.Name != "inventory.csv" || f.Title != "Inventory" || f.Length != len(csv) {
		t.Errorf("file = %+v", f)
	}
	if f.Channel != "D0ALICE" || f.User != "U0ALICE" || f.Comment != "your export" || !f.Completed || !f.Uploaded {
		t.Errorf("file shared as %+v", f)
	}
	// slack-go sends its token to the upload URL (it is on the API host).
	if f.UploadAuth != "Bearer "+s.BotToken() {
		t.Errorf("upload auth = %q", f.UploadAuth)
	}
	// The upload POST is not a Web API call.
	for _, c := range s.Calls() {
		if strings.Contains(c.Method, "upload/") {
			t.Errorf("upload recorded as a Web API call: %q", c.Method)
		}
	}
	if got := s.CallsTo("files.completeUploadExternal"); len(got) != 1 || got[0].Param("channel_id") != "D0ALICE" {
		t.Errorf("complete calls = %+v", got)
	}
}

func TestFileUploadWithSecretbotClient(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(0))
	s.AddUser(fakeslack.User{ID: "U0ALICE", Email: "alice@lumi.test"})
	cfg := &config.Config{Creds: config.Credentials{SlackBotToken: s.BotToken(), SlackAppToken: s.AppToken(), SlackAPIURL: s.APIURL()}}
	c := sbslack.New(cfg, nil)
	if err := c.UploadCSV(context.Background(), "U0ALICE", "inventory.csv", []byte(csv), "Inventory (1 secret)"); err != nil {
		t.Fatal(err)
	}
	files := s.Files()
	if len(files) != 1 {
		t.Fatalf("files = %+v", files)
	}
	f := files[0]
	if string(f.Data) != csv || f.User != "U0ALICE" || f.Channel != "D0ALICE" || f.Comment != "Inventory (1 secret)" || f.Title != "inventory.csv" {
		t.Errorf("file = %+v", f)
	}
	if f.UploadAuth != "" {
		t.Errorf("secretbot sent %q to the upload URL", f.UploadAuth)
	}
	// Files returns copies.
	files[0].Data[0] = 'X'
	if s.Files()[0].Data[0] != 'n' {
		t.Error("Files shares its byte slices")
	}
}

// getURL runs files.getUploadURLExternal by hand.
func getURL(t *testing.T, s *fakeslack.Server, name string, n int) (uploadURL, id string) {
	t.Helper()
	r, err := apiClient(s).GetUploadURLExternalContext(context.Background(), slack.GetUploadURLExternalParameters{FileName: name, FileSize: n})
	if err != nil {
		t.Fatal(err)
	}
	return r.UploadURL, r.FileID
}

func post(t *testing.T, u, contentType string, body []byte) int {
	t.Helper()
	resp, err := http.Post(u, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func complete(s *fakeslack.Server, id, channel string) error {
	_, err := apiClient(s).CompleteUploadExternalContext(context.Background(), slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: id, Title: "t"}}, Channel: channel})
	return err
}

func TestFileUploadRules(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(0))
	s.AddUser(fakeslack.User{ID: "U0BOB", Email: "bob@lumi.test"})

	// Announce without a length: refused.
	form := url.Values{"token": {s.BotToken()}, "filename": {"a.csv"}}
	resp, err := http.PostForm(s.APIURL()+"/files.getUploadURLExternal", form)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if r["ok"] != false || r["error"] != "invalid_arguments" {
		t.Errorf("no length: %v", r)
	}

	u, id := getURL(t, s, "a.csv", 5)
	// Completing before the bytes arrived fails.
	if err := complete(s, id, "C0SEC"); err == nil || err.Error() != "file_not_found" {
		t.Errorf("complete before upload: %v", err)
	}
	if st := post(t, u, "text/csv", []byte("abc")); st != http.StatusBadRequest {
		t.Errorf("short upload: %d", st)
	}
	if st := post(t, u, "application/octet-stream", []byte("a,b\n1")); st != http.StatusOK {
		t.Errorf("raw upload: %d", st)
	}
	if st := post(t, u, "application/octet-stream", []byte("a,b\n1")); st != http.StatusGone {
		t.Errorf("second upload to the same URL: %d", st)
	}
	if len(s.Files()) != 0 || len(s.AllFiles()) != 1 || !s.AllFiles()[0].Uploaded {
		t.Errorf("an uploaded but not completed file: %+v / %+v", s.Files(), s.AllFiles())
	}
	if err := complete(s, id, "C0SEC"); err != nil {
		t.Fatal(err)
	}
	if err := complete(s, id, "C0SEC"); err == nil || err.Error() != "file_already_completed" {
		t.Errorf("second complete: %v", err)
	}
	f := s.Files()[0]
	if string(f.Data) != "a,b\n1" || f.Channel != "C0SEC" || f.User != "" {
		t.Errorf("file = %+v", f)
	}
	if st := post(t, s.URL+"/upload/F0NOPE", "text/csv", []byte("x")); st != http.StatusNotFound {
		t.Errorf("unknown upload: %d", st)
	}

	// Faults on the byte upload are keyed "upload".
	u2, _ := getURL(t, s, "b.csv", 1)
	s.SetFault("upload", fault.Fault{Status: http.StatusServiceUnavailable})
	if st := post(t, u2, "text/csv", []byte("x")); st != http.StatusServiceUnavailable {
		t.Errorf("fault: %d", st)
	}
	s.SetFailure("upload", 0)
	if st := post(t, u2, "text/csv", []byte("x")); st != http.StatusOK {
		t.Errorf("after the fault: %d", st)
	}
}

func TestUsergroupsUsersUpdate(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(0))
	for _, id := range []string{"U0A", "U0B", "U0C"} {
		s.AddUser(fakeslack.User{ID: id, Email: strings.ToLower(id) + "@lumi.test"})
	}
	s.AddGroup("payments-eligible", "S0PAY", "U0A", "U0B", "U0C")
	api := apiClient(s)
	ctx := context.Background()

	g, err := api.UpdateUserGroupMembersContext(ctx, "S0PAY", "U0A,U0C")
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != "S0PAY" || !slices.Equal(g.Users, []string{"U0A", "U0C"}) {
		t.Errorf("reply group = %+v", g)
	}
	if m, _ := api.GetUserGroupMembersContext(ctx, "S0PAY"); !slices.Equal(m, []string{"U0A", "U0C"}) {
		t.Errorf("usergroups.users.list after update = %v", m)
	}
	if m, ok := s.GroupMembers("payments-eligible"); !ok || !slices.Equal(m, []string{"U0A", "U0C"}) {
		t.Errorf("GroupMembers = %v, %v", m, ok)
	}
	ups := s.GroupUpdates()
	if len(ups) != 1 || ups[0].Group != "S0PAY" || !slices.Equal(ups[0].Users, []string{"U0A", "U0C"}) {
		t.Errorf("updates = %+v", ups)
	}

	for _, tt := range []struct{ group, users, want string }{
		{"S0PAY", "", "no_users_provided"},
		{"S0PAY", "U0A,U0NOBODY", "invalid_users"},
		{"S0NONE", "U0A", "no_such_subteam"},
	} {
		if _, err := api.UpdateUserGroupMembersContext(ctx, tt.group, tt.users); err == nil || err.Error() != tt.want {
			t.Errorf("update(%s, %q) err = %v, want %s", tt.group, tt.users, err, tt.want)
		}
	}
	if len(s.GroupUpdates()) != 1 {
		t.Errorf("failed updates recorded: %+v", s.GroupUpdates())
	}

	// secretbot's RemoveFromGroup end to end.
	c := sbslack.New(&config.Config{Creds: config.Credentials{SlackBotToken: s.BotToken(), SlackAppToken: s.AppToken(), SlackAPIURL: s.APIURL()}}, nil)
	if err := c.RemoveFromGroup(ctx, "S0PAY", "U0C"); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.GroupMembers("S0PAY"); !slices.Equal(m, []string{"U0A"}) {
		t.Errorf("after RemoveFromGroup = %v", m)
	}
	if err := c.RemoveFromGroup(ctx, "S0PAY", "U0A"); !errors.Is(err, sbslack.ErrLastMember) {
		t.Errorf("removing the last member: %v", err)
	}
}

func TestUsersLookupByEmail(t *testing.T) {
	s := fakeslack.New(t, fakeslack.WithPingInterval(0))
	s.AddUser(fakeslack.User{ID: "U0ALICE", Name: "alice", Email: "alice@lumi.test"})
	s.AddUser(fakeslack.User{ID: "U0GONE", Email: "gone@lumi.test", Deleted: true})
	api := apiClient(s)
	ctx := context.Background()
	u, err := api.GetUserByEmailContext(ctx, "Alice@Lumi.test")
	if err != nil || u.ID != "U0ALICE" || u.Profile.Email != "alice@lumi.test" {
		t.Fatalf("lookup = %+v, %v", u, err)
	}
	if _, err := api.GetUserByEmailContext(ctx, "nobody@lumi.test"); err == nil || err.Error() != "users_not_found" {
		t.Errorf("unknown e-mail: %v", err)
	}
	if u, err := api.GetUserByEmailContext(ctx, "gone@lumi.test"); err != nil || !u.Deleted {
		t.Errorf("deactivated user: %+v, %v", u, err)
	}
	if got := s.CallsTo("users.lookupByEmail"); len(got) != 3 || got[0].Param("email") != "Alice@Lumi.test" {
		t.Errorf("calls = %+v", got)
	}

	c := sbslack.New(&config.Config{Creds: config.Credentials{SlackBotToken: s.BotToken(), SlackAppToken: s.AppToken(), SlackAPIURL: s.APIURL()}}, nil)
	if id, err := c.SlackIDByEmail(ctx, "alice@lumi.test"); err != nil || id != "U0ALICE" {
		t.Errorf("SlackIDByEmail = %q, %v", id, err)
	}
	if _, err := c.SlackIDByEmail(ctx, "gone@lumi.test"); !errors.Is(err, sbslack.ErrUserNotFound) {
		t.Errorf("deactivated: %v", err)
	}
}
