package policy

import (
	"errors"
	"testing"

	"github.com/secretbot/secretbot/internal/config"
)

var (
	scope = &config.Scope{
		Name: "platform-ro",
		Eligible: config.People{
			Users:  []string{"U0ALICE"},
			Emails: []string{"Bob@Example.com"},
			Groups: []string{"@sre-oncall", "S0PLATSEC"},
		},
		Approvers: config.People{Groups: []string{"platform-security"}},
	}
	member = Person{SlackID: "U0NOBODY", Email: "nobody@example.com"}
)

func with(f func(*Person)) Person {
	p := member
	f(&p)
	return p
}

func TestEligible(t *testing.T) {
	tests := []struct {
		name string
		p    Person
		want bool
	}{
		{"named by id", with(func(p *Person) { p.SlackID = "U0ALICE" }), true},
		{"id is exact", with(func(p *Person) { p.SlackID = "u0alice" }), false},
		{"named by e-mail, any case", with(func(p *Person) { p.Email = "bob@EXAMPLE.com" }), true},
		{"e-mail is whole", with(func(p *Person) { p.Email = "xbob@example.com" }), false},
		{"group handle without @", with(func(p *Person) { p.Groups = []string{"sre-oncall"} }), true},
		{"group handle with @ and case", with(func(p *Person) { p.Groups = []string{"@SRE-Oncall"} }), true},
		{"group id", with(func(p *Person) { p.Groups = []string{"S0PLATSEC"} }), true},
		{"group id is exact", with(func(p *Person) { p.Groups = []string{"s0platsec"} }), false},
		{"other group", with(func(p *Person) { p.Groups = []string{"sre"} }), false},
		{"nobody", member, false},
		{"empty person", Person{}, false},
		{"deleted though named", with(func(p *Person) { p.SlackID = "U0ALICE"; p.Deleted = true }), false},
		{"bot though named", with(func(p *Person) { p.SlackID = "U0ALICE"; p.Bot = true }), false},
		{"guest though named", with(func(p *Person) { p.SlackID = "U0ALICE"; p.Guest = true }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Eligible(scope, tc.p); got != tc.want {
				t.Errorf("Eligible = %v, want %v", got, tc.want)
			}
		})
	}
	if Eligible(nil, member) || CanApprove(nil, member) {
		t.Error("nil scope allows someone")
	}
}

func TestCanApprove(t *testing.T) {
	tests := []struct {
		name string
		p    Person
		want bool
	}{
		{"approver group", with(func(p *Person) { p.Groups = []string{"platform-security"} }), true},
		{"eligible is not approver", with(func(p *Person) { p.SlackID = "U0ALICE" }), false},
		{"guest approver", with(func(p *Person) { p.Groups = []string{"platform-security"}; p.Guest = true }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CanApprove(scope, tc.p); got != tc.want {
				t.Errorf("CanApprove = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRefusal(t *testing.T) {
	tests := []struct {
		name string
		p    Person
		want error
	}{
		{"member", member, nil},
		{"deleted", Person{Deleted: true, Bot: true}, ErrDeletedUser},
		{"bot", Person{Bot: true, Guest: true}, ErrBot},
		{"guest", Person{Guest: true}, ErrGuest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Refusal(tc.p); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("Refusal = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEligibleScopes(t *testing.T) {
	cfg := &config.Config{
		Slack: config.Slack{PlatformSecurityGroup: "@platform-security"},
		Scopes: []config.Scope{
			{Name: "platform-rw", Eligible: config.People{Groups: []string{"platform-security"}}},
			{Name: "platform-ro", Eligible: config.People{Groups: []string{"sre-oncall"}}, Disabled: true},
			{Name: "payments-ro", Eligible: config.People{Groups: []string{"sre-oncall", "payments"}}},
		},
	}
	tests := []struct {
		name   string
		groups []string
		want   []string
		psec   bool
	}{
		{"sre sees disabled too", []string{"sre-oncall"}, []string{"platform-ro", "payments-ro"}, false},
		{"security", []string{"platform-security"}, []string{"platform-rw"}, true},
		{"nobody", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := with(func(p *Person) { p.Groups = tc.groups })
			got := EligibleScopes(cfg, p)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d scopes, want %v", len(got), tc.want)
			}
			for i, s := range got {
				if s.Name != tc.want[i] {
					t.Errorf("scope %d = %s, want %s", i, s.Name, tc.want[i])
				}
				if s != &cfg.Scopes[indexOf(cfg, s.Name)] {
					t.Errorf("%s is a copy, not a pointer into cfg.Scopes", s.Name)
				}
			}
			if got := PlatformSecurity(cfg, p); got != tc.psec {
				t.Errorf("PlatformSecurity = %v, want %v", got, tc.psec)
			}
		})
	}
	if PlatformSecurity(&config.Config{}, with(func(p *Person) { p.Groups = []string{""} })) {
		t.Error("no configured group matched someone")
	}
}

func indexOf(cfg *config.Config, name string) int {
	for i := range cfg.Scopes {
		if cfg.Scopes[i].Name == name {
			return i
		}
	}
	return -1
}
