package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/harness"
)

// The real secretbot binary, built once per test run with the crashpoints
// tag so a test can pick a point to SIGKILL it at (SECRETBOT_CRASH_AT) or a
// handler to panic in (SECRETBOT_PANIC_AT). Without those variables it is
// the product binary.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func secretbotBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "secretbot-e2e-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "secretbot")
		cmd := exec.Command("go", "build", "-tags", "crashpoints", "-o", binPath, "./bot")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = errors.New("go build ./bot: " + err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is the bot running as its own process.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// startBinary runs `secretbot run` with the harness's configuration and
// environment (nothing from the test process's), plus extra.
func startBinary(t *testing.T, h *harness.Harness, extra map[string]string) *proc {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range h.Env() {
		env = append(env, k+"="+v)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	p := &proc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(secretbotBinary(t), "run", "--config", h.ConfigPath)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("secretbot process output:\n%s", p.out.String())
		}
	})
	return p
}

// waitReady polls /readyz until it answers 200 or the process exits.
func (p *proc) waitReady(t *testing.T, h *harness.Harness) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("secretbot exited before it was ready: %v\n%s", p.err, p.out.String())
		default:
		}
		resp, err := http.Get("http://" + h.OpsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("secretbot not ready within 30s:\n%s", p.out.String())
}

// wait waits for the process to exit and returns its exit status, or -1 and
// the signal that killed it.
func (p *proc) wait(t *testing.T, timeout time.Duration) (code int, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("secretbot still running after %v", timeout)
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -1, ws.Signal()
	}
	return ws.ExitStatus(), 0
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
