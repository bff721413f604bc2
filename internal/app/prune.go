package app

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// prunedKeyPrefixes are the idempotency keys that only guard against
// redelivery within a bounded window: webhook deliveries and event ids
// (PagerDuty retries for at most 48 hours; Slack retries within minutes and
// its signatures expire after 5), replayed button clicks and slash commands. Keys that carry
// state (declarations, timers, posted digests and postmortems, page
// counters) are kept forever.
var prunedKeyPrefixes = []string{"pd:webhook:", "pd:event:", "pd:applied:", "slack-event:", "slack-action:", "slack-command:"}

// keyRetention is how long those keys are kept.
const keyRetention = 7 * 24 * time.Hour

// pruneKeys deletes expired redelivery keys every hour, in small
// transactions, so the store does not grow with every webhook forever.
func (a *App) pruneKeys(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		total := 0
		for ctx.Err() == nil {
			n, err := a.store.PruneKeys(prunedKeyPrefixes, a.clock.Now().Add(-keyRetention), 1000)
			if err != nil {
				a.log.Error("pruning old idempotency keys", zap.Error(err))
				break
			}
			total += n
			if n == 0 {
				break
			}
		}
		if total > 0 {
			a.log.Info("pruned old idempotency keys", zap.Int("keys", total))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
