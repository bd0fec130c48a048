package schedule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
)

// Review is the content of one monthly access review.
type Review struct {
	Period      string    // "2006-01"
	Since       time.Time // start of "the last month" (the previous review day)
	WindowStart time.Time // start of the unused-permissions window
	Active      []access.Grant
	// ByUserScope counts the grants issued since Since, per person and scope.
	ByUserScope []UserScopeCount
	// Deactivated are active grants whose holder's Slack account is deactivated.
	Deactivated []access.Grant
	// Unused are people in a scope's eligible user group who were issued no
	// grant of any scope that group makes them eligible for, within the window.
	Unused []Unused
	// Problems are look-ups that could not be made (listed in the review).
	Problems []string
}

// UserScopeCount is how many grants of Scope User was issued.
type UserScopeCount struct {
	User, Scope string
	Count       int
}

// Unused is an eligible person who did not use the scopes a group gives.
type Unused struct {
	Group, User string
	Scopes      []string
}

// review posts the monthly access review for the latest review day, once,
// to the security channel, and records it in the journal.
func (s *Scheduler) review(ctx context.Context, now time.Time, c clock) (bool, error) {
	day := s.Config.ReviewDay
	if day <= 0 {
		day = DefaultReviewDay
	}
	at, prev := latestMonthly(now, day, c)
	period := at.Format(monthLayout)
	if seeded, err := s.seed(ctx, KeyReview, period); err != nil || seeded {
		return false, err
	}
	if due, err := s.pending(ctx, KeyReview, period); err != nil || !due {
		return false, err
	}
	r, err := s.gatherReview(ctx, now, prev)
	if err != nil {
		return false, err
	}
	r.Period = period
	msgs := s.renderReview(r, at)
	notes := fmt.Sprintf("Access review %s: %s active, %s since %s, %d held by deactivated users, %d eligible but unused.",
		period, plural(len(r.Active), "grant"), plural(sumCounts(r.ByUserScope), "grant"), r.Since.Format(dayLayout),
		len(r.Deactivated), len(r.Unused))
	fields := map[string]string{
		"period":      period,
		"active":      strconv.Itoa(len(r.Active)),
		"issued":      strconv.Itoa(sumCounts(r.ByUserScope)),
		"deactivated": strconv.Itoa(len(r.Deactivated)),
		"unused":      strconv.Itoa(len(r.Unused)),
	}
	if len(r.Deactivated) > 0 {
		ids := make([]string, len(r.Deactivated))
		for i, g := range r.Deactivated {
			ids[i] = g.ID
		}
		fields["deactivated_grants"] = strings.Join(ids, ",")
	}
	if len(r.Unused) > 0 {
		vs := make([]string, len(r.Unused))
		for i, u := range r.Unused {
			vs[i] = RemoveValue(u.Group, u.User)
		}
		fields["unused_members"] = access.Truncate(strings.Join(vs, ","), 4000)
	}
	return s.commit(ctx, KeyReview, period, func(tx Tx) error {
		for i, m := range msgs {
			if err := tx.Send(ctx, m, fmt.Sprintf("schedule:review:%s:%d", period, i+1)); err != nil {
				return err
			}
		}
		if err := tx.JournalAdd(ctx, JournalKindReview, "posted", notes, actor, fields); err != nil {
			return err
		}
		return tx.Audit(ctx, audit.Event{Actor: actor, Action: ActReviewPosted, Outcome: audit.OK,
			Reason: notes, Links: map[string]string{"period": period}})
	})
}

// gatherReview reads what the review lists. A look-up that fails for one
// person or group is listed as a problem; when every one of a kind fails
// (Slack is down, say) the review is not posted and is tried again later.
func (s *Scheduler) gatherReview(ctx context.Context, now, since time.Time) (Review, error) {
	window := s.Config.ReviewWindow
	if window <= 0 {
		window = DefaultReviewWindow
	}
	r := Review{Since: since, WindowStart: now.Add(-window)}
	active, err := s.Grants.Active(ctx)
	if err != nil {
		return r, fmt.Errorf("list active grants: %s", errText(err))
	}
	from := r.Since
	if r.WindowStart.Before(from) {
		from = r.WindowStart
	}
	recent, err := s.Grants.Since(ctx, from)
	if err != nil {
		return r, fmt.Errorf("list recent grants: %s", errText(err))
	}
	for _, g := range active {
		if g.Active() {
			r.Active = append(r.Active, g)
		}
	}
	slices.SortStableFunc(r.Active, func(a, b access.Grant) int {
		if c := strings.Compare(a.Requester, b.Requester); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})

	// Grants of the last month, by person and scope.
	counts := map[[2]string]int{}
	for _, g := range recent {
		if !g.IssuedAt.IsZero() && !g.IssuedAt.Before(r.Since) {
			counts[[2]string{g.Requester, g.Scope}]++
		}
	}
	for k, n := range counts {
		r.ByUserScope = append(r.ByUserScope, UserScopeCount{User: k[0], Scope: k[1], Count: n})
	}
	slices.SortFunc(r.ByUserScope, func(a, b UserScopeCount) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return strings.Compare(a.Scope, b.Scope)
	})

	// Active grants held by deactivated accounts.
	var holders []string
	for _, g := range r.Active {
		if !slices.Contains(holders, g.Requester) {
			holders = append(holders, g.Requester)
		}
	}
	deleted := map[string]bool{}
	failed := 0
	for _, id := range holders {
		p, err := s.Directory.Person(ctx, id)
		if err != nil {
			failed++
			r.Problems = append(r.Problems, fmt.Sprintf("could not look up %s in Slack: %s", mention(id), access.Escape(errText(err))))
			continue
		}
		deleted[id] = p.Deleted
	}
	if failed > 0 && failed == len(holders) {
		return r, errors.New("could not look up any grant holder in Slack")
	}
	for _, g := range r.Active {
		if deleted[g.Requester] {
			r.Deactivated = append(r.Deactivated, g)
		}
	}

	// Eligible but unused.
	used := map[[2]string]bool{} // user, scope
	for _, g := range append(slices.Clone(r.Active), recent...) {
		if !g.IssuedAt.IsZero() && (g.Active() || !g.IssuedAt.Before(r.WindowStart)) {
			used[[2]string{g.Requester, g.Scope}] = true
		}
	}
	var groups []string
	scopesOf := map[string][]string{}
	for _, sc := range s.Config.Scopes {
		for _, gr := range sc.Eligible.Groups {
			gr = strings.TrimPrefix(strings.TrimSpace(gr), "@")
			if gr == "" {
				continue
			}
			if _, seen := scopesOf[gr]; !seen {
				groups = append(groups, gr)
			}
			if !slices.Contains(scopesOf[gr], sc.Name) {
				scopesOf[gr] = append(scopesOf[gr], sc.Name)
			}
		}
	}
	failed = 0
	for _, gr := range groups {
		members, err := s.Directory.GroupMembers(ctx, gr)
		if err != nil {
			failed++
			r.Problems = append(r.Problems, fmt.Sprintf("could not list the members of %s: %s", access.Code("@"+gr), access.Escape(errText(err))))
			continue
		}
		members = slices.Clone(members)
		slices.Sort(members)
		members = slices.Compact(members)
		for _, u := range members {
			usedSome := false
			for _, sc := range scopesOf[gr] {
				usedSome = usedSome || used[[2]string{u, sc}]
			}
			if !usedSome {
				r.Unused = append(r.Unused, Unused{Group: gr, User: u, Scopes: scopesOf[gr]})
			}
		}
	}
	if failed > 0 && failed == len(groups) {
		return r, errors.New("could not list any eligible user group in Slack")
	}
	return r, nil
}

func sumCounts(cs []UserScopeCount) int {
	n := 0
	for _, c := range cs {
		n += c.Count
	}
	return n
}

// renderReview lays the review out as one or more security-channel posts
// (Slack takes at most 50 blocks per message).
func (s *Scheduler) renderReview(r Review, at time.Time) []outbox.Message {
	title := fmt.Sprintf(":clipboard: *Monthly access review: %s*", at.Format("January 2006"))
	window := s.Config.ReviewWindow
	if window <= 0 {
		window = DefaultReviewWindow
	}
	summary := fmt.Sprintf("%s\n%s active · %s issued since %s · %d held by deactivated accounts · %d eligible but unused in the last %s",
		title, plural(len(r.Active), "grant"), plural(sumCounts(r.ByUserScope), "grant"), r.Since.Format(dayLayout),
		len(r.Deactivated), len(r.Unused), span(window))
	blocks := []access.Block{access.Section(summary), access.Divider()}

	var lines []string
	for _, g := range r.Active {
		lines = append(lines, "• "+grantLine(g))
	}
	if len(lines) == 0 {
		lines = []string{"_none_"}
	}
	blocks = append(blocks, sections("*Active grants*", lines)...)

	lines = nil
	var cur string
	var parts []string
	flush := func() {
		if cur != "" {
			lines = append(lines, "• "+mention(cur)+": "+strings.Join(parts, ", "))
		}
	}
	for _, c := range r.ByUserScope {
		if c.User != cur {
			flush()
			cur, parts = c.User, nil
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", access.Code(c.Scope), c.Count))
	}
	flush()
	if len(lines) == 0 {
		lines = []string{"_none_"}
	}
	blocks = append(blocks, sections(fmt.Sprintf("*Grants issued since %s, by person and scope*", r.Since.Format(dayLayout)), lines)...)

	if len(r.Deactivated) == 0 {
		blocks = append(blocks, access.Section("*Grants held by deactivated Slack accounts*\n_none_"))
	} else {
		blocks = append(blocks, access.Section("*Grants held by deactivated Slack accounts*: revoke them"))
		for _, g := range r.Deactivated {
			blocks = append(blocks, withButton(grantLine(g)+" (account deactivated)",
				access.Button{Text: "Revoke", ActionID: ActionReviewRevoke, Value: g.ID, Style: "danger"}))
		}
	}

	head := fmt.Sprintf("*Eligible but unused in the last %s*", span(window))
	if len(r.Unused) == 0 {
		blocks = append(blocks, access.Section(head+"\n_none_"))
	} else {
		blocks = append(blocks, access.Section(head+": the Remove button takes the person out of the Slack user group that makes them eligible"))
		for _, u := range r.Unused {
			sc := make([]string, len(u.Scopes))
			for i, n := range u.Scopes {
				sc[i] = access.Code(n)
			}
			text := fmt.Sprintf("%s in %s: no grant of %s", mention(u.User), access.Code("@"+u.Group), strings.Join(sc, ", "))
			blocks = append(blocks, withButton(text,
				access.Button{Text: "Remove from group", ActionID: ActionReviewRemove, Value: RemoveValue(u.Group, u.User), Style: "danger"}))
		}
	}
	if len(r.Problems) > 0 {
		blocks = append(blocks, sections(":warning: *Could not check*", r.Problems)...)
	}

	fallback := access.Plain(summary)
	var msgs []outbox.Message
	n := (len(blocks) + maxBlocks - 1) / maxBlocks
	for i := 0; i < n; i++ {
		part := blocks[i*maxBlocks : min((i+1)*maxBlocks, len(blocks))]
		text := fallback
		if n > 1 {
			text = fmt.Sprintf("%s (part %d of %d)", fallback, i+1, n)
		}
		msgs = append(msgs, outbox.Message{Kind: outbox.Post, Target: s.Config.SecurityChannel, Text: text, Blocks: access.Blocks(part...)})
	}
	return msgs
}

// grantLine is "`G…` `scope` held by <@U…>, issued …, expires …".
func grantLine(g access.Grant) string {
	l := fmt.Sprintf("%s %s held by %s", access.Code(g.ID), access.Code(g.Scope), mention(g.Requester))
	if g.State != access.StateIssued {
		l += " (" + string(g.State) + ")"
	}
	if !g.IssuedAt.IsZero() {
		l += ", issued " + g.IssuedAt.UTC().Format("2006-01-02 15:04")
	}
	if !g.ExpiresAt.IsZero() {
		l += ", expires " + g.ExpiresAt.UTC().Format("2006-01-02 15:04") + " UTC"
	}
	return l
}
