// Package app is the secretbot program: subcommands, wiring from
// configuration to integrations to handlers, the Socket Mode loop, the
// durable inbox and outbox, and the health and metrics listener. The
// command in bot/ and the end-to-end tests both call Run.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
)

// version is set at build time (-ldflags "-X ...app.version=...").
var version = "dev"

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1 // a check failed, the audit log is broken, a runtime error
	ExitUsage   = 2 // bad flags or configuration
	ExitSlack   = 3 // Slack refused the bot; restarting will not help
)

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// silentError has already been reported to the user; it only sets the exit status.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// ExitCode maps Run's error to the process exit status.
func ExitCode(err error) int {
	var (
		se *silentError
		ue *usageError
		cp *config.Problems
		fe *FatalSlackError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ue), errors.As(err, &cp):
		return ExitUsage
	case errors.As(err, &fe):
		return ExitSlack
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	}
	return ExitFailure
}

const usage = `secretbot runs a company's secret-operations playbook in Slack.

Usage:
  secretbot [run] [--config PATH] [--dry-run]
                                        run the bot (the default)
  secretbot check [--config PATH]       make one harmless call to each integration
  secretbot audit verify [--config PATH] [--checkpoint SEQ:HASH]
                                        verify the hash-chained audit log
  secretbot backup [--config PATH] [--force] PATH
                                        write a checked copy of the database, while the bot runs
  secretbot restore [--config PATH] PATH
                                        put a backup in place of the database (the bot stopped)
  secretbot version                     print the version

Every subcommand takes --help. The configuration file defaults to
$SECRETBOT_CONFIG, else ./secretbot.yaml; credentials come from the
environment only (see docs/configuration.md).
`

// Run is the whole program. It reports errors on stderr itself; the
// returned error only decides the exit status (see ExitCode).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	var se *silentError
	switch {
	case err == nil, errors.As(err, &se), errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintf(stderr, "secretbot: %v\n", err)
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "run":
		fs, configPath := flags("run", "run the bot", getenv, stdout)
		dryRun := fs.Bool("dry-run", false, "do everything but write to Vault; DMs say what would have been issued")
		if err := fs.Parse(args); err != nil {
			return flagErr(err)
		}
		if fs.NArg() > 0 {
			return &usageError{fmt.Sprintf("run takes no arguments, got %q", fs.Args())}
		}
		return runBot(ctx, *configPath, *dryRun, getenv, stderr)
	case "check":
		fs, configPath := flags("check", "make one harmless call to each integration and print a table", getenv, stdout)
		if err := fs.Parse(args); err != nil {
			return flagErr(err)
		}
		return runCheck(ctx, *configPath, getenv, stdout, stderr)
	case "audit":
		if len(args) == 0 || args[0] != "verify" {
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
				fmt.Fprint(stdout, "Usage: secretbot audit verify [--config PATH] [--checkpoint SEQ:HASH]\n")
				return nil
			}
			return &usageError{"usage: secretbot audit verify [--config PATH] [--checkpoint SEQ:HASH]"}
		}
		fs, configPath := flags("audit verify", "verify the audit log's hash chain; with --checkpoint, also that nothing after it was cut off", getenv, stdout)
		cp := fs.String("checkpoint", "", "a checkpoint `SEQ:HASH` posted by the bot to the security channel")
		if err := fs.Parse(args[1:]); err != nil {
			return flagErr(err)
		}
		var checkpoint *audit.Checkpoint
		if *cp != "" {
			c, err := audit.ParseCheckpoint(*cp)
			if err != nil {
				return &usageError{fmt.Sprintf("--checkpoint: %v (accepted: SEQ:HASH as posted by the bot, e.g. 42:3f9a…)", err)}
			}
			checkpoint = &c
		}
		return runAuditVerify(ctx, *configPath, checkpoint, getenv, stdout)
	case "backup":
		fs, configPath := pathFlags("backup", "write a consistent copy of the live database to PATH and check it (integrity, audit chain); the bot may keep running.\n"+
			"PATH must not exist unless --force; the copy is not encrypted: keep it on encrypted storage", getenv, stdout)
		force := fs.Bool("force", false, "replace PATH if it exists")
		if err := fs.Parse(args); err != nil {
			return flagErr(err)
		}
		if fs.NArg() != 1 {
			return &usageError{fmt.Sprintf("usage: secretbot backup [--config PATH] [--force] PATH (flags before PATH); got %q", fs.Args())}
		}
		return runBackup(ctx, *configPath, fs.Arg(0), *force, getenv, stdout)
	case "restore":
		fs, configPath := pathFlags("restore", "replace the database (storage.path) with the backup at PATH after checking it; refused while the bot runs.\n"+
			"The current database is kept as <storage.path>.before-restore-<time>", getenv, stdout)
		if err := fs.Parse(args); err != nil {
			return flagErr(err)
		}
		if fs.NArg() != 1 {
			return &usageError{fmt.Sprintf("usage: secretbot restore [--config PATH] PATH (flags before PATH); got %q", fs.Args())}
		}
		return runRestore(ctx, *configPath, fs.Arg(0), getenv, stdout)
	case "version":
		fmt.Fprintf(stdout, "secretbot %s (%s)\n", version, runtime.Version())
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return &usageError{fmt.Sprintf("unknown subcommand %q\n\n%s", sub, usage)}
}

// flags returns a flag set with the --config flag every subcommand shares.
func flags(name, summary string, getenv func(string) string, out io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	def := getenv("SECRETBOT_CONFIG")
	if def == "" {
		def = "secretbot.yaml"
	}
	path := fs.String("config", def, "configuration file `PATH` (credentials come from the environment only)")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: secretbot %s [flags]\n\n%s.\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs, path
}

func flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &usageError{err.Error()}
}
