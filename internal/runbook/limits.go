package runbook

import (
	"fmt"
	"time"
)

// rateLimiter allows limit events per key in any sliding window. It is
// guarded by the engine's mutex.
type rateLimiter struct {
	limit  int
	window time.Duration
	hits   map[string][]time.Time
}

// allow records an event for key at now if under the limit. Otherwise it
// returns how long until the oldest event leaves the window.
func (r *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	recent := r.prune(key, now)
	if len(recent) >= r.limit {
		return false, recent[0].Add(r.window).Sub(now)
	}
	r.hits[key] = append(recent, now)
	return true, 0
}

// wait reports how long until key may have one more event (0: now),
// without recording one.
func (r *rateLimiter) wait(key string, now time.Time) time.Duration {
	recent := r.prune(key, now)
	if len(recent) < r.limit {
		return 0
	}
	return recent[0].Add(r.window).Sub(now)
}

func (r *rateLimiter) prune(key string, now time.Time) []time.Time {
	hits := r.hits[key]
	i := 0
	for i < len(hits) && !hits[i].After(now.Add(-r.window)) {
		i++
	}
	hits = hits[i:]
	if len(hits) == 0 {
		delete(r.hits, key)
	}
	return hits
}

func (r *rateLimiter) sweep(now time.Time) {
	for key := range r.hits {
		r.prune(key, now)
	}
}

// slots tracks running work: the global cap, per-key locks and cooldowns.
// Concurrency keys are shared across runbooks (two runbooks touching the
// same deployment lock each other); cooldowns are per runbook and key.
// It is guarded by the engine's mutex.
type slots struct {
	maxGlobal int
	running   int
	byKey     map[string]int
	coolUntil map[string]time.Time
}

func cooldownKey(runbookID, key string) string { return runbookID + "\x00" + key }

// check says why a run of rb with lock key could not start now, or "".
// Dry runs take a global slot but no key lock and ignore cooldowns.
func (s *slots) check(rb *Runbook, key string, dryRun bool, now time.Time) string {
	if s.running >= s.maxGlobal {
		return fmt.Sprintf("the bot is already running %d runbooks (its limit); try again shortly", s.maxGlobal)
	}
	if dryRun {
		return ""
	}
	return s.blocked(rb, key, now)
}

// blocked says why a real run of rb with lock key could not start now for
// a reason a wait for confirmation or approval will not cure: a run
// already holding the key, or the cooldown. "" if none.
func (s *slots) blocked(rb *Runbook, key string, now time.Time) string {
	if n := s.byKey[key]; n >= rb.Limits.MaxConcurrent {
		return fmt.Sprintf("%s is already running for %s (at most %d at a time)", rb.ID, key, rb.Limits.MaxConcurrent)
	}
	if until, ok := s.coolUntil[cooldownKey(rb.ID, key)]; ok && now.Before(until) {
		return fmt.Sprintf("%s ran successfully for %s recently; it can run again in %s (cooldown)", rb.ID, key, formatDuration(until.Sub(now).Round(time.Second)))
	}
	return ""
}

func (s *slots) acquire(key string, dryRun bool) {
	s.running++
	if !dryRun {
		s.byKey[key]++
	}
}

// release frees the slots; a successful real run starts the cooldown.
func (s *slots) release(rb *Runbook, key string, dryRun, succeeded bool, now time.Time) {
	s.running--
	if dryRun {
		return
	}
	if s.byKey[key]--; s.byKey[key] <= 0 {
		delete(s.byKey, key)
	}
	if succeeded && rb.Limits.Cooldown > 0 {
		s.coolUntil[cooldownKey(rb.ID, key)] = now.Add(rb.Limits.Cooldown)
	}
}

func (s *slots) sweep(now time.Time) {
	for k, until := range s.coolUntil {
		if !now.Before(until) {
			delete(s.coolUntil, k)
		}
	}
}
