package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/secretbot/secretbot/internal/crash"
)

// Incident is what secretbot needs to know about a PagerDuty incident.
type Incident struct {
	ID                 string
	Number             int
	Title              string
	Status             string // triggered | acknowledged | resolved
	ServiceID          string
	EscalationPolicyID string
	AssigneeIDs        []string
	URL                string
}

// Open reports whether the incident is triggered or acknowledged.
func (i Incident) Open() bool { return i.Status == "triggered" || i.Status == "acknowledged" }

const maxRefLength = 300

var (
	numberRe      = regexp.MustCompile(`^#?([1-9][0-9]{0,11})$`)
	incidentPath  = regexp.MustCompile(`^/incidents/([A-Z0-9]+)/?$`)
	allDigitsOnly = regexp.MustCompile(`^[0-9]+$`)
)

// ParseIncidentRef accepts an incident id ("PABC123"), a number ("#1234" or
// "1234") or an incident URL ("https://acme.pagerduty.com/incidents/PABC123",
// any host: the lookup always goes to the configured API) and returns what
// goes into GET /incidents/{id}, which takes an id or a number. ErrInvalidRef
// otherwise.
func ParseIncidentRef(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" || len(ref) > maxRefLength {
		return "", ErrInvalidRef
	}
	if m := numberRe.FindStringSubmatch(ref); m != nil {
		return m[1], nil
	}
	if strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://") {
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" {
			return "", ErrInvalidRef
		}
		m := incidentPath.FindStringSubmatch(u.Path)
		if m == nil {
			return "", ErrInvalidRef
		}
		ref = m[1]
	}
	if !idRe.MatchString(ref) || allDigitsOnly.MatchString(ref) {
		return "", ErrInvalidRef
	}
	return ref, nil
}

// Incident looks an incident up by id, number or URL (see ParseIncidentRef).
// A number is resolved by PagerDuty itself: GET /incidents/{id} accepts
// "either the id or number of the incident", so one call serves both and no
// listing (which would only see recent incidents) is needed.
//
// Errors: ErrInvalidRef; ErrNotConfigured; an *Error matching ErrNotFound
// when there is no such incident; any other *Error means PagerDuty could not
// answer (fail closed).
func (c *Client) Incident(ctx context.Context, ref string) (Incident, error) {
	crash.Point("pagerduty.incident.before")
	defer crash.Point("pagerduty.incident.after")
	if !c.enabled {
		return Incident{}, ErrNotConfigured
	}
	key, err := ParseIncidentRef(ref)
	if err != nil {
		return Incident{}, err
	}
	label := key
	if allDigitsOnly.MatchString(key) {
		label = "#" + key
	}
	op := "get incident " + label
	var in *pagerduty.Incident
	err = c.do(ctx, op, func(ctx context.Context) error {
		var err error
		in, err = c.api.GetIncidentWithContext(ctx, key)
		return err
	})
	if err != nil {
		if e := (*Error)(nil); errors.As(err, &e) && e.Status == http.StatusNotFound {
			e.Detail = fmt.Sprintf("incident %s not found (HTTP 404)", label)
		}
		return Incident{}, err
	}
	// The reply must be the incident asked for.
	if n, numErr := strconv.Atoi(key); (numErr == nil && int(in.IncidentNumber) != n) || (numErr != nil && in.ID != key) {
		return Incident{}, &Error{Op: op, Status: http.StatusOK, Detail: "unexpected reply: a different incident came back"}
	}
	out := Incident{
		ID:                 in.ID,
		Number:             int(in.IncidentNumber),
		Title:              in.Title,
		Status:             in.Status,
		ServiceID:          in.Service.ID,
		EscalationPolicyID: in.EscalationPolicy.ID,
		URL:                in.HTMLURL,
	}
	for _, a := range in.Assignments {
		if a.Assignee.ID != "" {
			out.AssigneeIDs = append(out.AssigneeIDs, a.Assignee.ID)
		}
	}
	return out, nil
}
