// Command bench is secretbot's benchmark (issue 6; BENCHMARKS.md): the
// built binary against the fake Slack, PagerDuty and Jira and a real
// in-process Vault. It measures ack latency against a bare slack-go client,
// the grant critical path against its lower bound, the process footprint,
// and the scale figures, and prints a table and one `name value` line per
// figure. Run it with `make bench` (or `make bench-smoke`: one short round
// of each part).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/secretbot/secretbot/e2e/internal/benchscale"
	"github.com/secretbot/secretbot/e2e/vaulttest"
)

type options struct {
	smoke   bool
	bin     string
	out     string
	verbose bool
	parts   map[string]bool
	rates   []int // ack rates to run (default 50, 200, 1000)
	reps    int   // ack repeats per rate (0: the default)
}

func main() {
	var o options
	flag.BoolVar(&o.smoke, "smoke", false, "one short round of each part (CI)")
	flag.StringVar(&o.bin, "bin", "", "the secretbot binary to measure (default: build it as `make build` does)")
	flag.StringVar(&o.out, "out", "", "also write the `name value` lines to this file")
	flag.BoolVar(&o.verbose, "v", false, "log the harness's messages")
	parts := flag.String("parts", "ack,grant,scale", "which parts to run besides the footprint (comma-separated: ack, grant, scale)")
	rates := flag.String("rates", "50,200,1000", "the ack part's rates, envelopes a second (comma-separated; a subset of 50, 200, 1000)")
	flag.IntVar(&o.reps, "reps", 0, "the ack part's rounds per rate (default 5; smoke 1)")
	flag.Parse()
	for _, r := range strings.Split(*rates, ",") {
		switch r = strings.TrimSpace(r); r {
		case "50", "200", "1000":
			n, _ := strconv.Atoi(r)
			o.rates = append(o.rates, n)
		case "":
		default:
			fmt.Fprintf(os.Stderr, "bench: -rates: unknown rate %q (known: 50, 200, 1000)\n", r)
			os.Exit(2)
		}
	}
	if len(o.rates) == 0 || o.reps < 0 {
		fmt.Fprintln(os.Stderr, "bench: -rates needs at least one rate, -reps a count >= 0")
		os.Exit(2)
	}
	o.parts = map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "ack", "grant", "scale":
			o.parts[p] = true
		case "":
		default:
			fmt.Fprintf(os.Stderr, "bench: -parts: unknown part %q (known: ack, grant, scale)\n", p)
			os.Exit(2)
		}
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, o options, stdout io.Writer) (err error) {
	root, err := os.MkdirTemp("", "secretbot-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	t := newTB(root, o.verbose)
	defer t.cleanup()

	bin := o.bin
	if bin == "" {
		logf("building the bot (as make build does)")
		if bin, err = buildBinary(ctx, vaulttest.RepoRoot(), root); err != nil {
			return err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}

	plan := ackPlan{
		rates: o.rates,
		dur:   map[int]time.Duration{50: 10 * time.Second, 200: 5 * time.Second, 1000: 3 * time.Second},
		reps:  5, // the median of 5 paired rounds: one noisy minute on this shared disk does not decide it
		warm:  time.Second,
	}
	grantRounds, starts := 9, 3
	if o.smoke {
		plan.dur = map[int]time.Duration{50: time.Second, 200: time.Second, 1000: time.Second}
		plan.reps, plan.warm = 1, 300*time.Millisecond
		grantRounds, starts = 1, 1
	}
	if o.reps > 0 {
		plan.reps = o.reps
	}

	logf("%s run on %d CPUs, %s/%s, %s", map[bool]string{true: "smoke", false: "full"}[o.smoke],
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format(time.RFC3339))
	var w *world
	if err := t.run(func() { w = startWorld(t, grantRounds+1) }); err != nil {
		return fmt.Errorf("setting up the fakes and Vault: %w", err)
	}
	logf("fakes and Vault up; disk settled in %v", settleDisk().Round(time.Millisecond))

	var figs []figure
	bot, fp, err := runFootprint(bin, w, starts)
	if bot != nil {
		defer func() {
			if serr := bot.stop(30 * time.Second); serr != nil && err == nil {
				err = serr
			}
		}()
	}
	if err != nil {
		return fmt.Errorf("footprint: %w", err)
	}
	figs = append(figs, fp...)
	logf("footprint done")

	if o.parts["ack"] {
		af, err := runAck(ctx, w, bot, plan, logf)
		if err != nil {
			return fmt.Errorf("ack latency: %w", err)
		}
		figs = append(figs, af...)
		logf("ack latency done")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.parts["grant"] {
		gf, err := runGrant(ctx, w, logf)
		if err != nil {
			return fmt.Errorf("grant path: %w (bot log tail:\n%s)", err, bot.out.String())
		}
		figs = append(figs, gf...)
		logf("grant path done")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.parts["scale"] {
		scaleDir := filepath.Join(root, "scale")
		if err := os.Mkdir(scaleDir, 0o700); err != nil {
			return err
		}
		sf, err := benchscale.Run(ctx, o.smoke, scaleDir)
		if err != nil {
			return fmt.Errorf("scale: %w", err)
		}
		for _, f := range sf {
			figs = append(figs, figure{f.Name, f.Value, f.Unit, f.What})
		}
		logf("scale done")
	}

	var lines bytes.Buffer
	if err := writeLines(&lines, figs); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	writeTable(stdout, figs)
	fmt.Fprintln(stdout)
	if _, err := stdout.Write(lines.Bytes()); err != nil {
		return err
	}
	if o.out != "" {
		if err := os.WriteFile(o.out, lines.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runFootprint is part 3: the binary's size; the bot started `starts`
// times (fresh database first, then restarts) and timed from exec to the
// first /readyz 200; its idle RSS after the last start. The last process
// is returned running, for part 1.
func runFootprint(bin string, w *world, starts int) (*botProc, []figure, error) {
	fi, err := os.Stat(bin)
	if err != nil {
		return nil, nil, err
	}
	var ready []float64
	var bot *botProc
	for i := range starts {
		if bot != nil {
			if err := bot.stop(30 * time.Second); err != nil {
				return nil, nil, err
			}
			// The next start must see the old connection gone.
			if err := w.Slack.WaitConnections(0, 20*time.Second); err != nil {
				return nil, nil, err
			}
		}
		if bot, err = startBot(bin, w.ConfigPath, w.Env()); err != nil {
			return nil, nil, err
		}
		d, err := bot.waitReady(w.OpsAddr, 60*time.Second)
		if err != nil {
			return bot, nil, err
		}
		ready = append(ready, ms(d))
		logf("start %d: ready in %.1f ms", i+1, ms(d))
	}
	// Idle: let start-up work (first sweeps, the socket's hello) settle.
	time.Sleep(2 * time.Second)
	rss, err := bot.status("VmRSS")
	if err != nil {
		return bot, nil, err
	}
	if err := ctxErr(bot); err != nil {
		return bot, nil, err
	}
	return bot, []figure{
		{"binary_mb", round3(float64(fi.Size()) / (1 << 20)), "MiB", "size of the make-build binary (-trimpath -s -w, static)"},
		{"ready_ms", round3(median(ready)), "ms", fmt.Sprintf("exec to first /readyz 200, median of %d starts (fakes already up)", starts)},
		{"rss_idle_mb", round3(rss), "MiB", "VmRSS 2 s after ready, idle"},
	}, nil
}

// ctxErr reports a bot that died.
func ctxErr(p *botProc) error {
	select {
	case <-p.done:
		return errors.New("secretbot exited: " + p.out.String())
	default:
		return nil
	}
}
