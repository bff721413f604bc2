package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// runbookRequests: a waiting runbook request is created once, found by its
// id, listed as pending until it is claimed or its deadline passes, claimed
// exactly once by concurrent claimers (on every replica the harness can
// open), and survives a restart.
func runbookRequests(t *testing.T, h Harness) {
	s := h.Open(t)
	req := &incident.RunbookRequest{
		ID: "01JRUN0000000000000000000A", Runbook: "restart-api", State: incident.RunbookAwaitingApproval,
		Requester: "U1", ChannelID: "C1", Incident: "INC-1", Created: t0, Deadline: t0.Add(30 * time.Minute),
		Body: []byte(`{"engine":"opaque"}`),
	}
	short := &incident.RunbookRequest{ID: "01JRUN0000000000000000000B", Runbook: "flush", State: incident.RunbookAwaitingConfirmation,
		Requester: "U2", ChannelID: "C1", Created: t0, Deadline: t0.Add(2 * time.Minute)}
	update(t, s, func(tx incident.Tx) error {
		req.Rev, short.Rev = 0, 0 // fn may run again
		if err := tx.PutRunbookRequest(req); err != nil {
			return err
		}
		return tx.PutRunbookRequest(short)
	})
	if req.Rev != 1 {
		t.Fatalf("revision after create = %d, want 1", req.Rev)
	}
	// Creating it again (a replayed submission) is refused.
	again := *req
	again.Rev = 0
	if err := s.Update(ctx, func(tx incident.Tx) error { return tx.PutRunbookRequest(&again) }); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Fatalf("creating an existing request: %v, want a conflict", err)
	}
	if err := s.Update(ctx, func(tx incident.Tx) error {
		return tx.PutRunbookRequest(&incident.RunbookRequest{ID: "../x", Deadline: t0})
	}); incident.ErrorCode(err) != incident.EINVALID {
		t.Fatalf("a bad id: %v, want EINVALID", err)
	}

	s = h.Reopen(t, s) // a restart keeps them
	pending, err := incident.ListPendingRunbookRequests(ctx, s, t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != req.ID || string(pending[0].Body) != `{"engine":"opaque"}` || pending[0].Incident != "INC-1" {
		t.Fatalf("pending at t0+5m (the confirmation expired) = %+v, want only %s", pending, req.ID)
	}
	if pending, _ := incident.ListPendingRunbookRequests(ctx, s, t0); len(pending) != 2 {
		t.Fatalf("pending at t0: %d, want 2", len(pending))
	}

	// Concurrent approvals: every claimer reads the request and swaps it
	// to its own state; exactly one wins, the others see it claimed.
	stores := []Store{s}
	if h.Peer != nil {
		stores = append(stores, h.Peer(t, s))
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		store := stores[i%len(stores)]
		wg.Go(func() {
			won := false
			err := store.Update(ctx, func(tx incident.Tx) error {
				won = false
				r, err := tx.RunbookRequest(req.ID)
				if err != nil || r.State != incident.RunbookAwaitingApproval {
					return err
				}
				r.State = fmt.Sprintf("starting-%d", i)
				if err := tx.PutRunbookRequest(r); err != nil {
					return err
				}
				won = true
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			if won {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d claimers won the same request, want exactly 1", n)
	}
	// A swap based on a stale read (the revision it read is gone) loses.
	stale := *req
	stale.State = "denied"
	if err := s.Update(ctx, func(tx incident.Tx) error { return tx.PutRunbookRequest(&stale) }); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Fatalf("a stale swap: %v, want a conflict", err)
	}
	if pending, _ := incident.ListPendingRunbookRequests(ctx, s, t0); len(pending) != 1 || pending[0].ID != short.ID {
		t.Fatalf("pending after the claim: %+v", pending)
	}
	update(t, s, func(tx incident.Tx) error {
		if err := tx.DeleteRunbookRequest(req.ID); err != nil {
			return err
		}
		return tx.DeleteRunbookRequest("01JRUNGONE")
	})
	_ = s.View(ctx, func(tx incident.Tx) error {
		if _, err := tx.RunbookRequest(req.ID); incident.ErrorCode(err) != incident.ENOTFOUND {
			t.Errorf("deleted request: %v", err)
		}
		all, err := tx.RunbookRequests()
		if err != nil || len(all) != 1 {
			t.Errorf("requests left: %+v %v", all, err)
		}
		return nil
	})
}

// concurrentAppendsAcrossReplicas: writers on every replica the harness
// can open append to one timeline at once, two per event key. A commit
// that loses to another replica runs its function again (Batcher's rule),
// so each writer sets what it reports from scratch on every run; in the
// end every event is on the timeline once, with its own sequence number,
// and exactly one writer of each key was told it recorded it.
func concurrentAppendsAcrossReplicas(t *testing.T, h Harness) {
	s := h.Open(t)
	inc := &incident.Incident{Title: "a", Status: incident.StatusTriggered, DeclaredAt: t0}
	putIncident(t, s, inc)
	stores := []Store{s}
	if h.Peer != nil {
		stores = append(stores, h.Peer(t, s), h.Peer(t, s))
	}
	const events = 12
	recorded := make([]bool, 2*events)
	var runs atomic.Int64
	var wg sync.WaitGroup
	for i := range recorded {
		store := stores[i%len(stores)]
		wg.Go(func() {
			err := store.Update(ctx, func(tx incident.Tx) error {
				runs.Add(1)
				recorded[i] = false
				ok, err := tx.AppendEvent(&incident.Event{Incident: inc.Number, At: t0, Kind: incident.EventNote,
					Key: fmt.Sprintf("k%d", i/2), Text: fmt.Sprintf("e%d", i/2)})
				recorded[i] = ok
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d writers ran their function %d times", len(recorded), runs.Load())
	_ = s.View(ctx, func(tx incident.Tx) error {
		evs, err := tx.Timeline(inc.Number)
		if err != nil || len(evs) != events {
			t.Fatalf("%d events on the timeline (%v), want %d", len(evs), err, events)
		}
		texts, seqs := map[string]int{}, map[int64]bool{}
		for _, ev := range evs {
			texts[ev.Text]++
			seqs[ev.Seq] = true
		}
		for k := range events {
			if texts[fmt.Sprintf("e%d", k)] != 1 {
				t.Errorf("event e%d is on the timeline %d times", k, texts[fmt.Sprintf("e%d", k)])
			}
			if recorded[2*k] == recorded[2*k+1] {
				t.Errorf("key k%d: writers report recorded %v and %v, want exactly one", k, recorded[2*k], recorded[2*k+1])
			}
		}
		if len(seqs) != events {
			t.Errorf("%d distinct sequence numbers for %d events", len(seqs), events)
		}
		return nil
	})
}

// largeValues: a webhook body and a document each over etcd's default
// 1.5 MiB request limit (the intakes accept bodies up to 4 MiB) round-trip
// intact through a restart, a retry and the dead letters.
func largeValues(t *testing.T, h Harness) {
	s := h.Open(t)
	body := make([]byte, 2<<20)
	for i := range body {
		body[i] = byte(i*7 + i/4093) // not one repeated chunk: a misordered chunk shows
	}
	doc := bytes.Repeat([]byte("postmortem line\n"), 100<<10) // 1.6 MiB
	update(t, s, func(tx incident.Tx) error {
		if err := tx.Enqueue(&incident.Job{Kind: "alertmanager.notification", Key: "am:big", Due: t0, Payload: body}); err != nil {
			return err
		}
		_, err := tx.PutDoc("postmortem", "INC-1", doc)
		return err
	})
	s = h.Reopen(t, s)
	jobs, err := s.DueJobs(t0, 10, nil)
	if err != nil || len(jobs) != 1 || !bytes.Equal(jobs[0].Payload, body) {
		t.Fatalf("large job after a restart: %d jobs, err %v, payload intact %v", len(jobs), err, len(jobs) == 1 && bytes.Equal(jobs[0].Payload, body))
	}
	_ = s.View(ctx, func(tx incident.Tx) error {
		got, v, err := tx.Doc("postmortem", "INC-1", 0)
		if err != nil || v != 1 || !bytes.Equal(got, doc) {
			t.Errorf("large document: v%d %v, intact %v", v, err, bytes.Equal(got, doc))
		}
		return nil
	})
	if err := s.RetryJob(jobs[0].ID, t0, "slack 500"); err != nil {
		t.Fatal(err)
	}
	jobs, _ = s.DueJobs(t0, 10, nil)
	if len(jobs) != 1 || jobs[0].Attempts != 1 || !bytes.Equal(jobs[0].Payload, body) {
		t.Fatalf("large job after a retry: %d jobs", len(jobs))
	}
	if err := s.FailJob(jobs[0].ID, "bad", t0); err != nil {
		t.Fatal(err)
	}
	dead, err := s.DeadJobs()
	if err != nil || len(dead) != 1 || !bytes.Equal(dead[0].Payload, body) {
		t.Fatalf("large dead letter: %d, %v", len(dead), err)
	}
}
