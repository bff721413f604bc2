package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// botProcess is `bot serve` running as a child process.
type botProcess struct {
	cmd    *exec.Cmd
	addr   string
	stderr strings.Builder
	mu     sync.Mutex
	logs   sync.WaitGroup
}

func startBotProcess(t *testing.T, bin string, env []string) *botProcess {
	t.Helper()
	p := &botProcess{cmd: exec.Command(bin, "serve")}
	p.cmd.Env = env
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
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
			p.stderr.WriteString(line + "\n")
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
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		p.wait()
		t.Fatalf("bot serve did not start:\n%s", p.log())
	}
	return p
}

func (p *botProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *botProcess) wait() error {
	err := p.cmd.Wait()
	p.logs.Wait()
	return err
}

// TestPagerDutyWebhooksSurviveSIGKILL runs the real binary, kills it with
// SIGKILL right after it answered a burst of deliveries, and restarts it
// on the same database: every event is applied, exactly once.
func TestPagerDutyWebhooksSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bot binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bot")
	build := exec.Command("go", "build", "-o", bin, "github.com/incidentbot/incident-bot/cmd/bot")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the bot: %v\n%s", err, out)
	}
	db := filepath.Join(dir, "bot.db")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BOT_") && !strings.HasPrefix(kv, "SLACK_") && !strings.HasPrefix(kv, "PAGERDUTY_") {
			env = append(env, kv)
		}
	}
	env = append(env, "BOT_ADDR=127.0.0.1:0", "BOT_DB="+db, "BOT_LOG_LEVEL=debug", "PAGERDUTY_WEBHOOK_SECRET=whsec-kill")

	const n = 40
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = []byte(strings.ReplaceAll(string(pdtest.WithEvent(fmt.Sprintf("ev-%d", i), incident.PagerTriggered)), `"PGR0VU2"`, fmt.Sprintf(`"PK%05d"`, i)))
	}
	send := func(p *botProcess, want int) {
		t.Helper()
		s := &pdtest.Sender{URL: "http://" + p.addr + "/webhooks/pagerduty", Secrets: []string{"whsec-kill"}}
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

	p := startBotProcess(t, bin, env)
	send(p, http.StatusAccepted)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.wait()
	processed := strings.Count(p.log(), "applied PagerDuty event")
	t.Logf("killed after %d of %d deliveries were applied", processed, n)

	p = startBotProcess(t, bin, env)
	cfg := config.Defaults()
	cfg.DB, cfg.AdminSocket = db, db+".sock"
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := app.ListIncidents(context.Background(), cfg, false)
		if err == nil && len(list) >= n {
			break
		}
		if time.Now().After(deadline) {
			_ = p.cmd.Process.Kill()
			_ = p.wait()
			t.Fatalf("after the restart: %d incidents (%v)\n%s", len(list), err, p.log())
		}
		time.Sleep(20 * time.Millisecond) // polling a child process: no clock to move
	}
	send(p, http.StatusOK) // re-deliveries are duplicates
	// A kill between an event's commit and the queue's record of its job
	// makes the job run again after the restart, harmlessly (the checks
	// below): so at least the rest ran, maybe a few more.
	after := strings.Count(p.log(), "applied PagerDuty event")
	t.Logf("%d event jobs ran after the restart", after)
	if processed+after < n {
		t.Errorf("applied %d before the kill and %d after, want at least %d in all", processed, after, n)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, p.log())
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
