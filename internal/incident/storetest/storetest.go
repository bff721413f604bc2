// Package storetest is the contract every incident.Store implementation
// passes: incidents and their look-up indexes, timelines, idempotency keys,
// documents, the durable job queue, concurrent writers and a restart. The
// bbolt store and the etcd store run the same suite, so the bot behaves the
// same on either.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Store is what the suite exercises: the store port, shared commits and the
// job queue's side of the store.
type Store interface {
	incident.Store
	incident.Batcher
	DueJobs(now time.Time, limit int, skip func(incident.Job) bool) ([]incident.Job, error)
	NextDue() (time.Time, bool, error)
	CompleteJob(id uint64) error
	RetryJob(id uint64, due time.Time, lastErr string) error
	FailJob(id uint64, lastErr string, at time.Time) error
	DeadJobs() ([]incident.Job, error)
	JobStats() (pending int, oldestDue time.Time, dead int, err error)
}

// Harness opens the implementation under test.
type Harness struct {
	// Open returns a new, empty store, closed when the test ends.
	Open func(t *testing.T) Store
	// Reopen closes s and opens the same data again, as a restarted bot
	// would; the new store is closed when the test ends.
	Reopen func(t *testing.T, s Store) Store
	// Peer opens another replica on s's data, closed when the test ends;
	// nil for a store that one process holds (bbolt).
	Peer func(t *testing.T, s Store) Store
}

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC)
)

// Run runs the whole contract against h.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"IndexesFollowChanges", indexesFollowChanges},
		{"PagerIndexBySystem", pagerIndexBySystem},
		{"TimelineOrderAndEventKeys", timelineOrderAndEventKeys},
		{"KeysAndDocs", keysAndDocs},
		{"JobsRunInOrderPerKeyAndSurviveRestart", jobsRunInOrderPerKeyAndSurviveRestart},
		{"CoalescedJobs", coalescedJobs},
		{"ConcurrentWritersAllLand", concurrentWritersAllLand},
		{"BatchIsolatesFailures", batchIsolatesFailures},
		{"FailedUpdateLeavesNothing", failedUpdateLeavesNothing},
		{"RunbookRequests", runbookRequests},
		{"ConcurrentAppendsAcrossReplicas", concurrentAppendsAcrossReplicas},
		{"LargeValues", largeValues},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

func update(t *testing.T, s Store, fn func(tx incident.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

func putIncident(t *testing.T, s Store, inc *incident.Incident) {
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

// pagerIndexBySystem: two pagers' incidents with the same id are two
// links, each found by its own system; relinking moves the entry.
func pagerIndexBySystem(t *testing.T, h Harness) {
	s := h.Open(t)
	pd := &incident.Incident{Title: "a", Status: incident.StatusTriggered, DeclaredAt: t0, Pager: incident.PagerRef{System: "pagerduty", IncidentID: "X1"}}
	og := &incident.Incident{Title: "b", Status: incident.StatusTriggered, DeclaredAt: t0, Pager: incident.PagerRef{System: "opsgenie", IncidentID: "X1"}}
	putIncident(t, s, pd)
	putIncident(t, s, og)
	og.Pager.IncidentID = "X2"
	putIncident(t, s, og)
	err := s.View(ctx, func(tx incident.Tx) error {
		for _, c := range []struct {
			system incident.Source
			id     string
			want   int64
		}{{"pagerduty", "X1", pd.Number}, {"opsgenie", "X2", og.Number}, {"opsgenie", "X1", 0}, {"grafana", "X1", 0}} {
			got, err := tx.IncidentByPager(c.system, c.id)
			switch {
			case c.want == 0 && incident.ErrorCode(err) != incident.ENOTFOUND:
				t.Errorf("%s %s: %v, %v; want not found", c.system, c.id, got, err)
			case c.want != 0 && (err != nil || got.Number != c.want):
				t.Errorf("%s %s: %v, %v; want INC-%d", c.system, c.id, got, err, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func indexesFollowChanges(t *testing.T, h Harness) {
	s := h.Open(t)
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
		if got, err := tx.IncidentByPager("", "P1"); err != nil || got.Number != inc.Number {
			t.Errorf("by pager: %v", err)
		}
		if _, err := tx.Incident(99); incident.ErrorCode(err) != incident.ENOTFOUND {
			t.Errorf("missing incident: %v", err)
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
	// Declaration-time windows and newest-first limits.
	later := &incident.Incident{Title: "b", Status: incident.StatusTriggered, DeclaredAt: t0.Add(48 * time.Hour)}
	putIncident(t, s, later)
	_ = s.View(ctx, func(tx incident.Tx) error {
		got, err := tx.Incidents(incident.Filter{DeclaredFrom: t0.Add(time.Hour)})
		if err != nil || len(got) != 1 || got[0].Number != later.Number {
			t.Errorf("declared from t0+1h: %v %v", got, err)
		}
		got, _ = tx.Incidents(incident.Filter{DeclaredTo: t0.Add(time.Hour)})
		if len(got) != 1 || got[0].Number != inc.Number {
			t.Errorf("declared before t0+1h: %v", got)
		}
		got, _ = tx.Incidents(incident.Filter{Newest: true, Limit: 1})
		if len(got) != 1 || got[0].Number != later.Number {
			t.Errorf("newest: %v", got)
		}
		n := 0
		_ = tx.ForEachIncident(func(*incident.Incident) error { n++; return nil })
		if n != 2 {
			t.Errorf("ForEachIncident saw %d incidents, want 2", n)
		}
		return nil
	})
}

func timelineOrderAndEventKeys(t *testing.T, h Harness) {
	s := h.Open(t)
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

func keysAndDocs(t *testing.T, h Harness) {
	s := h.Open(t)
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
	// Committed: a later transaction sees all of it.
	_ = s.View(ctx, func(tx incident.Tx) error {
		if v, ok, _ := tx.Key("webhook:1"); !ok || string(v) != "v" {
			t.Errorf("committed key = %q %v", v, ok)
		}
		if body, version, err := tx.Doc("postmortem", "INC-10", 0); err != nil || version != 1 || string(body) != "other" {
			t.Errorf("committed doc = %q v%d %v", body, version, err)
		}
		return nil
	})
}

func enqueue(t *testing.T, s Store, jobs ...*incident.Job) {
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

func dueKinds(t *testing.T, s Store, now time.Time) []string {
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

func jobsRunInOrderPerKeyAndSurviveRestart(t *testing.T, h Harness) {
	s := h.Open(t)
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
	if due, ok, err := s.NextDue(); err != nil || !ok || !due.Equal(t0) {
		t.Fatalf("NextDue = %v %v %v, want %v", due, ok, err, t0)
	}
	// Restart: the jobs are still there, and overdue ones are due once.
	s = h.Reopen(t, s)
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
		t.Fatalf("retried job: %+v", retried)
	}
	_ = s.CompleteJob(retried[0].ID)
	if err := s.CompleteJob(retried[0].ID); err != nil { // completing twice (re-run after a crash) is harmless
		t.Fatalf("completing twice: %v", err)
	}
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
	// Cancelling a timer removes it; cancelling it again is harmless.
	later, _ := s.DueJobs(t0.Add(2*time.Hour), 10, func(j incident.Job) bool { return j.Kind != "later" })
	for range 2 {
		update(t, s, func(tx incident.Tx) error { return tx.CancelJob(later[0].ID) })
	}
	if got := strings.Join(dueKinds(t, s, t0.Add(2*time.Hour)), ","); got != "free,b1" {
		t.Fatalf("after cancelling the timer: %s", got)
	}
}

func coalescedJobs(t *testing.T, h Harness) {
	s := h.Open(t)
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

func concurrentWritersAllLand(t *testing.T, h Harness) {
	s := h.Open(t)
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

// batchIsolatesFailures: functions sharing a commit with one that fails or
// panics still commit, the failing one gets its own error (a panic an
// incident.ErrPanicked, not a dead process) and leaves nothing behind.
func batchIsolatesFailures(t *testing.T, h Harness) {
	s := h.Open(t)
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

// failedUpdateLeavesNothing: an Update whose function fails keeps none of
// its writes, and the incident number it took is not consumed.
func failedUpdateLeavesNothing(t *testing.T, h Harness) {
	s := h.Open(t)
	errBad := errors.New("refused")
	err := s.Update(ctx, func(tx incident.Tx) error {
		n, err := tx.NextIncidentNumber()
		if err != nil {
			return err
		}
		if err := tx.PutIncident(&incident.Incident{Number: n, Title: "x", Status: incident.StatusTriggered, DeclaredAt: t0}); err != nil {
			return err
		}
		if err := tx.Enqueue(&incident.Job{Kind: "x", Due: t0}); err != nil {
			return err
		}
		return errBad
	})
	if !errors.Is(err, errBad) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	var n int64
	update(t, s, func(tx incident.Tx) error {
		if all, _ := tx.Incidents(incident.Filter{}); len(all) != 0 {
			t.Errorf("a failed update left %d incidents", len(all))
		}
		if p, _ := tx.PendingJobs(); p != 0 {
			t.Errorf("a failed update left %d jobs", p)
		}
		var err error
		n, err = tx.NextIncidentNumber()
		return err
	})
	if n != 1 {
		t.Errorf("next number after a failed update = %d, want 1", n)
	}
}
