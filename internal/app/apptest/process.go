package apptest

import (
	"bufio"
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

// BuildBot builds cmd/bot into a temporary directory of the test and
// returns the binary's path.
func BuildBot(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bot")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/incidentbot/incident-bot/cmd/bot").CombinedOutput()
	if err != nil {
		t.Fatalf("building the bot: %v\n%s", err, out)
	}
	return bin
}

// ProcessEnv is the test process's environment without the bot's own
// variables (BOT_*, SLACK_*, PAGERDUTY_*), plus env.
func ProcessEnv(env map[string]string) []string {
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

// Process is `bot serve` running as a child process (JSON logs on stderr).
type Process struct {
	Cmd  *exec.Cmd
	Addr string // where it serves, from its "serving" log line

	logs sync.WaitGroup
	mu   sync.Mutex
	tail []string // the last lines of its log
}

const keepLogLines = 200

// StartProcess starts `bin serve` with env and waits until it serves.
// onLine, if not nil, sees every log line (for counting); it is called from
// the log reader's goroutine.
func StartProcess(bin string, env []string, onLine func(string)) (*Process, error) {
	p := &Process{Cmd: exec.Command(bin, "serve")}
	p.Cmd.Env = env
	pipe, err := p.Cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	// The reader ends when the process's stderr closes (it exits or is
	// killed); Wait joins it.
	p.logs.Go(func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if onLine != nil {
				onLine(line)
			}
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > 2*keepLogLines {
				p.tail = append(p.tail[:0], p.tail[len(p.tail)-keepLogLines:]...)
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
	case p.Addr = <-addr:
		return p, nil
	case <-time.After(30 * time.Second):
		_ = p.Cmd.Process.Kill()
		_ = p.Wait()
		return nil, fmt.Errorf("bot serve did not start:\n%s", p.Tail())
	}
}

// Tail returns the last lines the process logged.
func (p *Process) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail[max(len(p.tail)-keepLogLines, 0):], "\n")
}

// Wait waits for the process to exit and for its log to be read.
func (p *Process) Wait() error {
	err := p.Cmd.Wait()
	p.logs.Wait()
	return err
}

// Kill sends SIGKILL and waits for the process to die of it.
func (p *Process) Kill() error {
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	err := p.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	return fmt.Errorf("the bot was not killed but ended with %v:\n%s", err, p.Tail())
}

// PeakRSS reads the process's peak resident set size (VmHWM) from /proc
// (Linux), in bytes.
func (p *Process) PeakRSS() (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
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
