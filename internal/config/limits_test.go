package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	base := "slack: {security_channel: C0SEC}\nvault: {token_role: secretbot, token_role_max_ttl: 12h}\n"
	cfg, err := Load(writeFile(t, base), withEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Limits; l.RequestsPerUser != DefaultRequestsPerUser || l.CommandsPerUser != DefaultCommandsPerUser || l.Window.D() != time.Minute {
		t.Errorf("defaults: %+v", l)
	}
	cfg, err = Load(writeFile(t, base+"limits: {requests_per_user: 2, commands_per_user: 9, window: 10s}\n"), withEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Limits; l.RequestsPerUser != 2 || l.CommandsPerUser != 9 || l.Window.D() != 10*time.Second {
		t.Errorf("set: %+v", l)
	}
	_, err = Load(writeFile(t, base+"limits: {requests_per_user: 0, commands_per_user: 10001, window: 2d}\n"), withEnv(nil))
	for _, want := range []string{"limits.requests_per_user: 0 is out of range (accepted: a whole number from 1 to 10000)",
		"limits.commands_per_user: 10001 is out of range", "limits.window: 2d is out of range (accepted: a duration from 1s to 1d"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// Aliases make a YAML file a graph: the decoder's walk is bounded, so an
// anchor that contains itself, or aliases of aliases, are refused at once
// rather than hanging the bot or exhausting its memory.
func TestAliasesBounded(t *testing.T) {
	laughs := "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i < 9; i++ {
		laughs += fmt.Sprintf("l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	for name, doc := range map[string]string{
		"self":       "a: &a [*a, *a]\n",
		"self merge": "vault: &v\n  <<: *v\n",
		"laughs":     laughs,
		"deep":       "x: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeFile(t, doc), withEnv(nil))
			if err == nil || !strings.Contains(err.Error(), "nests too deep or expands to too many values") {
				t.Errorf("want the expansion refused, got %v", err)
			}
		})
	}
}
