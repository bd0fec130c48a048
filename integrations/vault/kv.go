package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode"

	"github.com/hashicorp/vault/api"

	"github.com/secretbot/secretbot/internal/crash"
)

// KV v2 secrets (inventory and rotation). Every call here is allowed by
// deploy/vault/secretbot-bot.hcl on the configured mount: create/read/update
// <mount>/data/*, create/read/update/patch <mount>/metadata/*, update
// <mount>/delete/* and <mount>/destroy/*.
//
// Secret values never reach an error: Vault's own error texts do not quote
// them, the values written are scrubbed from any text all the same, and a
// reply that cannot be decoded (whose decoder error could quote it) is
// reported without its text. Nothing here logs.

// ErrCASMismatch is wrapped (in an *Error) by Write when the check-and-set
// version was not the secret's current version: someone else wrote it since
// it was read (or it exists although cas was 0). Nothing was written.
var ErrCASMismatch = errors.New("check-and-set mismatch")

// Vault's custom_metadata limits (KV v2): more is refused with HTTP 400.
const (
	maxCustomKeys     = 64
	maxCustomKeyLen   = 128
	maxCustomValueLen = 512
)

// Current returns the current version of the KV v2 secret at mount/path, 0
// when the secret does not exist. The current version counts even when it
// was deleted or destroyed: it is what a check-and-set write must name.
//
// Errors: an *Error with ErrPermissionDenied, ErrUnavailable, or a context
// error; plain errors for invalid arguments.
func (c *Client) Current(ctx context.Context, mount, path string) (int, error) {
	_, v, err := c.metadata(ctx, "current version", mount, path)
	return v, err
}

// Metadata returns the custom_metadata and current version of the secret at
// mount/path, for the inventory's drift check. Non-string metadata values
// come back as JSON text.
//
// Errors: an *Error with ErrNotFound when the secret does not exist;
// otherwise as for Current.
func (c *Client) Metadata(ctx context.Context, mount, path string) (map[string]string, int, error) {
	custom, v, err := c.metadata(ctx, "read metadata", mount, path)
	if err == nil && v == 0 && custom == nil {
		m, p, _ := kvTarget(mount, path)
		return nil, 0, &Error{Op: "read metadata " + m + "/" + p, StatusCode: http.StatusNotFound,
			Detail: fmt.Sprintf("%s/%s does not exist", m, p), kind: ErrNotFound}
	}
	return custom, v, err
}

// metadata reads the secret's metadata; nil, 0 and no error when the secret
// does not exist.
func (c *Client) metadata(ctx context.Context, op, mount, path string) (map[string]string, int, error) {
	mount, path, err := kvTarget(mount, path)
	if err != nil {
		return nil, 0, err
	}
	op += " " + mount + "/" + path
	if err := c.ensureToken(ctx); err != nil {
		return nil, 0, err
	}
	md, err := c.api.KVv2(mount).GetMetadata(ctx, path)
	if errors.Is(err, api.ErrSecretNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, c.kvFail(ctx, op, err, nil)
	}
	if md == nil {
		return nil, 0, nil
	}
	var custom map[string]string
	if len(md.CustomMetadata) > 0 {
		custom = stringMap(md.CustomMetadata)
	}
	return custom, md.CurrentVersion, nil
}

// Write stores value as a new version of the secret at mount/path with
// check-and-set: cas is the version the caller read (0: the secret must not
// exist yet). It returns the new version.
//
// Errors: an *Error with ErrCASMismatch (the secret changed since it was
// read; nothing was written), ErrPermissionDenied, ErrUnavailable, or a
// context error; plain errors for invalid arguments. No error text holds a
// value.
func (c *Client) Write(ctx context.Context, mount, path string, value map[string]string, cas int) (int, error) {
	mount, path, err := kvTarget(mount, path)
	if err != nil {
		return 0, err
	}
	op := "write " + mount + "/" + path
	if cas < 0 {
		return 0, fmt.Errorf("vault: %s: negative check-and-set version %d", op, cas)
	}
	if len(value) == 0 {
		return 0, fmt.Errorf("vault: %s: no value to write", op)
	}
	data := make(map[string]any, len(value))
	for k, v := range value {
		if strings.TrimSpace(k) == "" {
			return 0, fmt.Errorf("vault: %s: empty key in the value", op)
		}
		data[k] = v
	}
	if err := c.ensureToken(ctx); err != nil {
		return 0, err
	}
	crash.Point("vault.kv_write.before")
	s, err := c.api.KVv2(mount).Put(ctx, path, data, api.WithCheckAndSet(cas))
	crash.Point("vault.kv_write.after")
	if err != nil {
		if hasMessage(err, http.StatusBadRequest, "check-and-set parameter did not match") {
			detail := fmt.Sprintf("%s/%s is no longer at version %d: it was written by someone else since it was read; nothing was written", mount, path, cas)
			if cas == 0 {
				detail = fmt.Sprintf("%s/%s already exists; nothing was written", mount, path)
			}
			return 0, &Error{Op: op, StatusCode: http.StatusBadRequest, Detail: detail, kind: ErrCASMismatch}
		}
		return 0, c.kvFail(ctx, op, err, value)
	}
	if s == nil || s.VersionMetadata == nil || s.VersionMetadata.Version <= 0 {
		return 0, &Error{Op: op, Detail: "Vault's reply carries no version", kind: ErrUnavailable}
	}
	return s.VersionMetadata.Version, nil
}

// Read returns the value of one version of the secret at mount/path
// (version 0: the current one). Non-string values come back as JSON text.
//
// Errors: an *Error with ErrNotFound (no such secret or version, or the
// version was deleted or destroyed: the detail says which),
// ErrPermissionDenied, ErrUnavailable, or a context error; plain errors for
// invalid arguments. No error text holds a value.
func (c *Client) Read(ctx context.Context, mount, path string, version int) (map[string]string, error) {
	mount, path, err := kvTarget(mount, path)
	if err != nil {
		return nil, err
	}
	op := "read " + mount + "/" + path
	if version < 0 {
		return nil, fmt.Errorf("vault: %s: negative version %d", op, version)
	}
	label := "the current version"
	if version > 0 {
		op += fmt.Sprintf(" version %d", version)
		label = fmt.Sprintf("version %d", version)
	}
	if err := c.ensureToken(ctx); err != nil {
		return nil, err
	}
	kv := c.api.KVv2(mount)
	var s *api.KVSecret
	if version == 0 {
		s, err = kv.Get(ctx, path)
	} else {
		s, err = kv.GetVersion(ctx, path, version)
	}
	if errors.Is(err, api.ErrSecretNotFound) {
		detail := fmt.Sprintf("%s/%s does not exist", mount, path)
		if version > 0 {
			detail = fmt.Sprintf("%s/%s has no %s", mount, path, label)
		}
		return nil, &Error{Op: op, StatusCode: http.StatusNotFound, Detail: detail, kind: ErrNotFound}
	}
	if err != nil {
		return nil, c.kvFail(ctx, op, err, nil)
	}
	if s == nil || s.Data == nil {
		state := "deleted"
		if s != nil && s.VersionMetadata != nil && s.VersionMetadata.Destroyed {
			state = "destroyed"
		}
		return nil, &Error{Op: op, StatusCode: http.StatusNotFound, Detail: fmt.Sprintf("%s of %s/%s was %s", label, mount, path, state), kind: ErrNotFound}
	}
	return stringMap(s.Data), nil
}

// Destroy permanently removes the data of one version of the secret at
// mount/path (the previous value once a rotation is confirmed). Destroying
// a version that is already destroyed, or does not exist, succeeds.
//
// Errors: an *Error with ErrPermissionDenied, ErrUnavailable, or a context
// error; plain errors for invalid arguments.
func (c *Client) Destroy(ctx context.Context, mount, path string, version int) error {
	return c.versionOp(ctx, "destroy", mount, path, version, func(kv *api.KVv2, path string) error {
		crash.Point("vault.kv_destroy.before")
		defer crash.Point("vault.kv_destroy.after")
		return kv.Destroy(ctx, path, []int{version})
	})
}

// SoftDelete deletes one version of the secret at mount/path so that it can
// still be undeleted by an operator. Deleting a deleted version succeeds.
//
// Errors as for Destroy.
func (c *Client) SoftDelete(ctx context.Context, mount, path string, version int) error {
	return c.versionOp(ctx, "delete", mount, path, version, func(kv *api.KVv2, path string) error {
		return kv.DeleteVersions(ctx, path, []int{version})
	})
}

func (c *Client) versionOp(ctx context.Context, verb, mount, path string, version int, fn func(*api.KVv2, string) error) error {
	mount, path, err := kvTarget(mount, path)
	if err != nil {
		return err
	}
	op := fmt.Sprintf("%s %s/%s version %d", verb, mount, path, version)
	if version <= 0 {
		return fmt.Errorf("vault: %s: a version must be 1 or more", op)
	}
	if err := c.ensureToken(ctx); err != nil {
		return err
	}
	if err := fn(c.api.KVv2(mount), path); err != nil {
		return c.kvFail(ctx, op, err, nil)
	}
	return nil
}

// PatchMetadata merges custom into the custom_metadata of the secret at
// mount/path (keys not named keep their values; the other metadata settings
// are untouched). The secret must exist.
//
// Errors: an *Error with ErrNotFound (no such secret), ErrPermissionDenied,
// ErrUnavailable, or a context error; plain errors for invalid arguments
// (Vault's limits: 64 keys, keys up to 128 bytes, values up to 512 bytes).
func (c *Client) PatchMetadata(ctx context.Context, mount, path string, custom map[string]string) error {
	mount, path, err := kvTarget(mount, path)
	if err != nil {
		return err
	}
	op := "patch metadata of " + mount + "/" + path
	if len(custom) == 0 {
		return nil
	}
	if len(custom) > maxCustomKeys {
		return fmt.Errorf("vault: %s: %d custom metadata keys, Vault allows %d", op, len(custom), maxCustomKeys)
	}
	cm := make(map[string]any, len(custom))
	keys := make([]string, 0, len(custom))
	for k := range custom {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := custom[k]
		switch {
		case strings.TrimSpace(k) == "":
			return fmt.Errorf("vault: %s: empty custom metadata key", op)
		case len(k) > maxCustomKeyLen:
			return fmt.Errorf("vault: %s: custom metadata key %.40q... is longer than %d bytes", op, k, maxCustomKeyLen)
		case len(v) > maxCustomValueLen:
			return fmt.Errorf("vault: %s: custom metadata %s is longer than %d bytes", op, k, maxCustomValueLen)
		}
		cm[k] = v
	}
	if err := c.ensureToken(ctx); err != nil {
		return err
	}
	crash.Point("vault.kv_patch_metadata.before")
	err = c.api.KVv2(mount).PatchMetadata(ctx, path, api.KVMetadataPatchInput{CustomMetadata: cm})
	crash.Point("vault.kv_patch_metadata.after")
	if err != nil {
		e := c.kvFail(ctx, op, err, nil)
		if errors.Is(e, ErrNotFound) {
			e.(*Error).Detail = fmt.Sprintf("%s/%s does not exist", mount, path)
		}
		return e
	}
	return nil
}

// kvFail wraps a failed KV call. Vault's error replies and transport errors
// keep their (scrubbed) text; anything else came from decoding a reply, and
// such a text may quote the reply, i.e. a secret value: it is dropped.
// The values being written are scrubbed from the text as well.
func (c *Client) kvFail(ctx context.Context, op string, err error, value map[string]string) error {
	var (
		re *api.ResponseError
		ue *url.Error
		ne net.Error
	)
	if errors.As(err, &re) || errors.As(err, &ue) || errors.As(err, &ne) || (ctx != nil && ctx.Err() != nil) {
		extra := make([]string, 0, len(value))
		for _, v := range value {
			extra = append(extra, v)
		}
		return c.fail(ctx, op, err, extra...)
	}
	return &Error{Op: op, Detail: "unexpected reply from Vault", kind: ErrUnavailable}
}

// kvTarget checks a mount and a secret path and returns them without
// surrounding slashes. Empty, "." and ".." segments and control characters
// are refused, so input can never reach another Vault path.
func kvTarget(mount, path string) (string, string, error) {
	m := strings.Trim(mount, "/")
	p := strings.Trim(path, "/")
	if m == "" {
		return "", "", errors.New("vault: empty KV mount")
	}
	if p == "" {
		return "", "", fmt.Errorf("vault: empty secret path under %s", m)
	}
	for _, part := range []struct{ what, s string }{{"KV mount", m}, {"secret path", p}} {
		for _, seg := range strings.Split(part.s, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return "", "", fmt.Errorf("vault: %s %q has an empty, \".\" or \"..\" segment", part.what, part.s)
			}
		}
		if strings.IndexFunc(part.s, func(r rune) bool { return unicode.IsControl(r) || r == '?' || r == '#' || r == '%' }) >= 0 {
			return "", "", fmt.Errorf("vault: %s %q has a control character, ?, # or %%", part.what, part.s)
		}
	}
	return m, p, nil
}

// stringMap turns a decoded JSON object into strings: strings as they are,
// anything else (numbers, booleans, objects) as JSON text.
func stringMap(in map[string]any) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		switch t := v.(type) {
		case string:
			out[k] = t
		case nil:
			out[k] = ""
		default:
			b, err := json.Marshal(t)
			if err != nil {
				b = []byte(fmt.Sprint(t))
			}
			out[k] = string(b)
		}
	}
	return out
}
