package slack

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

const csvData = "name,environment,owner,rotationDue\npayments-db,prod,payments,2026-04-01\n"

func TestUploadCSV(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	c := f.client(t)
	err := c.UploadCSV(context.Background(), "U1", "inventory.csv", []byte(csvData), "Inventory export (1 secret)")
	if err != nil {
		t.Fatal(err)
	}
	ups := f.uploadList()
	if len(ups) != 1 {
		t.Fatalf("%d uploads, want 1", len(ups))
	}
	up := ups[0]
	if string(up.Data) != csvData || up.Filename != "inventory.csv" || up.Title != "inventory.csv" {
		t.Errorf("upload = %+v", up)
	}
	if up.Channel != "D1" {
		t.Errorf("shared to channel %q, want the DM D1", up.Channel)
	}
	if up.Comment != "Inventory export (1 secret)" {
		t.Errorf("initial_comment = %q", up.Comment)
	}
	if up.Auth != "" {
		t.Errorf("the byte upload carried an Authorization header: %q", up.Auth)
	}
	// Step order and arguments.
	var order []string
	for _, m := range []string{"conversations.open", "files.getUploadURLExternal", "upload", "files.completeUploadExternal"} {
		if n := len(f.callsTo(m)); n != 1 {
			t.Errorf("%s called %d times, want 1", m, n)
		}
	}
	f.mu.Lock()
	for _, cl := range f.calls {
		order = append(order, cl.Method)
	}
	f.mu.Unlock()
	if got := strings.Join(order, " "); got != "conversations.open files.getUploadURLExternal upload files.completeUploadExternal" {
		t.Errorf("calls = %s", got)
	}
	get := f.callsTo("files.getUploadURLExternal")[0].Form
	if get.Get("filename") != "inventory.csv" || get.Get("length") != strconv.Itoa(len(csvData)) {
		t.Errorf("getUploadURLExternal form = %v", get)
	}
	if open := f.callsTo("conversations.open")[0].Form; open.Get("users") != "U1" {
		t.Errorf("conversations.open users = %q", open.Get("users"))
	}
	if done := f.callsTo("files.completeUploadExternal")[0].Form; done.Get("channel_id") != "D1" || !strings.Contains(done.Get("files"), `"title":"inventory.csv"`) {
		t.Errorf("completeUploadExternal form = %v", done)
	}
}

func TestUploadCSVErrors(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		r         reply
		user      string
		wantOp    string
		wantCode  string
		retryable bool
	}{
		{name: "unknown user", user: "U404", wantOp: "conversations.open", wantCode: "user_not_found"},
		{name: "missing scope", method: "files.getUploadURLExternal", r: reply{Body: `{"ok":false,"error":"missing_scope","needed":"files:write"}`},
			wantOp: "files.getUploadURLExternal", wantCode: "missing_scope"},
		{name: "rate limited", method: "files.getUploadURLExternal", r: reply{Status: 429, Header: map[string]string{"Retry-After": "7"}},
			wantOp: "files.getUploadURLExternal", wantCode: "rate_limited", retryable: true},
		{name: "no upload url", method: "files.getUploadURLExternal", r: reply{Body: `{"ok":true}`},
			wantOp: "files.getUploadURLExternal", wantCode: "bad_response", retryable: true},
		{name: "foreign upload url", method: "files.getUploadURLExternal",
			r:      reply{Body: `{"ok":true,"upload_url":"http://evil.example/upload/F1","file_id":"F1"}`},
			wantOp: "upload", wantCode: "invalid_upload_url"},
		{name: "upload 500", method: "upload", r: reply{Status: 500, Body: "oops"}, wantOp: "upload", wantCode: "http_500", retryable: true},
		{name: "upload 403", method: "upload", r: reply{Status: 403, Body: "no"}, wantOp: "upload", wantCode: "http_403"},
		{name: "complete fails", method: "files.completeUploadExternal", r: reply{Body: `{"ok":false,"error":"channel_not_found"}`},
			wantOp: "files.completeUploadExternal", wantCode: "channel_not_found"},
		{name: "complete internal error", method: "files.completeUploadExternal", r: reply{Body: `{"ok":false,"error":"internal_error"}`},
			wantOp: "files.completeUploadExternal", wantCode: "internal_error", retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			seedDirectory(f)
			if tt.method != "" {
				f.set(tt.method, tt.r)
			}
			user := tt.user
			if user == "" {
				user = "U1"
			}
			err := f.client(t).UploadCSV(context.Background(), user, "inventory.csv", []byte(csvData), "export")
			var de *DeliveryError
			if !errors.As(err, &de) || de.Op != tt.wantOp || de.Code != tt.wantCode || de.Retryable != tt.retryable {
				t.Fatalf("err = %#v (%v), want op %s code %s retryable %v", de, err, tt.wantOp, tt.wantCode, tt.retryable)
			}
			assertNoToken(t, err.Error(), testBot, testApp)
			if strings.Contains(err.Error(), "/upload/") || strings.Contains(err.Error(), "payments-db") {
				t.Errorf("error holds the upload URL or the file: %v", err)
			}
			if n := len(f.callsTo("files.completeUploadExternal")); n > 0 && tt.wantOp != "files.completeUploadExternal" {
				t.Errorf("completed an upload after a failed step")
			}
		})
	}
}

func TestUploadCSVNetworkErrorHidesURL(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	f.set("upload", reply{Delay: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := f.client(t).UploadCSV(ctx, "U1", "inventory.csv", []byte(csvData), "export")
	var de *DeliveryError
	if !errors.As(err, &de) || de.Op != "upload" || de.Code != "canceled" || !de.Retryable {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "/upload/F") {
		t.Errorf("error holds the upload URL: %v", err)
	}
}

func TestUploadCSVInvalid(t *testing.T) {
	f := newFakeSlack(t)
	c := f.client(t)
	for name, call := range map[string]func() error{
		"no user":    func() error { return c.UploadCSV(context.Background(), "", "a.csv", []byte("x"), "") },
		"no name":    func() error { return c.UploadCSV(context.Background(), "U1", " ", []byte("x"), "") },
		"path name":  func() error { return c.UploadCSV(context.Background(), "U1", "../a.csv", []byte("x"), "") },
		"empty data": func() error { return c.UploadCSV(context.Background(), "U1", "a.csv", nil, "") },
	} {
		var de *DeliveryError
		if err := call(); !errors.As(err, &de) || de.Code != "invalid_message" || de.Retryable {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	f.mu.Lock()
	n := len(f.calls)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("%d calls to Slack for invalid arguments", n)
	}
}
