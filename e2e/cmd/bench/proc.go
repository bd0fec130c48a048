package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildBinary builds the bot as `make build` does (static, -trimpath,
// -s -w; no crashpoints tag) into dir.
func buildBinary(ctx context.Context, repoRoot, dir string) (string, error) {
	out := filepath.Join(dir, "secretbot")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./bot")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./bot: %v\n%s", err, b)
	}
	return out, nil
}

// botProc is the bot running as its own process.
type botProc struct {
	cmd     *exec.Cmd
	out     *tailBuffer
	done    chan struct{}
	err     error
	started time.Time
}

// startBot execs `secretbot run --config config` with exactly env (nothing
// inherited but PATH and HOME). The child gets SIGKILL if this process
// dies first, so an interrupted benchmark leaves no bot behind.
func startBot(bin, config string, env map[string]string) (*botProc, error) {
	vars := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	p := &botProc{out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "run", "--config", config)
	p.cmd.Env = vars
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// waitReady polls /readyz without pause between attempts (a refused
// connection costs microseconds) and returns the time from the exec to the
// first 200.
func (p *botProc) waitReady(addr string, timeout time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	url := "http://" + addr + "/readyz"
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return 0, fmt.Errorf("secretbot exited before it was ready: %v\n%s", p.err, p.out.String())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started), nil
			}
		}
		// A short pause keeps the poller from taking a core the bot needs.
		time.Sleep(500 * time.Microsecond)
	}
	return 0, fmt.Errorf("secretbot not ready within %v:\n%s", timeout, p.out.String())
}

// status reads a "Vm..." line of /proc/PID/status, in MiB.
func (p *botProc) status(field string) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %v", field, v, err)
		}
		return kb / 1024, nil
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, p.cmd.Process.Pid)
}

// stop sends SIGTERM, waits up to grace for a clean exit, then kills.
func (p *botProc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("secretbot did not stop within %v after SIGTERM; killed", grace)
	}
}

func (p *botProc) exitErr() error {
	if p.err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return fmt.Errorf("secretbot exited: %v\n%s", p.err, p.out.String())
	}
	return p.err
}

// tailBuffer keeps the last max bytes written (the bot's log), for error
// reports, without growing through a long run.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
