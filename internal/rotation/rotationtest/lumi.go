package rotationtest

import (
	"time"

	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// People of the rotation fixture, besides accesstest's (accesstest.Sec is
// in Platform Security and may rotate; accesstest.Ana and Bob may not).
var (
	// Rae is a second Platform Security engineer (for confirmations by someone else).
	Rae = policy.Person{SlackID: "URAE", Email: "rae@lumi.example", Name: "rae", Groups: []string{"platform-security"}}
	// Pam owns the payments secrets (their owner contact).
	Pam = policy.Person{SlackID: "UPAM", Email: "pam@lumi.example", Name: "pam", Groups: []string{"payments"}}
	// Ike is the incident commander (assignee of the fixture's incident).
	Ike = policy.Person{SlackID: "UIKE", Email: "ike@lumi.example", Name: "ike", Groups: []string{"sre"}}
)

// Jira identities of the fixture.
const (
	JiraSec = "acc-sec"
	JiraRae = "acc-rae"
)

// KVMount is the fixture's KV v2 mount.
const KVMount = "kv"

// Lumi returns accesstest.Lumi() with kv_paths on its scopes and the
// inventory, rotation and schedule sections (defaults as Load applies them):
//   - payments-db: prod, payments (Pam), kv/payments/db, 90d, 32 of A-Za-z0-9;
//   - stripe-api-key: prod, payments (Pam), kv/payments/stripe, 30d, provided;
//   - platform-signing: staging, platform (Rae), kv/platform/signing, 180d, 48 of A-Za-z0-9_-.
func Lumi() *config.Config {
	cfg := accesstest.Lumi()
	cfg.Vault.KVMount = KVMount
	for i := range cfg.Scopes {
		switch cfg.Scopes[i].Name {
		case "platform-rw", "platform-ro":
			cfg.Scopes[i].KVPaths = []string{"platform/*"}
		case "payments-rw":
			cfg.Scopes[i].KVPaths = []string{"payments/+", "kv/payments-legacy/*"}
		}
	}
	day := 24 * time.Hour
	cfg.Inventory = config.Inventory{
		DefaultInterval: config.Duration(90 * day),
		DueSoon:         config.Duration(14 * day),
		Secrets: []config.InventorySecret{
			{Name: "payments-db", Environment: "prod", Owner: config.Owner{Team: "payments", Contact: Pam.SlackID},
				Mount: KVMount, Path: "payments/db", Interval: config.Duration(90 * day),
				Generate: config.Generate{Length: 32, Alphabet: "A-Za-z0-9"}},
			{Name: "stripe-api-key", Environment: "prod", Owner: config.Owner{Team: "payments", Contact: Pam.SlackID},
				Mount: KVMount, Path: "payments/stripe", Interval: config.Duration(30 * day), Provided: true},
			{Name: "platform-signing", Environment: "staging", Owner: config.Owner{Team: "platform", Contact: Rae.SlackID},
				Mount: KVMount, Path: "platform/signing", Interval: config.Duration(180 * day),
				Generate: config.Generate{Length: 48, Alphabet: "A-Za-z0-9_-"}},
		},
	}
	cfg.Rotation = config.Rotation{
		Rotators:               config.People{Groups: []string{"platform-security"}},
		ConfirmWithin:          config.Duration(config.DefaultConfirmWithin),
		EmergencyConfirmWithin: config.Duration(config.DefaultEmergencyConfirmWithin),
		ReminderEvery:          config.Duration(config.DefaultReminderEvery),
		EmergencyReminderEvery: config.Duration(config.DefaultEmergencyReminderEvery),
		PreviousVersion:        config.PreviousDestroy,
	}
	cfg.Schedule = config.Schedule{DailyAt: config.DefaultDailyAt, ReviewDay: config.DefaultReviewDay,
		ReviewWindow: config.Duration(config.DefaultReviewWindow), RestoreTestMonths: []int{1, 4, 7, 10}}
	return cfg
}
