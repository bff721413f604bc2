package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/webhook"
)

func TestAuthorized(t *testing.T) {
	tokens := webhook.NewTokens([]string{"old-token-0123456789", "new-token-0123456789"})
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"Bearer old-token-0123456789", true},
		{"Bearer new-token-0123456789", true},
		{"bearer new-token-0123456789", true}, // the scheme is case-insensitive (RFC 9110)
		{"Bearer new-token-012345678", false},
		{"Bearer new-token-0123456789x", false},
		{"Basic bmV3LXRva2VuLTAxMjM0NTY3ODk=", false},
		{"new-token-0123456789", false},
		{"Bearer ", false},
		{"", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/alertmanager", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if got := tokens.Authorized(r.Header); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.header, got, tc.want)
		}
	}
	if webhook.NewTokens(nil).Authorized(httptest.NewRequest(http.MethodPost, "/", nil).Header) {
		t.Error("no tokens configured accepts a request")
	}
}

// TestEnqueueIsDurableOnceAnswered: what Enqueue returned nil for is in
// the store as one job, even when the sender hung up first; a store that
// refuses is an error the intake turns into a retryable answer.
func TestEnqueueIsDurableOnceAnswered(t *testing.T) {
	store := bolttest.Open(t)
	ctx, hangUp := context.WithCancel(context.Background())
	hangUp()
	job := incident.Job{Kind: "alertmanager.notification", Key: "alert:am:g1", Due: time.Unix(0, 0), Payload: []byte(`{}`)}
	if err := webhook.Enqueue(ctx, store, time.Second, job); err != nil {
		t.Fatalf("enqueue after the sender hung up: %v", err)
	}
	due, err := store.DueJobs(time.Now(), 10, nil)
	if err != nil || len(due) != 1 || due[0].Key != job.Key || string(due[0].Payload) != "{}" {
		t.Fatalf("stored jobs %+v, %v; want the one enqueued", due, err)
	}
	refused := errors.New("disk full")
	if err := webhook.Enqueue(context.Background(), failing{refused}, time.Second, job); !errors.Is(err, refused) {
		t.Fatalf("a refusing store gave %v", err)
	}
}

type failing struct{ err error }

func (f failing) Batch(context.Context, func(incident.Tx) error) error { return f.err }
