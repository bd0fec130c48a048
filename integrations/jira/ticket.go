package jira

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	jira "github.com/andygrunwald/go-jira"

	"github.com/secretbot/secretbot/internal/crash"
)

// Ticket is what secretbot needs from an access-request ticket.
type Ticket struct {
	Key            string
	Project        string
	Summary        string
	Status         string // e.g. "Approved"
	StatusCategory string // new | indeterminate | done
	URL            string // browse link

	// Request data, from the fields named in jira.fields.
	Owner         string
	Scope         string
	Justification string
	Expiry        time.Time // zero when unset; a bare date means 00:00 UTC that day

	// ServiceDesk is true when Jira Service Management answered for the
	// ticket; Approvals is then the whole list (possibly empty).
	ServiceDesk   bool
	Approvals     []Approval
	StatusChanges []Change // oldest first, as Jira lists them

	// Problems lists values that were present but could not be read (an
	// expiry that is not a date, a change without a readable time). A
	// careful caller refuses a ticket with problems.
	Problems []string
}

// Approval is one Jira Service Management approval of the request.
type Approval struct {
	ID            string
	Name          string
	FinalDecision string // pending | approved | declined
	Approvers     []Approver
	CompletedAt   time.Time
}

// Approver is one person asked to approve, and their answer.
type Approver struct {
	AccountID string // Cloud accountId; the username on Data Center
	Name      string
	Email     string // empty when Jira hides it
	Decision  string // pending | approved | declined
}

// Change is one status transition from the changelog.
type Change struct {
	From, To        string
	AuthorAccountID string // Cloud accountId; the username on Data Center
	AuthorName      string
	AuthorEmail     string
	At              time.Time
}

// Missing names the request fields that are empty ("owner", "scope",
// "justification", "expiry").
func (t Ticket) Missing() []string {
	var out []string
	for _, f := range []struct {
		name  string
		empty bool
	}{{"owner", t.Owner == ""}, {"scope", t.Scope == ""}, {"justification", t.Justification == ""}, {"expiry", t.Expiry.IsZero()}} {
		if f.empty {
			out = append(out, f.name)
		}
	}
	return out
}

// Ticket reads key (which must be a key of jira.project) with its changelog
// and its Service Management approvals (a 404 there means the ticket is not
// a Service Management request: ServiceDesk false, no approvals).
//
// Errors: ErrNotConfigured (also when jira.project is empty); ErrInvalidKey;
// an *Error matching ErrNotFound when Jira has no such ticket or the bot may
// not see it; any other *Error means Jira could not answer (fail closed).
func (c *Client) Ticket(ctx context.Context, key string) (Ticket, error) {
	crash.Point("jira.ticket.before")
	defer crash.Point("jira.ticket.after")
	if !c.enabled {
		return Ticket{}, ErrNotConfigured
	}
	if c.project == "" {
		return Ticket{}, fmt.Errorf("%w: jira.project is not set", ErrNotConfigured)
	}
	if !ValidKey(c.project, key) {
		return Ticket{}, ErrInvalidKey
	}
	// The issue and its approvals need only the key: both are asked at once,
	// so a check costs one Jira round trip, not two. A failed issue read
	// cancels the approvals read, whose answer would not be used.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type approvalsReply struct {
		list []Approval
		sd   bool
		err  error
	}
	ach := make(chan approvalsReply, 1)
	go func() {
		var r approvalsReply
		r.list, r.sd, r.err = c.approvals(actx, key)
		ach <- r
	}()
	var is *jira.Issue
	err := c.do(ctx, "get ticket "+key, func(ctx context.Context) error {
		var err error
		is, _, err = c.api.Issue.GetWithContext(ctx, key, &jira.GetQueryOptions{Expand: "changelog", Fields: c.fieldList()})
		return err
	})
	if err == nil && (is == nil || is.Fields == nil) {
		err = &Error{Op: "get ticket " + key, Status: http.StatusOK, Detail: "unexpected reply: no fields"}
	}
	if err != nil {
		cancel()
		<-ach
		return Ticket{}, err
	}
	t := c.ticketFrom(is)
	a := <-ach
	if a.err != nil {
		return Ticket{}, a.err
	}
	t.Approvals, t.ServiceDesk = a.list, a.sd
	return t, nil
}

// fieldList asks only for what is used: smaller replies, and no field the
// bot has no business reading.
func (c *Client) fieldList() string {
	fs := []string{"summary", "status", "project"}
	for _, f := range []string{c.fields.Owner, c.fields.Scope, c.fields.Justification, c.fields.Expiry} {
		if f != "" {
			fs = append(fs, f)
		}
	}
	return strings.Join(fs, ",")
}

func (c *Client) ticketFrom(is *jira.Issue) Ticket {
	f := is.Fields
	t := Ticket{
		Key:     is.Key,
		Project: f.Project.Key,
		Summary: f.Summary,
		URL:     c.base.JoinPath("browse", is.Key).String(),
	}
	if t.Project != c.project || !ValidKey(c.project, t.Key) {
		// Jira follows moved issues to their new key.
		t.Problems = append(t.Problems, fmt.Sprintf("ticket is %s in project %q, not in %s", c.clean(t.Key), c.clean(t.Project), c.project))
	}
	if f.Status != nil {
		t.Status = f.Status.Name
		t.StatusCategory = f.Status.StatusCategory.Key
	}
	t.Owner = fieldText(f, c.fields.Owner)
	t.Scope = fieldText(f, c.fields.Scope)
	t.Justification = fieldText(f, c.fields.Justification)
	if name := c.fields.Expiry; name == "duedate" {
		t.Expiry = time.Time(f.Duedate)
	} else if s := fieldText(f, name); s != "" {
		exp, err := parseTime(s)
		if err != nil {
			t.Problems = append(t.Problems, fmt.Sprintf("expiry (%s) %q is not a date (accepted: 2006-01-02 or 2006-01-02T15:04:05.000-0700)", name, c.clean(s)))
		}
		t.Expiry = exp
	}
	if is.Changelog != nil {
		for _, h := range is.Changelog.Histories {
			for _, it := range h.Items {
				if !strings.EqualFold(it.Field, "status") {
					continue
				}
				at, err := parseTime(h.Created)
				if err != nil {
					t.Problems = append(t.Problems, fmt.Sprintf("status change to %q has no readable time", it.ToString))
				}
				t.StatusChanges = append(t.StatusChanges, Change{
					From: it.FromString, To: it.ToString,
					AuthorAccountID: firstNonEmpty(h.Author.AccountID, h.Author.Name),
					AuthorName:      firstNonEmpty(h.Author.DisplayName, h.Author.Name),
					AuthorEmail:     h.Author.EmailAddress,
					At:              at,
				})
			}
		}
	}
	return t
}

// fieldText reads a field as text: a standard field by its name, anything
// else (customfield_NNNNN) from Unknowns. Users give their e-mail (or name),
// options their value, lists are joined with ", ".
func fieldText(f *jira.IssueFields, name string) string {
	switch name {
	case "":
		return ""
	case "assignee":
		return userText(f.Assignee)
	case "reporter":
		return userText(f.Reporter)
	case "summary":
		return strings.TrimSpace(f.Summary)
	case "description":
		return strings.TrimSpace(f.Description)
	case "environment":
		return strings.TrimSpace(f.Environment)
	case "labels":
		return strings.Join(f.Labels, ", ")
	case "duedate":
		if d := time.Time(f.Duedate); !d.IsZero() {
			return d.Format(time.DateOnly)
		}
		return ""
	}
	v, _ := f.Unknowns.Value(name)
	return anyText(v)
}

func userText(u *jira.User) string {
	if u == nil {
		return ""
	}
	return firstNonEmpty(u.EmailAddress, u.DisplayName, u.Name, u.AccountID)
}

func anyText(v any) string {
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case map[string]any:
		for _, k := range []string{"value", "emailAddress", "displayName", "name", "key", "accountId"} {
			if s, ok := v[k].(string); ok && strings.TrimSpace(s) != "" {
				return strings.TrimSpace(s)
			}
		}
	case []any:
		var parts []string
		for _, e := range v {
			if s := anyText(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

// parseTime reads Jira's datetime ("2006-01-02T15:04:05.000-0700"), RFC 3339,
// or a bare date, which is taken as 00:00 UTC that day: the earliest reading,
// so a grant never outlives what the ticket allows.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02T15:04:05-0700", time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a Jira date or datetime")
}
