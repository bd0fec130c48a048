package rotation

import (
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/config"
)

// Usage lines of the commands this package serves (without the slash
// command), in mrkdwn: placeholders' angle brackets are entities, since
// Slack reads <...> as a link.
const (
	RotateUsage    = "rotate &lt;secret&gt; --ticket SEC-123 | rotate &lt;secret&gt; --emergency --incident PABC123 [--ticket SEC-123]"
	InventoryUsage = "inventory [--overdue] [--env prod] [--owner team] [--export]"
	ExposureUsage  = "exposure &lt;secret&gt;"
	JournalUsage   = "journal | journal restore-test passed|failed \"&lt;notes&gt;\""

	acceptedIncident = "a PagerDuty incident id like PABC123, its number like #1234, or its URL"
	acceptedSecret   = "lower case letters, digits and -, starting with a letter, 2 to 61 characters"
	acceptedPath     = "a KV path such as platform/payments-db (letters, digits, _, ., - between /)"

	// MaxNotes bounds journal notes and each review field.
	MaxNotes = 3000
	// MaxValueLen bounds a provided value (bytes).
	MaxValueLen = 32 * 1024
)

var (
	ticketRe     = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[1-9][0-9]{0,9}$`)
	secretNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{1,60}$`)
	kvPathRe     = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
	userIDRe     = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
)

// RotateArgs are the words after `rotate`.
type RotateArgs struct {
	Secret    string
	Ticket    string
	Emergency bool
	Incident  string
}

// ParseRotateArgs reads `<secret> [--ticket SEC-123] [--emergency]
// [--incident PABC123|#1234|URL]`, flags in any order, as "--flag value" or
// "--flag=value". A refusal is a *UserError saying what is accepted. It
// checks the form only; StartRotation checks the rest.
func ParseRotateArgs(args []string) (RotateArgs, error) {
	var a RotateArgs
	seen := map[string]bool{}
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			positional = append(positional, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		name = strings.ToLower(name)
		if seen[name] {
			return RotateArgs{}, userErr(name, "--%s is given twice: give it once", name)
		}
		seen[name] = true
		switch name {
		case "emergency":
			if hasValue {
				return RotateArgs{}, userErr("emergency", "--emergency takes no value (usage: %s)", RotateUsage)
			}
			a.Emergency = true
			continue
		case "ticket", "incident":
		default:
			return RotateArgs{}, userErr("", "unknown flag %s: accepted flags are --ticket, --emergency, --incident (usage: %s)",
				access.Code(access.Truncate(arg, 40)), RotateUsage)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return RotateArgs{}, userErr(name, "--%s needs a value (usage: %s)", name, RotateUsage)
			}
			i++
			value = args[i]
		}
		if name == "ticket" {
			a.Ticket = value
		} else {
			a.Incident = value
		}
	}
	switch len(positional) {
	case 0:
		return RotateArgs{}, userErr("secret", "name the secret to rotate (usage: %s)", RotateUsage)
	case 1:
		a.Secret = strings.TrimSpace(positional[0])
	default:
		return RotateArgs{}, userErr("", "unexpected %s: name one secret (usage: %s)", access.Code(access.Truncate(positional[1], 40)), RotateUsage)
	}
	if !secretNameRe.MatchString(a.Secret) {
		return RotateArgs{}, userErr("secret", "%s is not a secret name (%s; `inventory` lists them)", access.Code(access.Truncate(a.Secret, 70)), acceptedSecret)
	}
	if a.Incident != "" && !a.Emergency {
		return RotateArgs{}, userErr("incident", "--incident goes with --emergency (usage: %s)", RotateUsage)
	}
	return a, nil
}

// ParseInventoryArgs reads `[--overdue] [--env prod] [--owner team] [--export]`.
func ParseInventoryArgs(args []string) (f Filter, export bool, err error) {
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		name = strings.ToLower(name)
		if !strings.HasPrefix(arg, "--") {
			return Filter{}, false, userErr("", "unexpected %s (usage: %s)", access.Code(access.Truncate(arg, 40)), InventoryUsage)
		}
		if seen[name] {
			return Filter{}, false, userErr(name, "--%s is given twice: give it once", name)
		}
		seen[name] = true
		switch name {
		case "overdue", "export":
			if hasValue {
				return Filter{}, false, userErr(name, "--%s takes no value (usage: %s)", name, InventoryUsage)
			}
			if name == "overdue" {
				f.Overdue = true
			} else {
				export = true
			}
			continue
		case "env", "owner":
		default:
			return Filter{}, false, userErr("", "unknown flag %s: accepted flags are --overdue, --env, --owner, --export (usage: %s)",
				access.Code(access.Truncate(arg, 40)), InventoryUsage)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return Filter{}, false, userErr(name, "--%s needs a value (usage: %s)", name, InventoryUsage)
			}
			i++
			value = args[i]
		}
		value = strings.TrimSpace(value)
		if value == "" || utf8.RuneCountInString(value) > 80 || hasControl(value) {
			return Filter{}, false, userErr(name, "--%s needs a value of at most 80 characters", name)
		}
		if name == "env" {
			f.Env = value
		} else {
			f.Owner = strings.TrimPrefix(value, "@")
		}
	}
	return f, export, nil
}

// JournalArgs are the words after `journal`: none lists the journal;
// `restore-test passed|failed "<notes>"` records a restore test.
type JournalArgs struct {
	List    bool
	Kind    string // when listing: "" or one kind
	Outcome string
	Notes   string
}

// ParseJournalArgs reads `journal [kind]` (list) or `journal restore-test
// passed|failed "<notes>"` (record; the notes may be several words).
func ParseJournalArgs(args []string) (JournalArgs, error) {
	if len(args) == 0 {
		return JournalArgs{List: true}, nil
	}
	kind := strings.ToLower(strings.TrimSpace(args[0]))
	if !validKind(kind) {
		return JournalArgs{}, userErr("kind", "%s is not a kind of journal entry: accepted %s (usage: %s)",
			access.Code(access.Truncate(args[0], 40)), strings.Join(JournalKinds, ", "), JournalUsage)
	}
	if len(args) == 1 {
		return JournalArgs{List: true, Kind: kind}, nil
	}
	if kind != KindRestoreTest {
		return JournalArgs{}, userErr("kind", "only restore tests are recorded by hand; access reviews and post-incident reviews are recorded by the bot (usage: %s)", JournalUsage)
	}
	a := JournalArgs{Kind: kind, Outcome: strings.ToLower(strings.TrimSpace(args[1])), Notes: strings.TrimSpace(strings.Join(args[2:], " "))}
	return a, checkJournal(a.Kind, a.Outcome, a.Notes)
}

func validKind(k string) bool {
	for _, x := range JournalKinds {
		if k == x {
			return true
		}
	}
	return false
}

func checkJournal(kind, outcome, notes string) error {
	if kind != KindRestoreTest {
		return userErr("kind", "only restore tests are recorded by hand (usage: %s)", JournalUsage)
	}
	if outcome != "passed" && outcome != "failed" {
		return userErr("outcome", "a restore test either passed or failed: accepted passed, failed (usage: %s)", JournalUsage)
	}
	if notes == "" {
		return userErr("notes", "say what was restored and how it went, in quotes (usage: %s)", JournalUsage)
	}
	return checkText("notes", notes)
}

// checkText refuses over-long text and control or invisible formatting
// characters (bidirectional overrides, zero-width characters); line breaks
// and tabs are fine.
func checkText(field, s string) error {
	if utf8.RuneCountInString(s) > MaxNotes {
		return userErr(field, "the %s are too long: at most %d characters", field, MaxNotes)
	}
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return userErr(field, "the %s hold a control or invisible formatting character: plain text only", field)
		}
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}

// normalizeTicket upper-cases key and checks its form (project prefix
// included, when jira.project is set) with the access domain's parser, so
// both domains accept exactly the same keys.
func normalizeTicket(cfg *config.Config, key string) (string, error) {
	project := cfg.Jira.Project
	if project == "" {
		project = "SEC"
	}
	k, err := access.ParseTicketKey(key, cfg.Jira.Project)
	if err != nil {
		return "", userErr("ticket", "%s is not a ticket key of the %s project: give a key like %s-123",
			access.Code(access.Truncate(strings.ToUpper(strings.TrimSpace(key)), 40)), project, project)
	}
	return k, nil
}

// ValidateSecret checks a registry entry typed by a person (the register
// and provision modals) and fills its defaults: mount vault.kv_mount,
// interval inventory.default_interval, and, when neither a generator nor
// provided is given, generate 32 characters of A-Za-z0-9. Each refusal is a
// *UserError naming the field ("name", "environment", "owner_team",
// "owner_contact", "mount", "path", "interval", "generate").
func ValidateSecret(cfg *config.Config, sec Secret) (Secret, error) {
	sec.Name = strings.ToLower(strings.TrimSpace(sec.Name))
	sec.Environment = strings.TrimSpace(sec.Environment)
	sec.OwnerTeam = strings.TrimSpace(sec.OwnerTeam)
	sec.OwnerContact = strings.TrimSpace(sec.OwnerContact)
	sec.Mount = strings.Trim(strings.TrimSpace(sec.Mount), "/")
	sec.Path = strings.Trim(strings.TrimSpace(sec.Path), "/")
	if sec.Mount == "" {
		sec.Mount = cfg.Vault.KVMount
	}
	if sec.Interval == 0 {
		sec.Interval = cfg.Inventory.DefaultInterval.D()
	}
	if !sec.Provided && sec.Generate == (Generate{}) {
		sec.Generate = Generate{Length: config.DefaultGenerateLength, Alphabet: config.DefaultGenerateAlphabet}
	}
	if sec.Generate != (Generate{}) {
		if sec.Generate.Length == 0 {
			sec.Generate.Length = config.DefaultGenerateLength
		}
		if sec.Generate.Alphabet == "" {
			sec.Generate.Alphabet = config.DefaultGenerateAlphabet
		}
	}
	short := func(s string) string { return access.Code(access.Truncate(s, 70)) }
	switch {
	case !secretNameRe.MatchString(sec.Name):
		return sec, userErr("name", "%s is not a secret name: %s", short(sec.Name), acceptedSecret)
	case sec.Environment == "" || utf8.RuneCountInString(sec.Environment) > 40 || hasControl(sec.Environment):
		return sec, userErr("environment", "give the environment, such as prod or staging (at most 40 characters)")
	case sec.OwnerTeam == "" || utf8.RuneCountInString(sec.OwnerTeam) > 80 || hasControl(sec.OwnerTeam):
		return sec, userErr("owner_team", "give the owning team, such as payments (at most 80 characters)")
	case !userIDRe.MatchString(sec.OwnerContact):
		return sec, userErr("owner_contact", "the owner contact must be a Slack member (an id like U0123ABC): reminders go to them")
	case !kvPathRe.MatchString(sec.Mount):
		return sec, userErr("mount", "%s is not a KV mount: letters, digits, _, ., - between /", short(sec.Mount))
	case !kvPathRe.MatchString(sec.Path) || len(sec.Path) > 512:
		return sec, userErr("path", "%s is not a KV path: %s", short(sec.Path), acceptedPath)
	case sec.Interval < time.Hour:
		return sec, userErr("interval", "the rotation interval must be at least 1h: %s", config.DurationAccepted)
	case sec.Provided && sec.Generate != (Generate{}):
		return sec, userErr("generate", "a secret is either generated by the bot or provided by its provider, not both")
	}
	if !sec.Provided {
		if sec.Generate.Length < config.MinGenerateLength || sec.Generate.Length > config.MaxGenerateLength {
			return sec, userErr("generate", "the generated length must be %d to %d characters", config.MinGenerateLength, config.MaxGenerateLength)
		}
		if _, err := config.ExpandAlphabet(sec.Generate.Alphabet); err != nil {
			return sec, userErr("generate", "%s", access.Escape(err.Error()))
		}
	}
	return sec, nil
}

// checkValue refuses an unusable provided value without repeating it.
func checkValue(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", userErr("value", "paste the new value made by the provider")
	case len(v) > MaxValueLen:
		return "", userErr("value", "the value is longer than %d bytes", MaxValueLen)
	case !utf8.ValidString(v):
		return "", userErr("value", "the value is not valid UTF-8 text")
	}
	return v, nil
}
