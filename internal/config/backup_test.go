package config

import (
	"testing"
	"time"
)

func TestBackupSection(t *testing.T) {
	cfg, err := Load(writeFile(t, doc()), withEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Backup; b.Enabled() || b.Every.D() != time.Hour || b.Keep != 24 {
		t.Errorf("defaults: %+v, want off, 1h, 24", b)
	}
	cfg, err = Load(writeFile(t, doc("backup:\n  dir: ' /var/backups/secretbot '\n  every: 30m\n  keep: 48\n")), withEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Backup; !b.Enabled() || b.Dir != "/var/backups/secretbot" || b.Every.D() != 30*time.Minute || b.Keep != 48 {
		t.Errorf("set: %+v", b)
	}
}

func TestBackupProblems(t *testing.T) {
	tests := []struct{ name, section, key, msg string }{
		{"every too short", "  every: 500ms\n", "backup.every", "shorter than 1s"},
		{"every zero", "  every: 0s\n", "backup.every", "shorter than 1s"},
		{"every not a duration", "  every: hourly\n", "backup.every", "invalid duration"},
		{"keep zero", "  keep: 0\n", "backup.keep", "out of range"},
		{"keep negative", "  keep: -3\n", "backup.keep", "out of range"},
		{"keep huge", "  keep: 10001\n", "backup.keep", "out of range"},
		{"keep not a number", "  keep: all\n", "backup.keep", "whole number"},
		{"unknown key", "  keep_last: 3\n", "backup.keep_last", "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, doc("backup:\n  dir: /var/backups/secretbot\n"+tt.section)), withEnv(nil))
			ps := problemsOf(t, err)
			if !hasProblem(ps, tt.key, tt.msg) {
				t.Errorf("problems %v lack %s: %s", ps, tt.key, tt.msg)
			}
			for _, p := range ps {
				if p.Key == tt.key && p.Accepted == "" && tt.name != "unknown key" && tt.name != "every not a duration" {
					t.Errorf("%s: no accepted values given", p)
				}
			}
		})
	}
}
