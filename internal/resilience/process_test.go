package resilience_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBot builds cmd/bot into a temporary directory once per test.
func buildBot(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bot")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/incidentbot/incident-bot/cmd/bot").CombinedOutput()
	if err != nil {
		t.Fatalf("building the bot: %v\n%s", err, out)
	}
	return bin
}

// processEnv is the test process's environment without the bot's
// variables, plus env.
func processEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BOT_") && !strings.HasPrefix(kv, "SLACK_") && !strings.HasPrefix(kv, "PAGERDUTY_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// botProcess is `bot serve` running as a child process.
type botProcess struct {
	cmd  *exec.Cmd
	addr string
	logs sync.WaitGroup

	mu  sync.Mutex
	log []string // the last lines of its log
}

const keepLogLines = 200

// startProcess starts `bot serve` and waits until it is serving.
func startProcess(bin string, env []string) (*botProcess, error) {
	p := &botProcess{cmd: exec.Command(bin, "serve")}
	p.cmd.Env = env
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	// The reader ends when the process's stderr closes (it exits or is
	// killed); wait joins it.
	p.logs.Go(func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log = append(p.log, line)
			if len(p.log) > 2*keepLogLines {
				p.log = append(p.log[:0], p.log[len(p.log)-keepLogLines:]...)
			}
			p.mu.Unlock()
			var entry struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "serving" {
				addr <- entry.Addr
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
	})
	select {
	case p.addr = <-addr:
		return p, nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		_ = p.wait()
		return nil, fmt.Errorf("bot serve did not start:\n%s", p.tail())
	}
}

func (p *botProcess) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log[max(len(p.log)-keepLogLines, 0):], "\n")
}

func (p *botProcess) wait() error {
	err := p.cmd.Wait()
	p.logs.Wait()
	return err
}

// kill sends SIGKILL and waits for the process to die. It returns the
// process's peak resident set size (VmHWM), read just before.
func (p *botProcess) kill() (peakRSS int64, err error) {
	peakRSS, _ = vmHWM(p.cmd.Process.Pid)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return peakRSS, err
	}
	err = p.wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return peakRSS, nil
		}
	}
	return peakRSS, fmt.Errorf("the bot was not killed but ended with %v:\n%s", err, p.tail())
}

// vmHWM reads a process's peak resident set size from /proc (Linux).
func vmHWM(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// botCheck runs `bot check` on a database file and returns its output.
func botCheck(bin string, env []string) (string, error) {
	cmd := exec.Command(bin, "check")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// botAddr is where the bot under test listens now. Senders wait while it is
// down (between a kill and the restart), as Slack and PagerDuty keep trying
// a host that does not answer.
type botAddr struct {
	mu      sync.Mutex
	addr    string // "" while down
	gen     int    // incremented at every change
	changed chan struct{}
}

func newBotAddr() *botAddr { return &botAddr{changed: make(chan struct{})} }

func (b *botAddr) set(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addr = addr
	b.gen++
	close(b.changed)
	b.changed = make(chan struct{})
}

// get waits until the bot is up and returns its address and generation.
func (b *botAddr) get(ctx context.Context) (string, int, error) {
	for {
		b.mu.Lock()
		addr, gen, ch := b.addr, b.gen, b.changed
		b.mu.Unlock()
		if addr != "" {
			return addr, gen, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", gen, ctx.Err()
		}
	}
}

// retryAfter waits before another attempt at a request that failed at
// generation gen: until the bot has been restarted, or, if it is still the
// same bot (a failure while up), a short retry interval.
func (b *botAddr) retryAfter(ctx context.Context, gen int, interval time.Duration) {
	tm := time.NewTimer(interval)
	defer tm.Stop()
	for {
		b.mu.Lock()
		cur, up, ch := b.gen, b.addr != "", b.changed
		b.mu.Unlock()
		if cur != gen && up {
			return
		}
		select {
		case <-ch:
		case <-tm.C:
			if cur == gen && up {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
