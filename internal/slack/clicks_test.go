package slack_test

import (
	"context"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/slack"
)

// runClicks runs the button clicks waiting in store through h, as the
// app's job runner would, and completes them; other jobs are left alone.
// It returns how many ran.
func runClicks(t testing.TB, store *boltstore.Store, h *slack.Handler) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for {
		// Only the first job of each key is due at a time.
		jobs, err := store.DueJobs(time.Now().Add(time.Hour), 1000, nil)
		if err != nil {
			t.Fatal(err)
		}
		ran := 0
		for _, j := range jobs {
			if j.Kind != slack.JobButtonClick {
				continue
			}
			if err := h.RunClick(ctx, j); err != nil {
				t.Fatalf("click job %s: %v", j.Payload, err)
			}
			if err := store.CompleteJob(j.ID); err != nil {
				t.Fatal(err)
			}
			ran++
		}
		if ran == 0 {
			return n
		}
		n += ran
	}
}
