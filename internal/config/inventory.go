package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Inventory is the registry of secrets the bot rotates. Entries here are
// the registry's "config" entries; /secrets register and /secrets provision
// add more at run time.
type Inventory struct {
	// DefaultInterval is a secret's rotation interval when it names none (default 90d).
	DefaultInterval Duration `yaml:"default_interval"`
	// DueSoon is the window before the due date in which a secret is "due soon"
	// (inventory marks and daily reminders; default 14d).
	DueSoon Duration          `yaml:"due_soon"`
	Secrets []InventorySecret `yaml:"secrets"`
}

// InventorySecret is one secret of the registry, as the file writes it.
type InventorySecret struct {
	// Name is ^[a-z][a-z0-9-]{1,60}$, unique across the inventory.
	Name string `yaml:"name"`
	// Environment is free text, e.g. prod or staging.
	Environment string `yaml:"environment"`
	Owner       Owner  `yaml:"owner"`
	// Mount is the KV v2 mount (default vault.kv_mount).
	Mount string `yaml:"mount"`
	// Path is the secret's path under the mount.
	Path string `yaml:"path"`
	// Interval is how often it is rotated (default inventory.default_interval).
	Interval Duration `yaml:"interval"`
	// Generate says how a new value is made by the bot; exactly one of
	// Generate and Provided is set.
	Generate Generate `yaml:"generate"`
	// Provided: the value is made by a provider (Stripe, a cloud KMS) and
	// pasted by the operator into a modal.
	Provided bool `yaml:"provided"`
}

// Owner is who answers for a secret.
type Owner struct {
	Team string `yaml:"team"`
	// Contact is a Slack member ID (U0123ABC): reminders go to them.
	Contact string `yaml:"contact"`
}

// Generate describes a generated value: Length characters drawn uniformly
// (crypto/rand) from Alphabet, written with ranges ("A-Za-z0-9").
type Generate struct {
	Length   int    `yaml:"length"`
	Alphabet string `yaml:"alphabet"`
}

// Set reports whether any generate key was written.
func (g Generate) Set() bool { return g.Length != 0 || g.Alphabet != "" }

// Rotation configures who rotates and how a rollout is watched.
type Rotation struct {
	// Rotators may rotate, register, provision, confirm and roll back
	// (default: the group slack.platform_security_group).
	Rotators People `yaml:"rotators"`
	// ConfirmWithin: a rollout unconfirmed this long after it started is
	// flagged (never completed on its own). Default 24h.
	ConfirmWithin Duration `yaml:"confirm_within"`
	// EmergencyConfirmWithin is ConfirmWithin for emergency rotations (default 2h).
	EmergencyConfirmWithin Duration `yaml:"emergency_confirm_within"`
	// ReminderEvery is the rollout reminder cadence in the thread (default 4h).
	ReminderEvery Duration `yaml:"reminder_every"`
	// EmergencyReminderEvery is ReminderEvery for emergencies (default 30m).
	EmergencyReminderEvery Duration `yaml:"emergency_reminder_every"`
	// PreviousVersion is what happens to the replaced KV version once
	// production is verified: destroy (default) or delete (soft-delete).
	PreviousVersion string `yaml:"previous_version"`
}

// What happens to the previous version of a rotated secret.
const (
	PreviousDestroy = "destroy"
	PreviousDelete  = "delete"
)

// Schedule configures the cadences.
type Schedule struct {
	// DailyAt is the time of the daily reminders, "HH:MM" UTC (default 09:00).
	DailyAt string `yaml:"daily_at"`
	// ReviewDay is the day of the month of the access review, 1 to 28 (default 1).
	ReviewDay int `yaml:"review_day"`
	// ReviewWindow: eligible people without a grant in this window are
	// listed as unused permissions (default 30d).
	ReviewWindow Duration `yaml:"review_window"`
	// RestoreTestMonths are the months (1-12) of the restore-test reminder
	// (default [1, 4, 7, 10]).
	RestoreTestMonths []int `yaml:"restore_test_months"`
}

// DailyTime returns DailyAt as hour and minute (valid after Load).
func (s Schedule) DailyTime() (hour, minute int) {
	h, m, _ := parseClock(s.DailyAt)
	return h, m
}

func parseClock(s string) (int, int, bool) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 23 || m > 59 || h < 0 || m < 0 {
		return 0, 0, false
	}
	return h, m, true
}

// Rotators returns who may rotate: rotation.rotators (after Load, that
// already holds the default).
func (c *Config) Rotators() People { return c.Rotation.Rotators }

// Secret returns the inventory secret of the file with the given name.
func (c *Config) Secret(name string) (*InventorySecret, bool) {
	for i := range c.Inventory.Secrets {
		if c.Inventory.Secrets[i].Name == name {
			return &c.Inventory.Secrets[i], true
		}
	}
	return nil, false
}

// Alphabet limits.
const (
	MinGenerateLength = 12
	MaxGenerateLength = 1024
	// AlphabetAccepted says what an alphabet may hold.
	AlphabetAccepted = "printable ASCII characters and ranges such as A-Za-z0-9 (a - first or last is itself), at least 10 distinct characters"
)

// ExpandAlphabet expands ranges ("A-Za-z0-9", "a-f0-9_-") into the distinct
// characters they name, in first-seen order. Only printable ASCII without
// space is accepted; a "-" first or last stands for itself.
func ExpandAlphabet(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty alphabet: use %s", AlphabetAccepted)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return "", fmt.Errorf("alphabet %s holds a character that is not printable ASCII: use %s", quote(s), AlphabetAccepted)
		}
	}
	var b strings.Builder
	seen := [128]bool{}
	add := func(c byte) {
		if !seen[c] {
			seen[c] = true
			b.WriteByte(c)
		}
	}
	for i := 0; i < len(s); i++ {
		if i+2 < len(s) && s[i+1] == '-' {
			lo, hi := s[i], s[i+2]
			if lo > hi {
				return "", fmt.Errorf("alphabet %s: range %c-%c runs backwards", quote(s), lo, hi)
			}
			for c := lo; ; c++ {
				add(c)
				if c == hi {
					break
				}
			}
			i += 2
			continue
		}
		add(s[i])
	}
	out := b.String()
	if len(out) < 10 {
		return "", fmt.Errorf("alphabet %s has %d distinct characters: use %s", quote(s), len(out), AlphabetAccepted)
	}
	return out, nil
}

// Defaults of the inventory, rotation and schedule sections.
const (
	DefaultRotationInterval       = 90 * day
	DefaultDueSoon                = 14 * day
	DefaultGenerateLength         = 32
	DefaultGenerateAlphabet       = "A-Za-z0-9"
	DefaultConfirmWithin          = 24 * time.Hour
	DefaultEmergencyConfirmWithin = 2 * time.Hour
	DefaultReminderEvery          = 4 * time.Hour
	DefaultEmergencyReminderEvery = 30 * time.Minute
	DefaultPreviousVersion        = PreviousDestroy
	DefaultDailyAt                = "09:00"
	DefaultReviewDay              = 1
	DefaultReviewWindow           = 30 * day
)

// DefaultRestoreTestMonths are the months of the quarterly restore-test reminder.
var DefaultRestoreTestMonths = []int{1, 4, 7, 10}

var reSecretName = regexp.MustCompile(`^[a-z][a-z0-9-]{1,60}$`)

const (
	acceptSecretName = "lower case letters, digits and -, starting with a letter, 2 to 61 characters"
	acceptClock      = "a time of day HH:MM in UTC, such as 09:00"
)

func applyInventoryDefaults(c *Config, seen map[string]bool) {
	dur := func(key string, d *Duration, def time.Duration) {
		if !seen[key] {
			*d = Duration(def)
		}
	}
	dur("inventory.default_interval", &c.Inventory.DefaultInterval, DefaultRotationInterval)
	dur("inventory.due_soon", &c.Inventory.DueSoon, DefaultDueSoon)
	for i := range c.Inventory.Secrets {
		s := &c.Inventory.Secrets[i]
		at := fmt.Sprintf("inventory.secrets[%d].", i)
		if strings.TrimSpace(s.Mount) == "" {
			s.Mount = c.Vault.KVMount
		}
		if !seen[at+"interval"] {
			s.Interval = c.Inventory.DefaultInterval
		}
		if seen[at+"generate"] {
			if !seen[at+"generate.length"] {
				s.Generate.Length = DefaultGenerateLength
			}
			if strings.TrimSpace(s.Generate.Alphabet) == "" {
				s.Generate.Alphabet = DefaultGenerateAlphabet
			}
		}
	}
	r := &c.Rotation
	if r.Rotators.Empty() && !seen["rotation.rotators"] && c.Slack.PlatformSecurityGroup != "" {
		r.Rotators = People{Groups: []string{c.Slack.PlatformSecurityGroup}}
	}
	dur("rotation.confirm_within", &r.ConfirmWithin, DefaultConfirmWithin)
	dur("rotation.emergency_confirm_within", &r.EmergencyConfirmWithin, DefaultEmergencyConfirmWithin)
	dur("rotation.reminder_every", &r.ReminderEvery, DefaultReminderEvery)
	dur("rotation.emergency_reminder_every", &r.EmergencyReminderEvery, DefaultEmergencyReminderEvery)
	if strings.TrimSpace(r.PreviousVersion) == "" {
		r.PreviousVersion = DefaultPreviousVersion
	}
	sc := &c.Schedule
	if strings.TrimSpace(sc.DailyAt) == "" {
		sc.DailyAt = DefaultDailyAt
	}
	if !seen["schedule.review_day"] {
		sc.ReviewDay = DefaultReviewDay
	}
	dur("schedule.review_window", &sc.ReviewWindow, DefaultReviewWindow)
	if !seen["schedule.restore_test_months"] {
		sc.RestoreTestMonths = slices.Clone(DefaultRestoreTestMonths)
	}
}

func validateInventory(c *Config, p *collector) {
	inv := &c.Inventory
	positive("inventory.default_interval", inv.DefaultInterval, p)
	positive("inventory.due_soon", inv.DueSoon, p)
	names := map[string]int{}
	paths := map[string]int{}
	for i := range inv.Secrets {
		s := &inv.Secrets[i]
		at := func(k string) string { return fmt.Sprintf("inventory.secrets[%d].%s", i, k) }
		switch {
		case !reSecretName.MatchString(s.Name):
			p.add(at("name"), show(s.Name)+" is not a secret name", acceptSecretName)
		case names[s.Name] > 0:
			p.add(at("name"), fmt.Sprintf("%s is already the name of inventory.secrets[%d]", show(s.Name), names[s.Name]-1), "a name used once")
		default:
			names[s.Name] = i + 1
		}
		if strings.TrimSpace(s.Environment) == "" {
			p.add(at("environment"), "required", "free text such as prod or staging")
		}
		if strings.TrimSpace(s.Owner.Team) == "" {
			p.add(at("owner.team"), "required: the team that owns the secret", "free text such as payments")
		}
		switch {
		case s.Owner.Contact == "":
			p.add(at("owner.contact"), "required: reminders go to this person", acceptUser)
		case !reUser.MatchString(s.Owner.Contact):
			p.add(at("owner.contact"), show(s.Owner.Contact)+" is not a Slack member ID", acceptUser)
		}
		s.Mount = strings.Trim(s.Mount, "/")
		if !rePath.MatchString(s.Mount) {
			p.add(at("mount"), show(s.Mount)+" is not a mount path", acceptPath)
		}
		s.Path = strings.Trim(s.Path, "/")
		switch {
		case s.Path == "":
			p.add(at("path"), "required: the secret's path under the mount", acceptPath)
		case !rePath.MatchString(s.Path):
			p.add(at("path"), show(s.Path)+" is not a KV path", acceptPath)
		default:
			key := s.Mount + "/" + s.Path
			if j := paths[key]; j > 0 {
				p.add(at("path"), fmt.Sprintf("%s is already the path of inventory.secrets[%d]", show(key), j-1), "one entry per KV path")
			} else {
				paths[key] = i + 1
			}
		}
		positive(at("interval"), s.Interval, p)
		switch {
		case s.Provided && s.Generate.Set():
			p.add(at("generate"), "a secret is either generated or provided, not both", "generate: {length, alphabet}, or provided: true")
		case !s.Provided && !s.Generate.Set():
			p.add(at("generate"), "required: say how a new value is made", "generate: {length, alphabet}, or provided: true")
		case s.Generate.Set():
			if s.Generate.Length < MinGenerateLength || s.Generate.Length > MaxGenerateLength {
				p.add(at("generate.length"), fmt.Sprintf("%d is out of range", s.Generate.Length),
					fmt.Sprintf("a whole number from %d to %d", MinGenerateLength, MaxGenerateLength))
			}
			if _, err := ExpandAlphabet(s.Generate.Alphabet); err != nil {
				p.add(at("generate.alphabet"), err.Error(), AlphabetAccepted)
			}
		}
	}
}

func validateRotation(c *Config, p *collector) {
	r := &c.Rotation
	people("rotation.rotators", r.Rotators, p)
	if r.Rotators.Empty() && len(c.Inventory.Secrets) > 0 {
		p.add("rotation.rotators", "names nobody, so nobody could rotate the inventory's secrets",
			"users, emails and/or groups, or set slack.platform_security_group")
	}
	positive("rotation.confirm_within", r.ConfirmWithin, p)
	positive("rotation.emergency_confirm_within", r.EmergencyConfirmWithin, p)
	positive("rotation.reminder_every", r.ReminderEvery, p)
	positive("rotation.emergency_reminder_every", r.EmergencyReminderEvery, p)
	r.PreviousVersion = strings.ToLower(strings.TrimSpace(r.PreviousVersion))
	if r.PreviousVersion != PreviousDestroy && r.PreviousVersion != PreviousDelete {
		p.add("rotation.previous_version", show(r.PreviousVersion)+" is not a way to retire a version",
			"destroy (the data is gone for good) or delete (soft-delete, undeletable)")
	}
}

func validateSchedule(s *Schedule, p *collector) {
	if _, _, ok := parseClock(s.DailyAt); !ok {
		p.add("schedule.daily_at", show(s.DailyAt)+" is not a time of day", acceptClock)
	}
	if s.ReviewDay < 1 || s.ReviewDay > 28 {
		p.add("schedule.review_day", fmt.Sprintf("%d is out of range", s.ReviewDay), "a day of the month from 1 to 28")
	}
	positive("schedule.review_window", s.ReviewWindow, p)
	for i, m := range s.RestoreTestMonths {
		k := fmt.Sprintf("schedule.restore_test_months[%d]", i)
		switch {
		case m < 1 || m > 12:
			p.add(k, fmt.Sprintf("%d is not a month", m), "a month number from 1 to 12")
		case slices.Index(s.RestoreTestMonths, m) < i:
			p.add(k, fmt.Sprintf("%d is listed twice", m), "each month once")
		}
	}
}
