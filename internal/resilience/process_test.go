package resilience_test

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"time"
)

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
