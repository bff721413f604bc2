package etcdstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// BenchmarkIntakeCommit measures what one webhook intake commits (a
// redelivery key, an event, a job) on bbolt and on a 1-member and a
// 3-member embedded etcd, with concurrent writers, in the same run so the
// ratios compare like with like (docs/PERFORMANCE.md).
func BenchmarkIntakeCommit(b *testing.B) {
	run := func(b *testing.B, write func(context.Context, func(incident.Tx) error) error) {
		ctx := context.Background()
		var n atomic.Int64
		if err := write(ctx, func(tx incident.Tx) error {
			return tx.PutIncident(&incident.Incident{Number: 1, Title: "x", Status: incident.StatusTriggered, DeclaredAt: time.Now()})
		}); err != nil {
			b.Fatal(err)
		}
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				err := write(ctx, func(tx incident.Tx) error {
					if err := tx.PutKey(fmt.Sprintf("pd:webhook:%d", i), nil, time.Now()); err != nil {
						return err
					}
					if _, err := tx.AppendEvent(&incident.Event{Incident: 1, At: time.Now(), Kind: incident.EventNote, Text: "alert"}); err != nil {
						return err
					}
					return tx.Enqueue(&incident.Job{Kind: "x", Key: "chat:INC-1", Due: time.Now()})
				})
				if err != nil {
					b.Error(err)
				}
			}
		})
	}
	b.Run("bolt", func(b *testing.B) { run(b, bolttest.Open(b).Batch) })
	for _, members := range []int{1, 3} {
		b.Run(fmt.Sprintf("etcd-%d", members), func(b *testing.B) {
			c := etcdtest.Start(b, members)
			run(b, c.Open("/bench/", etcdstore.Options{ExpiringKeys: []string{"pd:webhook:"}, KeyTTL: time.Hour}).Batch)
		})
	}
}
