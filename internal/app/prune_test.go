package app_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/runbook"
)

// TestOldDeadLettersAndRunRecordsArePruned: the running bot deletes dead
// letters and runbook run records older than BOT_RETENTION (default 30
// days) and keeps younger ones.
func TestOldDeadLettersAndRunRecordsArePruned(t *testing.T) {
	w := newPDWorld(t)
	db := filepath.Join(t.TempDir(), "bot.db")
	store, err := boltstore.Open(db, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	jobs := []incident.Job{
		{Kind: "pagerduty.event", Due: pdStart, Payload: []byte(`{"old":"webhook body"}`)},
		{Kind: "pagerduty.event", Due: pdStart, Payload: []byte(`{"young":"webhook body"}`)},
	}
	err = store.Update(ctx, func(tx incident.Tx) error {
		for i := range jobs {
			if err := tx.Enqueue(&jobs[i]); err != nil {
				return err
			}
		}
		for id, finished := range map[string]time.Time{"01OLDRUN": pdStart.Add(-31 * 24 * time.Hour), "02YOUNGRUN": pdStart.Add(-29 * 24 * time.Hour)} {
			body, _ := json.Marshal(runbook.Result{RunID: id, Started: finished.Add(-time.Minute), Finished: finished, Output: "lots of output"})
			if _, err := tx.PutDoc("runbook-run", id, body); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = store.FailJob(jobs[0].ID, "bad", pdStart.Add(-31*24*time.Hour))
	}
	if err == nil {
		err = store.FailJob(jobs[1].ID, "bad", pdStart.Add(-29*24*time.Hour))
	}
	_ = store.Close()
	if err != nil {
		t.Fatal(err)
	}

	bot := w.start(t, db, nil)
	store = bot.App.Service().Store().(*boltstore.Store)
	waitUntil(t, "the old dead letter pruned", func() bool {
		dead, err := store.DeadJobs()
		return err == nil && len(dead) == 1 && string(dead[0].Payload) == `{"young":"webhook body"}`
	})
	waitUntil(t, "the old run record pruned", func() bool {
		var old, young error
		_ = store.View(ctx, func(tx incident.Tx) error {
			_, _, old = tx.Doc("runbook-run", "01OLDRUN", 0)
			_, _, young = tx.Doc("runbook-run", "02YOUNGRUN", 0)
			return nil
		})
		return old != nil && young == nil
	})
}
