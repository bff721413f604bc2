package boltstore

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// groupCommit coalesces concurrent writes into shared commits without
// waiting on a timer: while one commit (and its fsync) runs, the writes that
// arrive queue up, and the next commit takes all of them. A lone writer
// commits at once; a crowd shares fsyncs. (bbolt's own Batch waits up to
// MaxBatchDelay, 10 ms by default, before committing, which caps a busy
// webhook intake at a few thousand writes a second.)
//
// As with bbolt's Batch, a function may run more than once: when one
// function of a group fails, the group is rolled back and the others are
// committed again without it, and the failed one gets its error. A function
// that panics fails the same way, with an error wrapping
// incident.ErrPanicked: the panic happens on the group's goroutine, where
// nobody could recover it, so unrecovered it would kill the process (bbolt's
// Batch recovers for the same reason, see its safelyCall).
type groupCommit struct {
	db      *bolt.DB
	health  commitHealth
	mu      sync.Mutex
	queue   []*groupCall
	running bool
}

type groupCall struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// safelyCall runs fn, turning a panic into an error for fn's caller.
func safelyCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w in a store transaction: %v\n%s", incident.ErrPanicked, p, debug.Stack())
		}
	}()
	return fn(tx)
}

// errGroupMember marks which function of a group failed.
type errGroupMember struct {
	index int
	err   error
}

func (e *errGroupMember) Error() string { return e.err.Error() }

// do runs fn in a commit shared with concurrent callers and returns once
// that commit is durable (or fn failed).
func (g *groupCommit) do(fn func(*bolt.Tx) error) error {
	c := &groupCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	return <-c.done
}

// loop commits queued calls until the queue is empty, then exits; the next
// call starts a new loop. So no goroutine outlives the writes it serves.
func (g *groupCommit) loop() {
	for {
		g.mu.Lock()
		batch := g.queue
		g.queue = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.commit(batch)
	}
}

// commit runs batch in one transaction; a failing call is taken out and
// the rest retried, until the remainder commits (or is empty).
func (g *groupCommit) commit(batch []*groupCall) {
	for len(batch) > 0 {
		err := g.health.update(g.db, func(tx *bolt.Tx) error {
			for i, c := range batch {
				if err := safelyCall(c.fn, tx); err != nil {
					return &errGroupMember{index: i, err: err}
				}
			}
			return nil
		})
		var member *errGroupMember
		if errors.As(err, &member) {
			batch[member.index].done <- member.err
			batch = append(batch[:member.index:member.index], batch[member.index+1:]...)
			continue
		}
		// Success, or the commit itself failed: everyone gets the result.
		for _, c := range batch {
			c.done <- err
		}
		return
	}
}
