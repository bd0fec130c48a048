package config

import (
	"fmt"
	"strings"
	"time"
)

// Backup configures the scheduled backups the running bot takes of its own
// database. They are off while Dir is empty.
type Backup struct {
	// Dir receives secretbot-YYYYMMDDTHHMMSSZ.db files (created 0700 if missing).
	Dir string `yaml:"dir"`
	// Every is the time between two backups (default 1h).
	Every Duration `yaml:"every"`
	// Keep is how many of the newest backups stay; older ones are deleted (default 24).
	Keep int `yaml:"keep"`
}

// Defaults and limits of the backup section.
const (
	DefaultBackupEvery = time.Hour
	DefaultBackupKeep  = 24
	MinBackupEvery     = time.Second // backup file names have one-second resolution
	MaxBackupKeep      = 10000
)

// Enabled reports whether scheduled backups are on.
func (b Backup) Enabled() bool { return b.Dir != "" }

func applyBackupDefaults(c *Config, seen map[string]bool) {
	c.Backup.Dir = strings.TrimSpace(c.Backup.Dir)
	if !seen["backup.every"] {
		c.Backup.Every = Duration(DefaultBackupEvery)
	}
	if !seen["backup.keep"] {
		c.Backup.Keep = DefaultBackupKeep
	}
}

func validateBackup(b *Backup, p *collector) {
	if b.Every.D() < MinBackupEvery {
		p.add("backup.every", fmt.Sprintf("%s is shorter than %s", b.Every.D(), MinBackupEvery),
			"a duration of at least 1s, such as 1h; "+DurationAccepted)
	}
	if b.Keep < 1 || b.Keep > MaxBackupKeep {
		p.add("backup.keep", fmt.Sprintf("%d is out of range", b.Keep),
			fmt.Sprintf("a whole number from 1 to %d: how many of the newest backups to keep", MaxBackupKeep))
	}
}
