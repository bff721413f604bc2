package boltstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// BenchmarkBatchedIntakeWrite measures the store's part of a webhook
// intake (two idempotency keys and one job with a 1.6 KB payload) from 32
// concurrent writers, against Update (one commit each) as the baseline.
func BenchmarkBatchedIntakeWrite(b *testing.B) {
	payload := make([]byte, 1600)
	for _, mode := range []string{"batch", "update"} {
		b.Run(mode, func(b *testing.B) {
			s := bolttest.Open(b)
			write := s.Batch
			if mode == "update" {
				write = s.Update
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			b.ResetTimer()
			for range 32 {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						err := write(context.Background(), func(tx incident.Tx) error {
							k := fmt.Sprintf("pd:webhook:%d", i)
							if _, ok, err := tx.Key(k); err != nil || ok {
								return err
							}
							_ = tx.PutKey(k, []byte("x"), t0)
							_ = tx.PutKey(fmt.Sprintf("pd:event:%d", i), []byte("x"), t0)
							return tx.Enqueue(&incident.Job{Kind: "pagerduty.event", Key: fmt.Sprintf("pd:P%d", i%50), Due: t0, Payload: payload})
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
