package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// ackPlan is how part 1 runs: each rate for dur[rate], reps times,
// baseline and bot rounds alternating (which goes first flips each rep).
type ackPlan struct {
	rates []int
	dur   map[int]time.Duration
	reps  int
	warm  time.Duration
}

// loadCommand is what every envelope carries: a real command the bot
// answers (identity look-up, reply through the outbox), cheap enough that
// the figure is the ack path.
const loadCommand = "help"

// target is one side of the comparison: a fake Slack and who listens on it.
type ackTarget struct {
	name  string
	srv   *fakeslack.Server
	sent  int // envelopes sent so far (warm-up included)
	drain bool
}

// startBaseline connects a bare slack-go Socket Mode client to srv that
// acks each request and does nothing else.
func startBaseline(ctx context.Context, srv *fakeslack.Server) error {
	api := slack.New(srv.BotToken(), slack.OptionAppLevelToken(srv.AppToken()), slack.OptionAPIURL(srv.APIURL()+"/"))
	client := socketmode.New(api)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-client.Events:
				if evt.Request != nil && evt.Request.EnvelopeID != "" {
					_ = client.Ack(*evt.Request)
				}
			}
		}
	}()
	go func() { _ = client.RunContext(ctx) }()
	return srv.WaitConnections(1, 20*time.Second)
}

// ackRound sends rate slash commands a second for dur, on a fixed schedule
// (open loop: a slow ack never delays the next send), then waits for every
// ack and returns the send-to-ack latencies the fake recorded.
func ackRound(ctx context.Context, tg *ackTarget, rate int, dur time.Duration) ([]time.Duration, int, error) {
	n := max(1, int(float64(rate)*dur.Seconds()))
	interval := time.Second / time.Duration(rate)
	ids := make([]string, 0, n)
	start := time.Now()
	for i := range n {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		id, _ := tg.srv.SendSlashCommand(harness.Alice.Slack, loadCommand)
		ids = append(ids, id)
	}
	tg.sent += n
	pending := map[string]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	var lat []time.Duration
	deadline := time.Now().Add(30 * time.Second)
	for len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		for id := range pending {
			if acks := tg.srv.Acks(id); len(acks) > 0 {
				lat = append(lat, acks[0].Latency)
				delete(pending, id)
			}
		}
		if len(pending) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(lat) == 0 {
		return nil, len(pending), fmt.Errorf("%s: none of %d envelopes was acked within 30s", tg.name, n)
	}
	return lat, len(pending), nil
}

// waitDrained waits until the bot has answered every command sent so far
// (each help is one response_url post), so one round's leftover work does
// not load the next.
func waitDrained(ctx context.Context, tg *ackTarget, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout && ctx.Err() == nil {
		if len(tg.srv.Responses("")) >= tg.sent {
			return time.Since(start), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return 0, fmt.Errorf("%s: %d of %d commands answered after %v", tg.name, len(tg.srv.Responses("")), tg.sent, timeout)
}

type ackStats struct{ p50, p99 []float64 }

// probeDuring runs fn with syncProbe running in dir alongside it.
func probeDuring(ctx context.Context, dir string, fn func() error) ([]time.Duration, error) {
	pctx, stop := context.WithCancel(ctx)
	got := make(chan []time.Duration, 1)
	go func() { got <- syncProbe(pctx, dir, 20*time.Millisecond) }()
	err := fn()
	stop()
	return <-got, err
}

// runAck is part 1. bot is the running bot process, for its RSS at the end
// of the 1,000/s rounds.
func runAck(ctx context.Context, w *world, bot *botProc, plan ackPlan, log func(string, ...any)) ([]figure, error) {
	dataDir := filepath.Dir(w.DBPath)
	bctx, stopBaseline := context.WithCancel(ctx)
	defer stopBaseline()
	if err := startBaseline(bctx, w.baseSlack); err != nil {
		return nil, fmt.Errorf("baseline client: %w", err)
	}
	base := &ackTarget{name: "baseline", srv: w.baseSlack}
	botT := &ackTarget{name: "bot", srv: w.Slack, drain: true}
	for _, tg := range []*ackTarget{base, botT} {
		if _, _, err := ackRound(ctx, tg, 200, plan.warm); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		if tg.drain {
			if _, err := waitDrained(ctx, tg, 2*time.Minute); err != nil {
				return nil, err
			}
		}
	}

	stats := map[string]map[int]*ackStats{"baseline": {}, "bot": {}}
	lost := 0
	var rssLoad float64
	var drains []float64 // after each 1,000/s bot round
	var syncP50, syncP99 []float64
	for rep := range plan.reps {
		for _, rate := range plan.rates {
			order := []*ackTarget{base, botT}
			if rep%2 == 1 {
				order = []*ackTarget{botT, base}
			}
			for _, tg := range order {
				var lat []time.Duration
				var missing int
				round := func() error {
					var err error
					lat, missing, err = ackRound(ctx, tg, rate, plan.dur[rate])
					return err
				}
				var err error
				if tg.drain {
					err = round()
				} else {
					var syncs []time.Duration
					syncs, err = probeDuring(ctx, dataDir, round)
					if len(syncs) > 0 {
						syncP50, syncP99 = append(syncP50, quantile(syncs, .5)), append(syncP99, quantile(syncs, .99))
					}
				}
				if err != nil {
					return nil, err
				}
				lost += missing
				st := stats[tg.name][rate]
				if st == nil {
					st = &ackStats{}
					stats[tg.name][rate] = st
				}
				st.p50 = append(st.p50, quantile(lat, 0.50))
				st.p99 = append(st.p99, quantile(lat, 0.99))
				if tg.drain && rate == 1000 {
					if rssLoad, err = bot.status("VmRSS"); err != nil {
						return nil, err
					}
				}
				drained := time.Duration(0)
				if tg.drain {
					if drained, err = waitDrained(ctx, tg, 3*time.Minute); err != nil {
						return nil, err
					}
					if rate == 1000 {
						drains = append(drains, ms(drained))
					}
				}
				log("ack %-8s %4d/s rep %d: n=%d p50 %.2f ms p99 %.2f ms (unacked %d, drained in %v)",
					tg.name, rate, rep+1, len(lat), quantile(lat, .5), quantile(lat, .99), missing, drained.Round(time.Millisecond))
			}
		}
	}
	if lost > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d envelopes were never acked\n", lost)
	}

	var figs []figure
	for _, rate := range plan.rates {
		b, o := stats["baseline"][rate], stats["bot"][rate]
		figs = append(figs,
			figure{fmt.Sprintf("ack_p50_ms_%d_baseline", rate), round3(median(b.p50)), "ms", fmt.Sprintf("bare slack-go client, %d/s: p50 send to ack", rate)},
			figure{fmt.Sprintf("ack_p99_ms_%d_baseline", rate), round3(median(b.p99)), "ms", fmt.Sprintf("bare slack-go client, %d/s: p99 send to ack", rate)},
			figure{fmt.Sprintf("ack_p50_ms_%d", rate), round3(median(o.p50)), "ms", fmt.Sprintf("secretbot, %d/s: p50 send to ack", rate)},
			figure{fmt.Sprintf("ack_p99_ms_%d", rate), round3(median(o.p99)), "ms", fmt.Sprintf("secretbot, %d/s: p99 send to ack", rate)},
		)
		if rate == 200 {
			// Paired by rep (the two rounds ran back to back), then the median.
			var added []float64
			for i := range min(len(o.p99), len(b.p99)) {
				added = append(added, o.p99[i]-b.p99[i])
			}
			figs = append(figs, figure{"ack_p99_added_ms_200", round3(median(added)), "ms",
				"secretbot p99 minus baseline p99 at 200/s (median over reps of the paired difference)"})
		}
	}
	peak, err := bot.status("VmHWM")
	if err != nil {
		return nil, err
	}
	figs = append(figs,
		figure{"rss_load_mb", round3(rssLoad), "MiB", "secretbot RSS at the end of the 1,000/s rounds"},
		figure{"rss_peak_mb", round3(peak), "MiB", "secretbot peak RSS (VmHWM) so far"},
		figure{"ack_unacked", float64(lost), "envelopes", "envelopes never acked within 30s (all rounds)"},
		figure{"disk_sync_p50_ms", round3(median(syncP50)), "ms", "4 KiB write + fsync next to the bot's database, during the baseline rounds: p50"},
		figure{"disk_sync_p99_ms", round3(median(syncP99)), "ms", "the same, p99: what one durable commit costs here, before any SQLite"},
		figure{"reply_drain_ms_1000", round3(median(drains)), "ms", "after a 1,000/s round, until every reply was posted (worker and outbox throughput)"},
	)
	return figs, nil
}
