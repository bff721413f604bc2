package boltstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC)
)

func update(t *testing.T, s *boltstore.Store, fn func(tx incident.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

func putIncident(t *testing.T, s *boltstore.Store, inc *incident.Incident) {
	t.Helper()
	update(t, s, func(tx incident.Tx) error {
		if inc.Number == 0 {
			n, err := tx.NextIncidentNumber()
			if err != nil {
				return err
			}
			inc.Number = n
		}
		return tx.PutIncident(inc)
	})
}

func TestIndexesFollowChanges(t *testing.T) {
	s := bolttest.Open(t)
	inc := &incident.Incident{Title: "a", Status: incident.StatusTriggered, DeclaredAt: t0, Pager: incident.PagerRef{IncidentID: "P1"}}
	putIncident(t, s, inc)
	inc.Chat.ChannelID = "C1"
	putIncident(t, s, inc)
	inc.Chat.ChannelID = "C2" // renamed/recreated: the old id must not resolve
	inc.Status = incident.StatusResolved
	putIncident(t, s, inc)
	err := s.View(ctx, func(tx incident.Tx) error {
		if got, err := tx.IncidentByChannel("C2"); err != nil || got.Number != inc.Number {
			t.Errorf("by channel C2: %v", err)
		}
		if _, err := tx.IncidentByChannel("C1"); incident.ErrorCode(err) != incident.ENOTFOUND {
			t.Errorf("stale channel C1 still resolves: %v", err)
		}
		if got, err := tx.IncidentByPager("P1"); err != nil || got.Number != inc.Number {
			t.Errorf("by pager: %v", err)
		}
		open, _ := tx.Incidents(incident.Filter{OpenOnly: true})
		if len(open) != 0 {
			t.Errorf("resolved incident listed as open")
		}
		if err := tx.PutIncident(inc); err == nil {
			t.Errorf("write in a read-only transaction succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTimelineOrderAndEventKeys(t *testing.T) {
	s := bolttest.Open(t)
	a := &incident.Incident{Title: "a", Status: incident.StatusTriggered, DeclaredAt: t0}
	b := &incident.Incident{Title: "b", Status: incident.StatusTriggered, DeclaredAt: t0}
	putIncident(t, s, a)
	putIncident(t, s, b)
	update(t, s, func(tx incident.Tx) error {
		add := func(n int64, at time.Duration, key, text string) bool {
			ok, err := tx.AppendEvent(&incident.Event{Incident: n, At: t0.Add(at), Kind: incident.EventNote, Key: key, Text: text})
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		add(a.Number, 2*time.Minute, "", "second")
		add(b.Number, time.Minute, "k", "other incident")
		if !add(a.Number, time.Minute, "k", "first (recorded later, happened earlier)") {
			t.Error("key k of incident a collided with incident b's")
		}
		if add(a.Number, time.Minute, "k", "duplicate") {
			t.Error("a duplicate key was stored")
		}
		add(a.Number, 2*time.Minute, "", "third (same time as second)")
		return nil
	})
	_ = s.View(ctx, func(tx incident.Tx) error {
		evs, _ := tx.Timeline(a.Number)
		var texts []string
		for _, ev := range evs {
			texts = append(texts, ev.Text)
		}
		want := "first (recorded later, happened earlier)|second|third (same time as second)"
		if strings.Join(texts, "|") != want {
			t.Errorf("timeline:\n got %s\nwant %s", strings.Join(texts, "|"), want)
		}
		after, _ := tx.EventsAfter(a.Number, 1)
		if len(after) != 2 || after[0].Seq != 2 {
			t.Errorf("EventsAfter(1) = %+v", after)
		}
		return nil
	})
}

func TestKeysAndDocs(t *testing.T) {
	s := bolttest.Open(t)
	update(t, s, func(tx incident.Tx) error {
		if _, ok, _ := tx.Key("webhook:1"); ok {
			t.Error("unknown key found")
		}
		if err := tx.PutKey("webhook:1", []byte("v"), t0); err != nil {
			return err
		}
		v, ok, _ := tx.Key("webhook:1")
		if !ok || string(v) != "v" {
			t.Errorf("key = %q %v", v, ok)
		}
		for i := 1; i <= 3; i++ {
			if v, err := tx.PutDoc("postmortem", "INC-1", []byte(fmt.Sprintf("draft %d", i))); err != nil || v != i {
				t.Errorf("PutDoc #%d = %d, %v", i, v, err)
			}
		}
		_, _ = tx.PutDoc("postmortem", "INC-10", []byte("other")) // a prefix of INC-1's name must not mix
		body, version, err := tx.Doc("postmortem", "INC-1", 0)
		if err != nil || version != 3 || string(body) != "draft 3" {
			t.Errorf("latest doc = %q v%d %v", body, version, err)
		}
		body, _, _ = tx.Doc("postmortem", "INC-1", 2)
		if string(body) != "draft 2" {
			t.Errorf("doc v2 = %q", body)
		}
		if _, _, err := tx.Doc("postmortem", "INC-2", 0); incident.ErrorCode(err) != incident.ENOTFOUND {
			t.Errorf("missing doc: %v", err)
		}
		return nil
	})
}

func enqueue(t *testing.T, s *boltstore.Store, jobs ...*incident.Job) {
	t.Helper()
	update(t, s, func(tx incident.Tx) error {
		for _, j := range jobs {
			if err := tx.Enqueue(j); err != nil {
				return err
			}
		}
		return nil
	})
}

func dueKinds(t *testing.T, s *boltstore.Store, now time.Time) []string {
	t.Helper()
	jobs, err := s.DueJobs(now, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, j := range jobs {
		out = append(out, j.Kind)
	}
	return out
}

func TestJobsRunInOrderPerKeyAndSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	s := bolttest.OpenAt(t, path)
	enqueue(t, s,
		&incident.Job{Kind: "a1", Key: "A", Due: t0},
		&incident.Job{Kind: "b1", Key: "B", Due: t0.Add(time.Minute)},
		&incident.Job{Kind: "a2", Key: "A", Due: t0}, // behind a1
		&incident.Job{Kind: "free", Due: t0},
		&incident.Job{Kind: "later", Due: t0.Add(time.Hour)},
	)
	if got := strings.Join(dueKinds(t, s, t0), ","); got != "a1,free" {
		t.Fatalf("due at t0: %s, want a1,free", got)
	}
	// Restart: the jobs are still there, and overdue ones are due once.
	_ = s.Close()
	s = bolttest.OpenAt(t, path)
	if got := strings.Join(dueKinds(t, s, t0.Add(2*time.Hour)), ","); got != "a1,free,b1,later" {
		t.Fatalf("due after restart: %s", got)
	}
	jobs, _ := s.DueJobs(t0, 10, nil)
	// A failing head keeps its key blocked (order within a key is kept).
	if err := s.RetryJob(jobs[0].ID, t0.Add(10*time.Minute), "slack 500"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(dueKinds(t, s, t0.Add(5*time.Minute)), ","); got != "free,b1" {
		t.Fatalf("a2 overtook a retried a1: %s", got)
	}
	retried, _ := s.DueJobs(t0.Add(10*time.Minute), 1, func(j incident.Job) bool { return j.Kind != "a1" })
	if len(retried) != 1 || retried[0].Kind != "a1" || retried[0].Attempts != 1 || retried[0].LastError != "slack 500" {
		t.Fatalf("retried job: %+v", retried[0])
	}
	_ = s.CompleteJob(retried[0].ID)
	_ = s.CompleteJob(retried[0].ID) // completing twice (re-run after a crash) is harmless
	if got := strings.Join(dueKinds(t, s, t0.Add(10*time.Minute)), ","); got != "a2,free,b1" {
		t.Fatalf("after a1 completed: %s", got)
	}
	// A job failed for good unblocks its key and is kept for inspection.
	a2, _ := s.DueJobs(t0.Add(10*time.Minute), 1, func(j incident.Job) bool { return j.Kind != "a2" })
	if err := s.FailJob(a2[0].ID, "channel_not_found", t0); err != nil {
		t.Fatal(err)
	}
	dead, _ := s.DeadJobs()
	pending, _, deadN, _ := s.JobStats()
	if len(dead) != 1 || dead[0].Kind != "a2" || dead[0].LastError != "channel_not_found" || deadN != 1 || pending != 3 {
		t.Fatalf("dead %+v, pending %d", dead, pending)
	}
}

func TestCoalescedJobs(t *testing.T) {
	s := bolttest.Open(t)
	sync := func() *incident.Job {
		return &incident.Job{Kind: "chat.sync", Key: "chat:INC-1", Due: t0, Payload: []byte(`{"incident":1}`), Coalesce: true}
	}
	enqueue(t, s, sync()) // may already be running: never coalesce into it
	enqueue(t, s, sync()) // waits behind the first
	enqueue(t, s, sync(), sync(), sync())
	var n int
	_ = s.View(ctx, func(tx incident.Tx) error { n, _ = tx.PendingJobs(); return nil })
	if n != 2 {
		t.Fatalf("%d pending syncs, want 2 (one running, one waiting)", n)
	}
	enqueue(t, s, &incident.Job{Kind: "slack.capture", Key: "chat:INC-1", Due: t0})
	enqueue(t, s, sync()) // the last job of the key is different: must enqueue
	_ = s.View(ctx, func(tx incident.Tx) error { n, _ = tx.PendingJobs(); return nil })
	if n != 4 {
		t.Fatalf("%d pending, want 4", n)
	}
}

func TestConcurrentWritersAllLand(t *testing.T) {
	s := bolttest.Open(t)
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				write := s.Update
				if i%2 == 0 {
					write = s.Batch
				}
				err := write(ctx, func(tx incident.Tx) error {
					n, err := tx.NextIncidentNumber()
					if err != nil {
						return err
					}
					if err := tx.PutKey(fmt.Sprintf("w%d-%d", w, i), nil, t0); err != nil {
						return err
					}
					return tx.PutIncident(&incident.Incident{Number: n, Title: "x", Status: incident.StatusTriggered, DeclaredAt: t0})
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	_ = s.View(ctx, func(tx incident.Tx) error {
		all, _ := tx.Incidents(incident.Filter{})
		if len(all) != workers*each || all[len(all)-1].Number != workers*each {
			t.Errorf("%d incidents, last %d; want %d", len(all), all[len(all)-1].Number, workers*each)
		}
		return nil
	})
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SchemaVersion(); v != boltstore.SchemaVersion {
		t.Fatalf("schema %d", v)
	}
	_ = s.Close()
	db, _ := bolt.Open(path, 0o600, nil)
	_ = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte{0, 0, 0, 0, 0, 0, 0, 99})
	})
	_ = db.Close()
	if _, err := boltstore.Open(path, boltstore.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

// TestHeldFileFailsFast opens the database in a second process and checks
// that this process's Open fails quickly with ErrLocked instead of hanging.
func TestHeldFileFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDatabase$")
	cmd.Env = append(os.Environ(), "BOLTSTORE_HOLD="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "holding" {
		t.Fatalf("helper said %q", line)
	}
	begin := time.Now()
	_, err := boltstore.Open(path, boltstore.Options{LockTimeout: 300 * time.Millisecond})
	if !errors.Is(err, boltstore.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second opener: %v, want ErrLocked naming the file", err)
	}
	if waited := time.Since(begin); waited > 5*time.Second {
		t.Fatalf("waited %s for the lock", waited)
	}
	// Once the other process lets go, the file opens.
	_ = stdin.Close()
	_ = cmd.Wait()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	_ = s.Close()
}

// TestHelperHoldDatabase is not a test: TestHeldFileFailsFast runs it in a
// child process to hold the database until its stdin closes.
func TestHelperHoldDatabase(t *testing.T) {
	path := os.Getenv("BOLTSTORE_HOLD")
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("holding")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = s.Close()
	os.Exit(0)
}

// TestBatchIsolatesFailures: functions sharing a group commit with one that
// fails or panics still commit, the failing one gets its own error (a panic
// an incident.ErrPanicked, not a dead process) and leaves nothing behind.
func TestBatchIsolatesFailures(t *testing.T) {
	s := bolttest.Open(t)
	errBad := errors.New("refused")
	var wg sync.WaitGroup
	errs := make([]error, 60)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.Batch(ctx, func(tx incident.Tx) error {
				if err := tx.PutKey(fmt.Sprintf("k%d", i), nil, t0); err != nil {
					return err
				}
				if i%7 == 0 {
					return errBad
				}
				if i%11 == 0 {
					panic("a bug in this write")
				}
				return nil
			})
		})
	}
	wg.Wait()
	_ = s.View(ctx, func(tx incident.Tx) error {
		for i, err := range errs {
			_, stored, _ := tx.Key(fmt.Sprintf("k%d", i))
			bad := i%7 == 0
			panicked := !bad && i%11 == 0
			if bad != errors.Is(err, errBad) || panicked != errors.Is(err, incident.ErrPanicked) || stored != (!bad && !panicked) {
				t.Errorf("write %d: err %v, stored %v", i, err, stored)
			}
		}
		return nil
	})
}

func TestPruneKeysRemovesOnlyOldKeysOfTheGivenKinds(t *testing.T) {
	s := bolttest.Open(t)
	old, fresh := t0.Add(-8*24*time.Hour), t0
	update(t, s, func(tx incident.Tx) error {
		for i := range 5 {
			_ = tx.PutKey(fmt.Sprintf("pd:webhook:old%d", i), nil, old)
			_ = tx.PutKey(fmt.Sprintf("slack-event:T1:old%d", i), nil, old)
		}
		_ = tx.PutKey("pd:webhook:fresh", nil, fresh)
		_ = tx.PutKey("declare:slack-view:V1", []byte("1"), old) // permanent kind
		return nil
	})
	total := 0
	for {
		n, err := s.PruneKeys([]string{"pd:webhook:", "slack-event:"}, t0.Add(-7*24*time.Hour), 3)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 10 {
		t.Fatalf("pruned %d keys, want 10", total)
	}
	_ = s.View(ctx, func(tx incident.Tx) error {
		for _, k := range []string{"pd:webhook:fresh", "declare:slack-view:V1"} {
			if _, ok, _ := tx.Key(k); !ok {
				t.Errorf("%s was pruned", k)
			}
		}
		return nil
	})
}
