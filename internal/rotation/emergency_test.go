package rotation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/rotation"
)

func (e *env) emergency(incident, ticket string) (rotation.Rotation, error) {
	r, err := e.svc.StartRotation(e.ctx, sec, "payments-db", ticket, true, incident, "")
	return r, e.keep(err)
}

func TestEmergencyRotation(t *testing.T) {
	e := newEnv(t)
	_, err := e.emergency("", "")
	if ue := userErr(t, err, "names its incident"); ue.Field != "incident" {
		t.Errorf("field %s", ue.Field)
	}
	_, err = e.emergency("PNOPE99", "")
	userErr(t, err, "no incident `PNOPE99`")
	_, err = e.emergency("not an incident!", "")
	userErr(t, err, "not an incident reference")
	e.pd.SetIncidentErr("PDOWN11", errBoom)
	_, err = e.emergency("PDOWN11", "")
	userErr(t, err, "PagerDuty could not be checked")
	// A ticket given with an emergency must at least exist.
	_, err = e.emergency("PABC123", "SEC-404")
	userErr(t, err, "does not exist")
	if e.kv.Writes() != 0 {
		t.Fatal("Vault written")
	}

	// No cadence check: the secret is far from due. The incident by number.
	r, err := e.emergency("#1234", "")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Emergency || r.Incident != "PABC123" || r.Commander != "UIKE" || r.Ticket != "" {
		t.Fatalf("emergency: %+v", r)
	}
	if err := e.svc.PostThread(e.ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	root := e.msgr.Sent()[0]
	if root.Target != "CSEC" || !strings.Contains(root.Text, "Emergency rotation") || !strings.Contains(root.Text, "<@UIKE>") ||
		!strings.Contains(root.Text, "PABC123") {
		t.Errorf("alert: %s", root.Text)
	}
	r = e.mustConfirm(sec, r.ID, "staging")
	done := e.mustConfirm(rae, r.ID, "production")
	if s, _ := e.store.Secret("payments-db"); s.LastTicket != "PABC123" {
		t.Errorf("registry: %+v", s)
	}
	// The review is opened in the thread.
	var prompt *outbox.Message
	for _, m := range e.store.Messages() {
		if m.Kind == outbox.Post && strings.Contains(string(m.Blocks), rotation.ActionReview) {
			prompt = &m
		}
	}
	if prompt == nil || prompt.Thread != done.ThreadTS {
		t.Fatalf("no review prompt in the thread: %+v", prompt)
	}
	if len(e.store.MessagesOf(outbox.JiraComment)) != 0 {
		t.Error("a Jira comment without a ticket")
	}

	_, err = e.svc.SaveReview(e.ctx, sec, done.ID, "", "payments", "")
	userErr(t, e.keep(err), "what caused")
	_, err = e.svc.SaveReview(e.ctx, ana, done.ID, "c", "b", "f")
	userErr(t, e.keep(err), "Only Platform Security")
	e.clock.Advance(time.Hour)
	j, err := e.svc.SaveReview(e.ctx, sec, done.ID, "key pasted in a public gist", "payments API, 2h", "add secret scanning")
	if err != nil {
		t.Fatal(e.keep(err))
	}
	list, _ := e.svc.JournalList(e.ctx, rotation.KindPostIncident, 0)
	if len(list) != 1 || list[0].ID != j.ID || list[0].Rotation != done.ID || list[0].Fields[rotation.FieldBlast] != "payments API, 2h" ||
		list[0].Fields[rotation.FieldIncident] != "PABC123" || list[0].Author != sec.SlackID {
		t.Fatalf("journal: %+v", list)
	}
	if m := posts(e, "Post-incident review `"+j.ID+"`"); len(m) != 1 || m[0].Thread != done.ThreadTS {
		t.Errorf("review reply: %+v", m)
	}
	_, err = e.svc.SaveReview(e.ctx, sec, done.ID, "again", "again", "")
	userErr(t, e.keep(err), "already saved as `"+j.ID+"`")
	if !hasAction(e, rotation.ActReviewSaved) {
		t.Error("not audited")
	}
}

func TestEmergencyWithoutCommanderOrPagerDuty(t *testing.T) {
	e := newEnv(t)
	e.ppl.Err = errBoom // the commander cannot be found: the alert still goes out
	r, err := e.emergency("PABC123", "SEC-100")
	if err != nil {
		t.Fatal(err)
	}
	if r.Commander != "" || r.Ticket != "SEC-100" {
		t.Errorf("%+v", r)
	}
	e.svc.Incidents = nil
	_, err = e.svc.StartRotation(e.ctx, sec, "platform-signing", "", true, "PABC123", "")
	userErr(t, e.keep(err), "PagerDuty is not configured")
}

func TestReviewOnlyForFinishedEmergencies(t *testing.T) {
	e := newEnv(t)
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	_, err := e.svc.SaveReview(e.ctx, sec, r.ID, "c", "b", "")
	userErr(t, e.keep(err), "not an emergency")
	e2 := newEnv(t)
	em, err := e2.emergency("PABC123", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e2.svc.SaveReview(e2.ctx, sec, em.ID, "c", "b", "")
	userErr(t, e2.keep(err), "once it is complete")
	_, err = e2.svc.SaveReview(e2.ctx, sec, "RZZZZZZZZ", "c", "b", "")
	userErr(t, e2.keep(err), "no rotation")
	_, err = e2.svc.SaveReview(e2.ctx, sec, "G12345678", "c", "b", "")
	userErr(t, e2.keep(err), "not a rotation id")
}

var _ = access.Escape
