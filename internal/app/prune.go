package app

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// prunedKeyPrefixes are the idempotency keys that only guard against
// redelivery within a bounded window: webhook deliveries and event ids
// (PagerDuty retries for at most 48 hours; Slack retries within minutes and
// its signatures expire after 5), replayed slash commands, button clicks,
// shortcuts and modal submissions. Keys that carry
// state (declarations, timers, posted digests and postmortems, page
// counters) are kept forever.
var prunedKeyPrefixes = []string{"pd:webhook:", "pd:event:", incident.AppliedKeyPrefix, "slack-event:", "slack-action:",
	"slack-command:", "slack-shortcut:", "slack-form:"}

// keyRetention is how long those keys are kept.
const keyRetention = 7 * 24 * time.Hour

// runbookRunDoc is the document kind of a runbook run's record (see
// runbooks.storeRun); its names are run ids, which sort by time.
const runbookRunDoc = "runbook-run"

// pruneBatch bounds one pruning transaction, so pruning never holds the
// writer for long; pruneDocBatch is smaller because run records carry
// their output.
const (
	pruneBatch    = 1000
	pruneDocBatch = 100
)

// prune deletes, every hour and in small transactions, what is only kept
// for a while: expired redelivery keys, and (unless BOT_RETENTION is off)
// dead-lettered jobs and runbook run records older than BOT_RETENTION. So
// the store does not grow with every webhook and run forever.
func (a *App) prune(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		a.pruneOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pruneOnce runs one pass of prune.
func (a *App) pruneOnce(ctx context.Context) {
	now := a.clock.Now()
	a.pruneAll(ctx, "redelivery keys", func() (int, error) {
		return a.store.PruneKeys(prunedKeyPrefixes, now.Add(-keyRetention), pruneBatch)
	})
	retention := a.cfg.Retention.Duration()
	if retention <= 0 {
		return
	}
	cutoff := now.Add(-retention)
	a.pruneAll(ctx, "dead-lettered jobs", func() (int, error) {
		return a.store.PruneDeadJobs(cutoff, now, pruneBatch)
	})
	a.pruneAll(ctx, "runbook run records", func() (int, error) {
		return a.store.PruneDocs(runbookRunDoc, cutoff, pruneDocBatch, runFinished)
	})
}

// pruneAll calls batch until it deletes nothing, fails or ctx ends, and
// logs the total.
func (a *App) pruneAll(ctx context.Context, what string, batch func() (int, error)) {
	total := 0
	for ctx.Err() == nil {
		n, err := batch()
		if err != nil {
			a.log.Error("pruning", zap.String("what", what), zap.Error(err))
			break
		}
		total += n
		if n == 0 {
			break
		}
	}
	if total > 0 {
		a.log.Info("pruned", zap.String("what", what), zap.Int("count", total))
	}
}

// runFinished reads when a stored runbook run (runbook.Result) ended, or
// started if it never finished.
func runFinished(body []byte) (time.Time, bool) {
	var r struct{ Started, Finished time.Time }
	if err := json.Unmarshal(body, &r); err != nil {
		return time.Time{}, false
	}
	if r.Finished.IsZero() {
		r.Finished = r.Started
	}
	return r.Finished, !r.Finished.IsZero()
}
