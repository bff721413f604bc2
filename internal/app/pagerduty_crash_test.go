package app_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/app/apptest"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// TestPagerDutyWebhooksSurviveSIGKILL runs the real binary, kills it with
// SIGKILL right after it answered a burst of deliveries, and restarts it
// on the same database: every event is applied, exactly once.
func TestPagerDutyWebhooksSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bot binary")
	}
	bin := botBinary(t) // built once per run, shared with the replicated-mode tests
	db := filepath.Join(t.TempDir(), "bot.db")
	env := apptest.ProcessEnv(map[string]string{
		"BOT_ADDR": "127.0.0.1:0", "BOT_DB": db, "BOT_LOG_LEVEL": "debug", "PAGERDUTY_WEBHOOK_SECRET": "whsec-kill",
	})
	// Every event job that runs logs this line; count them across runs.
	var applied atomic.Int64
	countApplied := func(line string) {
		if strings.Contains(line, "applied PagerDuty event") {
			applied.Add(1)
		}
	}
	start := func() *apptest.Process {
		t.Helper()
		p, err := apptest.StartProcess(bin, env, countApplied)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	const n = 40
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = []byte(strings.ReplaceAll(string(pdtest.WithEvent(fmt.Sprintf("ev-%d", i), "incident.triggered")), `"PGR0VU2"`, fmt.Sprintf(`"PK%05d"`, i)))
	}
	send := func(p *apptest.Process, want int) {
		t.Helper()
		s := &pdtest.Sender{URL: "http://" + p.Addr + "/webhooks/pagerduty", Secrets: []string{"whsec-kill"}}
		var wg sync.WaitGroup
		for i, body := range bodies {
			wg.Go(func() {
				code, err := s.Deliver(context.Background(), body, fmt.Sprintf("wh-%d", i))
				if err != nil || code != want {
					t.Errorf("delivery %d: %d %v, want %d", i, code, err, want)
				}
			})
		}
		wg.Wait()
	}

	p := start()
	send(p, http.StatusAccepted)
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	processed := applied.Swap(0)
	t.Logf("killed after %d of %d deliveries were applied", processed, n)

	p = start()
	cfg := config.Defaults()
	cfg.DB, cfg.AdminSocket = db, db+".sock"
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := app.AdminCLI(cfg).Incidents(context.Background(), false)
		if err == nil && len(list) >= n {
			break
		}
		if time.Now().After(deadline) {
			_ = p.Kill()
			t.Fatalf("after the restart: %d incidents (%v)\n%s", len(list), err, p.Tail())
		}
		time.Sleep(20 * time.Millisecond) // polling a child process: no clock to move
	}
	send(p, http.StatusOK) // re-deliveries are duplicates
	// A kill between an event's commit and the queue's record of its job
	// makes the job run again after the restart, harmlessly (the checks
	// below): so at least the rest ran, maybe a few more.
	after := applied.Load()
	t.Logf("%d event jobs ran after the restart", after)
	if processed+after < n {
		t.Errorf("applied %d before the kill and %d after, want at least %d in all", processed, after, n)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, p.Tail())
	}

	store, err := boltstore.Open(db, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	seen := map[string]bool{}
	err = store.View(context.Background(), func(tx incident.Tx) error {
		list, err := tx.Incidents(incident.Filter{})
		if err != nil {
			return err
		}
		if len(list) != n {
			t.Errorf("%d incidents, want %d", len(list), n)
		}
		for _, inc := range list {
			if seen[inc.Pager.IncidentID] {
				t.Errorf("PagerDuty incident %s opened twice", inc.Pager.IncidentID)
			}
			seen[inc.Pager.IncidentID] = true
			events, err := tx.Timeline(inc.Number)
			if err != nil {
				return err
			}
			declared := 0
			for _, ev := range events {
				if ev.Kind == incident.EventDeclared {
					declared++
				}
			}
			if declared != 1 {
				t.Errorf("%s declared %d times", inc.ID(), declared)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	left, err := store.DueJobs(time.Now().Add(24*time.Hour), 1000, func(j incident.Job) bool { return j.Kind != pagerduty.JobEvent })
	if err != nil || len(left) != 0 {
		t.Fatalf("webhook jobs left: %d %v", len(left), err)
	}
}
