package app

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// hoChat is the postmortem tests' chat, remembering where each message
// went.
type hoChat struct {
	*pmChat
	mu  sync.Mutex
	got []hoPost
}

type hoPost struct{ channel, text string }

func (c *hoChat) Post(ctx context.Context, channel string, m incident.Message) (string, error) {
	c.mu.Lock()
	c.got = append(c.got, hoPost{channel, m.Text})
	c.mu.Unlock()
	return c.pmChat.Post(ctx, channel, m)
}

// handovers returns the messages posted to channel that are handovers.
func (c *hoChat) handovers(channel string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.got {
		if p.channel == channel && strings.HasPrefix(p.text, "*On-call handover*") {
			out = append(out, p.text)
		}
	}
	return out
}

// waitHandovers waits until channel has n handovers (the job runner posts
// them in the background) and returns them.
func (c *hoChat) waitHandovers(t *testing.T, channel string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := c.handovers(channel)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

// TestHandoverScheduledByServe: `bot serve` with BOT_HANDOVER_SCHEDULE
// posts the handover of a shift it was down for when it comes back, once
// across restarts, to BOT_HANDOVER_CHANNEL; `bot handover` reads the
// current shift through the admin socket meanwhile, and `/incident
// handover` posts it where it is typed.
func TestHandoverScheduledByServe(t *testing.T) {
	cfg := pmConfig(t, t.TempDir(), map[string]string{"BOT_ANNOUNCE_CHANNEL": "C0ANNOUNCE", "BOT_HANDOVER_CHANNEL": "C0ONCALL",
		"BOT_HANDOVER_SCHEDULE": "CRON_TZ=Europe/Berlin 0 9 * * *", "BOT_TIMEZONE": "Europe/Berlin"})
	clock := &pmClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	chat := &hoChat{pmChat: newPMChat()}
	var logs *observer.ObservedLogs
	start := func() (*App, func()) {
		var log *zap.Logger
		log, logs = pmLogger(t)
		a, err := Open(cfg, log, Options{Clock: clock, Chat: chat, Workers: 1, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		stop := pmServe(t, a)
		dgWaitLog(t, logs, "handover scheduled")
		return a, func() {
			stop()
			if err := a.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	a, stop := start()
	if _, err := a.Service().Declare(context.Background(), incident.Declaration{Title: "Checkout is down", Severity: incident.SEV1, By: pmAlice}); err != nil {
		t.Fatal(err)
	}
	stop()

	// Down over Tue 09:00 in Berlin.
	clock.Set(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	a, stop = start()
	got := chat.waitHandovers(t, "C0ONCALL", 1)
	if len(got) != 1 || !strings.HasPrefix(got[0], "*On-call handover* for the shift Mon 30 Nov 09:00 to Tue 01 Dec 09:00 (Europe/Berlin)\nPosted late") ||
		!strings.Contains(got[0], "*INC-1* SEV1 acknowledged: Checkout is down") {
		t.Fatalf("handovers in C0ONCALL: %q", got)
	}
	reply, err := AdminCLI(cfg).Handover(context.Background())
	if err != nil || !strings.HasPrefix(reply.Text, "*On-call handover* for the shift Tue 01 Dec 09:00 to Tue 01 Dec 11:00 (Europe/Berlin)") {
		t.Errorf("bot handover while serving: %.120q, %v", reply.Text, err)
	}
	r := a.Dispatcher().Handle(context.Background(), command.Request{Text: "handover", Actor: pmAlice, ChannelID: "C0WAR"})
	if r.Error || len(chat.handovers("C0WAR")) != 1 {
		t.Errorf("/incident handover: %+v; posted %q", r, chat.handovers("C0WAR"))
	}
	stop()

	clock.Set(time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC))
	_, stop = start()
	defer stop()
	// The start's catch-up has run once "handover scheduled" is logged.
	if n := logs.FilterMessageSnippet("handover queued").Len(); n != 0 {
		t.Errorf("the restart queued %d handovers again", n)
	}
	if got := chat.handovers("C0ONCALL"); len(got) != 1 {
		t.Errorf("%d handovers in C0ONCALL after another restart, want 1", len(got))
	}
}
