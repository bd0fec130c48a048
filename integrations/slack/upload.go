package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	slackgo "github.com/slack-go/slack"
)

// Slack rejects larger files; the inventory CSV is far below this.
const maxUploadBytes = 1 << 30

const opUpload = "upload"

// UploadCSV sends data as a file named filename to userID's DM with the bot,
// with comment as the message that carries it. Slack's three-step upload:
// files.getUploadURLExternal (filename, length), a POST of the bytes to the
// upload URL it returns (no token is sent there), then
// files.completeUploadExternal with the file id and title, channel_id = the
// DM channel (conversations.open users=userID) and initial_comment.
//
// Every error is a *DeliveryError whose Op names the failed step
// ("conversations.open", "files.getUploadURLExternal", "upload",
// "files.completeUploadExternal"), classified as for Deliver; its text holds
// no token, no upload URL and none of data. Retrying the whole call is safe
// until files.completeUploadExternal succeeded: an upload that is never
// completed is never shared.
func (c *Client) UploadCSV(ctx context.Context, userID, filename string, data []byte, comment string) error {
	bad := func(op, why string) error {
		return &DeliveryError{Op: op, Code: "invalid_message", Err: errors.New(why)}
	}
	switch {
	case strings.TrimSpace(userID) == "":
		return bad("conversations.open", "upload without a user")
	case strings.TrimSpace(filename) == "" || strings.ContainsAny(filename, "/\\\x00\r\n"):
		return bad("files.getUploadURLExternal", "a file name must be a plain, non-empty name")
	case len(data) == 0:
		return bad("files.getUploadURLExternal", "Slack refuses an empty file")
	case len(data) > maxUploadBytes:
		return bad("files.getUploadURLExternal", "file too large")
	}

	ch, _, _, err := c.api.OpenConversationContext(ctx, &slackgo.OpenConversationParameters{Users: []string{userID}})
	if err != nil {
		return c.deliveryError("conversations.open", err)
	}
	if ch == nil || ch.ID == "" {
		return &DeliveryError{Op: "conversations.open", Code: "bad_response", Retryable: true, Err: errors.New("no channel in the reply")}
	}

	up, err := c.api.GetUploadURLExternalContext(ctx, slackgo.GetUploadURLExternalParameters{FileName: filename, FileSize: len(data)})
	if err != nil {
		return c.deliveryError("files.getUploadURLExternal", err)
	}
	if up.UploadURL == "" || up.FileID == "" {
		return &DeliveryError{Op: "files.getUploadURLExternal", Code: "bad_response", Retryable: true, Err: errors.New("no upload_url or file_id in the reply")}
	}

	if err := c.uploadBytes(ctx, up.UploadURL, filename, data); err != nil {
		return err
	}

	_, err = c.api.CompleteUploadExternalContext(ctx, slackgo.CompleteUploadExternalParameters{
		Files:          []slackgo.FileSummary{{ID: up.FileID, Title: filename}},
		Channel:        ch.ID,
		InitialComment: comment,
	})
	if err != nil {
		return c.deliveryError("files.completeUploadExternal", err)
	}
	return nil
}

// uploadBytes posts data, multipart-encoded as the field "file", to the URL
// files.getUploadURLExternal handed out. That URL is itself the credential:
// the bot token is not sent, and the URL is never put in an error.
func (c *Client) uploadBytes(ctx context.Context, rawURL, filename string, data []byte) error {
	fail := func(code string, retry bool, err error) error {
		return &DeliveryError{Op: opUpload, Code: code, Retryable: retry, Err: err}
	}
	u, err := url.Parse(rawURL)
	if err != nil || !c.uploadURLAllowed(u) {
		return fail("invalid_upload_url", false, errors.New("the upload URL Slack returned is neither an https Slack URL nor on the API host"))
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", filename)
	if err == nil {
		_, err = fw.Write(data)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return fail("invalid_message", false, errors.New("encoding the file failed"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body.Bytes()))
	if err != nil {
		return fail("invalid_upload_url", false, errors.New("cannot build the upload request"))
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fail("canceled", true, c.scrub(err))
		}
		return fail("network", true, c.scrub(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Sprintf("http_%d", resp.StatusCode), retryableStatus(resp.StatusCode), nil)
	}
	return nil
}

// uploadURLAllowed accepts https URLs on Slack's domains, and URLs on the
// configured API host (a test server, or a proxy in front of Slack).
func (c *Client) uploadURLAllowed(u *url.URL) bool {
	if u.Host == "" {
		return false
	}
	if base, err := url.Parse(c.base); err == nil && base.Host != "" && u.Scheme == base.Scheme && strings.EqualFold(u.Host, base.Host) {
		return true
	}
	if u.Scheme != "https" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	for _, d := range []string{"slack.com", "slack-gov.com"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}
