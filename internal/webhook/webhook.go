// Package webhook holds what the alert-source intakes (Alertmanager,
// Grafana) share at their HTTP edge: the bearer-token check for senders
// that cannot sign bodies, and the durable store step that must finish
// before the 2xx. Each source's adapter keeps its own wire format, answers
// and logging; this package knows no source.
package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Tokens is a set of accepted bearer tokens (several during a rotation),
// kept as hashes so every comparison takes the same time whatever the
// lengths.
type Tokens [][sha256.Size]byte

// NewTokens hashes tokens for Authorized.
func NewTokens(tokens []string) Tokens {
	out := make(Tokens, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, sha256.Sum256([]byte(t)))
	}
	return out
}

// Authorized reports whether h carries one of the tokens as a bearer
// token ("Authorization: Bearer <token>", the scheme in any letter case,
// RFC 9110). Every token is compared, so the time does not tell which one
// matched; an empty set accepts nothing.
func (ts Tokens) Authorized(h http.Header) bool {
	scheme, cred, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	match := 0
	for _, t := range ts {
		match |= subtle.ConstantTimeCompare(got[:], t[:])
	}
	return match == 1
}

// Enqueue stores job in one durable transaction, within timeout, and
// returns only once it is committed: the intake answers 2xx after it. The
// commit is not abandoned halfway because the sender hung up.
func Enqueue(ctx context.Context, store incident.Batcher, timeout time.Duration, job incident.Job) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := store.Batch(ctx, func(tx incident.Tx) error {
		j := job // Batch may run fn more than once: enqueue a fresh copy
		return tx.Enqueue(&j)
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("store did not commit in time")
	}
	return err
}
