// Command secretbot runs the secret-operations Slack bot. Everything but
// signals and the exit status lives in internal/app, which the end-to-end
// tests call the same way.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/secretbot/secretbot/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := app.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(app.ExitCode(err))
}
