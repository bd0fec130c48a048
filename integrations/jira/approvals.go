package jira

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

const maxPages = 10

// approvalPage is GET /rest/servicedeskapi/request/{key}/approval.
type approvalPage struct {
	IsLastPage bool `json:"isLastPage"`
	Values     []struct {
		ID            flexString `json:"id"`
		Name          string     `json:"name"`
		FinalDecision string     `json:"finalDecision"`
		Approvers     []struct {
			Approver struct {
				AccountID    string `json:"accountId"`
				Name         string `json:"name"`
				Key          string `json:"key"`
				DisplayName  string `json:"displayName"`
				EmailAddress string `json:"emailAddress"`
			} `json:"approver"`
			ApproverDecision string `json:"approverDecision"`
		} `json:"approvers"`
		CompletedDate *sdDate `json:"completedDate"`
	} `json:"values"`
}

// sdDate is Service Management's date object.
type sdDate struct {
	ISO8601     string `json:"iso8601"`
	Jira        string `json:"jira"`
	EpochMillis int64  `json:"epochMillis"`
}

func (d *sdDate) time() time.Time {
	if d == nil {
		return time.Time{}
	}
	if d.EpochMillis > 0 {
		return time.UnixMilli(d.EpochMillis).UTC()
	}
	for _, s := range []string{d.ISO8601, d.Jira} {
		if t, err := parseTime(s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// flexString accepts a JSON string or number (ids are strings in the docs;
// be lenient about numbers).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// approvals lists the Service Management approvals of key. ok is false when
// Jira answers 404: the ticket is not a Service Management request (or
// Service Management is not installed).
func (c *Client) approvals(ctx context.Context, key string) (out []Approval, ok bool, err error) {
	hdr := http.Header{"X-ExperimentalApi": {"opt-in"}} // Data Center still marks this API experimental
	err = c.do(ctx, "get approvals of "+key, func(ctx context.Context) error {
		out, ok = nil, true
		start := 0
		for range maxPages {
			var page approvalPage
			path := fmt.Sprintf("rest/servicedeskapi/request/%s/approval?start=%d&limit=50", key, start)
			if err := c.doJSON(ctx, http.MethodGet, path, hdr, &page); err != nil {
				return err
			}
			for _, v := range page.Values {
				a := Approval{ID: string(v.ID), Name: v.Name, FinalDecision: v.FinalDecision, CompletedAt: v.CompletedDate.time()}
				for _, ap := range v.Approvers {
					p := ap.Approver
					a.Approvers = append(a.Approvers, Approver{
						AccountID: firstNonEmpty(p.AccountID, p.Name, p.Key),
						Name:      firstNonEmpty(p.DisplayName, p.Name),
						Email:     p.EmailAddress,
						Decision:  ap.ApproverDecision,
					})
				}
				out = append(out, a)
			}
			if page.IsLastPage || len(page.Values) == 0 {
				return nil
			}
			start += len(page.Values)
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	return out, ok, err
}
