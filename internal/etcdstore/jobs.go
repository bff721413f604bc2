package etcdstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// The job queue lives under three prefixes, as in the bbolt store: job/
// (id → job), jobdue/ (due time + id, the run order) and jobkey/ (ordering
// key + NUL + id, the FIFO of each key). A job is runnable when it is due
// and it is the oldest job of its key.

func jobKeyPrefix(key string) string { return pfxJobKey + key + "\x00" }

func (t *tx) Enqueue(job *incident.Job) error {
	if err := t.check(); err != nil {
		return err
	}
	if job.Kind == "" {
		return fmt.Errorf("enqueueing a job without a kind")
	}
	if strings.IndexByte(job.Key, 0) >= 0 {
		return fmt.Errorf("job key contains a NUL byte")
	}
	if job.Coalesce && job.Key != "" {
		dup, err := t.waitingDuplicate(job)
		if err != nil || dup {
			return err
		}
	}
	id, err := t.next(keySeqJob)
	if err != nil {
		return err
	}
	job.ID = id
	t.enqueued = true
	return t.putJob(job, nil)
}

// keyJobs lists the ids of key's jobs, oldest first.
func (t *tx) keyJobs(key string) ([]uint64, error) {
	pfx := jobKeyPrefix(key)
	entries, err := t.scan(pfx, prefixEnd(pfx), true)
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, 0, len(entries))
	for _, e := range entries {
		id, err := parseHex(e.key[len(pfx):])
		if err != nil {
			return nil, fmt.Errorf("damaged job key entry %q", e.key)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// waitingDuplicate reports whether the newest job of job.Key is identical to
// job and is not the oldest of its key (so it has not started).
func (t *tx) waitingDuplicate(job *incident.Job) (bool, error) {
	ids, err := t.keyJobs(job.Key)
	if err != nil || len(ids) < 2 {
		return false, err
	}
	prev, err := t.job(ids[len(ids)-1])
	if err != nil {
		return false, err
	}
	return prev.Kind == job.Kind && bytes.Equal(prev.Payload, job.Payload), nil
}

func (t *tx) job(id uint64) (*incident.Job, error) {
	raw, ok, err := t.getValue(pfxJob + hex64(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("job %d does not exist", id)
	}
	var j incident.Job
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("decoding job %d: %w", id, err)
	}
	return &j, nil
}

// putJob writes job and its indexes; old is the previous version, if any.
func (t *tx) putJob(job *incident.Job, old *incident.Job) error {
	raw, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encoding job: %w", err)
	}
	id := hex64(job.ID)
	if err := t.putLarge(pfxJob+id, raw, old != nil); err != nil {
		return err
	}
	if old != nil && !old.Due.Equal(job.Due) {
		t.del(pfxJobDue + timeHex(old.Due) + id)
	}
	t.put(pfxJobDue+timeHex(job.Due)+id, nil)
	if job.Key != "" {
		t.put(jobKeyPrefix(job.Key)+id, nil)
	}
	return nil
}

func (t *tx) deleteJob(job *incident.Job) error {
	id := hex64(job.ID)
	t.del(pfxJobDue + timeHex(job.Due) + id)
	if job.Key != "" {
		t.del(jobKeyPrefix(job.Key) + id)
	}
	return t.delLarge(pfxJob + id)
}

// CancelJob removes a pending job (a timer that was replaced); a job that
// is gone already is not an error.
func (t *tx) CancelJob(id uint64) error {
	if err := t.check(); err != nil {
		return err
	}
	job, err := t.jobIfAny(id)
	if job != nil {
		return t.deleteJob(job)
	}
	return err
}

// jobIfAny is job with a job that is gone (completed, cancelled) as nil.
func (t *tx) jobIfAny(id uint64) (*incident.Job, error) {
	job, err := t.job(id)
	if incident.ErrorCode(err) == incident.ENOTFOUND {
		return nil, nil
	}
	return job, err
}

func (t *tx) PendingJobs() (int, error) {
	return t.count(pfxJob)
}

func (t *tx) count(pfx string) (int, error) {
	entries, err := t.scan(pfx, prefixEnd(pfx), true)
	return len(entries), err
}

// dueEntries lists the jobdue/ entries due at now: their ids and due times.
func (t *tx) dueEntries(now time.Time, limit int) ([]uint64, []time.Time, error) {
	entries, err := t.scan(pfxJobDue, pfxJobDue+timeHex(now)+"\xff", true)
	if err != nil {
		return nil, nil, err
	}
	var ids []uint64
	var dues []time.Time
	for _, e := range entries {
		k := e.key[len(pfxJobDue):]
		if len(k) != 32 {
			return nil, nil, fmt.Errorf("damaged job due entry %q", e.key)
		}
		due, err1 := parseHex(k[:16])
		id, err2 := parseHex(k[16:])
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("damaged job due entry %q", e.key)
		}
		ids = append(ids, id)
		dues = append(dues, time.Unix(0, int64(due)))
		if limit > 0 && len(ids) == limit {
			break
		}
	}
	return ids, dues, nil
}

// DueJobs returns up to limit jobs that are due at now and runnable: each is
// the oldest job of its key, at most one per key, and not rejected by skip
// (the runner skips jobs and keys it is already running).
func (s *Store) DueJobs(now time.Time, limit int, skip func(incident.Job) bool) ([]incident.Job, error) {
	return s.Fenced(nil).DueJobs(now, limit, skip)
}

// dueJobs reads the pending jobs and the per-key order in two range reads
// (not one read per due job: under a backlog that made every scan of the
// leader's runner hundreds of round trips) and returns up to limit due
// jobs that head their key and that skip lets through.
func (s *Store) dueJobs(ctx context.Context, now time.Time, limit int, skip func(incident.Job) bool) ([]incident.Job, error) {
	var out []incident.Job
	err := s.View(ctx, func(itx incident.Tx) error {
		t := itx.(*tx)
		ids, _, err := t.dueEntries(now, 0)
		if err != nil || len(ids) == 0 {
			return err
		}
		records, err := t.scan(pfxJob, prefixEnd(pfxJob), false)
		if err != nil {
			return err
		}
		raw := make(map[uint64][]byte, len(records))
		for _, e := range records {
			id, err := parseHex(e.key[len(pfxJob):])
			if err != nil {
				return fmt.Errorf("damaged job record %q", e.key)
			}
			raw[id] = e.value
		}
		entries, err := t.scan(pfxJobKey, prefixEnd(pfxJobKey), true)
		if err != nil {
			return err
		}
		head := map[string]uint64{} // key -> its oldest job
		for _, e := range entries {
			key, hexID, ok := strings.Cut(e.key[len(pfxJobKey):], "\x00")
			if !ok {
				return fmt.Errorf("damaged job key entry %q", e.key)
			}
			id, err := parseHex(hexID)
			if err != nil {
				return fmt.Errorf("damaged job key entry %q", e.key)
			}
			if _, seen := head[key]; !seen {
				head[key] = id
			}
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if len(out) >= limit {
				break
			}
			b, ok := raw[id]
			if !ok {
				return notFound("job %d does not exist", id)
			}
			var job incident.Job
			if _, blob, _ := parseBlobRef(b); blob {
				// A large payload, stored in chunks: read it whole.
				j, err := t.job(id)
				if err != nil {
					return err
				}
				job = *j
			} else if err := json.Unmarshal(b, &job); err != nil {
				return fmt.Errorf("decoding job %d: %w", id, err)
			}
			if job.Key != "" && (seen[job.Key] || head[job.Key] != job.ID) {
				continue
			}
			if skip != nil && skip(job) {
				continue
			}
			if job.Key != "" {
				seen[job.Key] = true
			}
			out = append(out, job)
		}
		return nil
	})
	return out, err
}

// opCtx bounds a queue operation, which takes no context of its own.
func (s *Store) opCtx() (context.Context, context.CancelFunc) {
	return s.opCtxIn(context.Background())
}

func (s *Store) opCtxIn(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 3*s.opts.DialTimeout)
}

// NextDue returns the earliest due time of any job, and false if there is
// none.
func (s *Store) NextDue() (time.Time, bool, error) { return s.Fenced(nil).NextDue() }

func (s *Store) nextDue(ctx context.Context) (time.Time, bool, error) {
	var (
		due time.Time
		ok  bool
	)
	err := s.View(ctx, func(itx incident.Tx) error {
		_, dues, err := itx.(*tx).dueEntries(time.Unix(0, 1<<62), 1)
		if len(dues) > 0 {
			due, ok = dues[0], true
		}
		return err
	})
	return due, ok, err
}

// CompleteJob removes a finished job. Completing a job that is gone is not
// an error (it ran twice after a crash, was completed already, or was
// cancelled while it ran).
func (s *Store) CompleteJob(id uint64) error { return s.Fenced(nil).CompleteJob(id) }

// RetryJob records a failed attempt and reschedules the job at due. It keeps
// its place in its key's order.
func (s *Store) RetryJob(id uint64, due time.Time, lastErr string) error {
	return s.Fenced(nil).RetryJob(id, due, lastErr)
}

// FailJob moves a job that failed for good to the dead letters; its key's
// later jobs can then run. at is when it failed.
func (s *Store) FailJob(id uint64, lastErr string, at time.Time) error {
	return s.Fenced(nil).FailJob(id, lastErr, at)
}

// Jobs is the queue's side of the store with every write fenced (see
// Store.Fenced).
type Jobs struct {
	s     *Store
	fence *Fence
	ctx   context.Context // ends every operation early when it ends
}

// Fenced returns the queue's writes conditioned on fence: once fence no
// longer holds (this replica lost its leadership), they fail with
// ErrDeposed and change nothing. A nil fence writes unconditionally.
func (s *Store) Fenced(fence *Fence) *Jobs { return s.FencedIn(context.Background(), fence) }

// FencedIn is Fenced with every operation, reads included, also ending
// when ctx does: a leader that lost its term (etcd unreachable) stops
// waiting on etcd at once instead of after the operation's timeout.
func (s *Store) FencedIn(ctx context.Context, fence *Fence) *Jobs {
	return &Jobs{s: s, fence: fence, ctx: ctx}
}

func (j *Jobs) update(fn func(*tx) error) error {
	ctx, cancel := j.s.opCtxIn(j.ctx)
	defer cancel()
	return j.s.update(ctx, j.fence, func(itx incident.Tx) error { return fn(itx.(*tx)) })
}

// DueJobs is Store.DueJobs.
func (j *Jobs) DueJobs(now time.Time, limit int, skip func(incident.Job) bool) ([]incident.Job, error) {
	ctx, cancel := j.s.opCtxIn(j.ctx)
	defer cancel()
	return j.s.dueJobs(ctx, now, limit, skip)
}

// NextDue is Store.NextDue.
func (j *Jobs) NextDue() (time.Time, bool, error) {
	ctx, cancel := j.s.opCtxIn(j.ctx)
	defer cancel()
	return j.s.nextDue(ctx)
}

// CompleteJob is Store.CompleteJob, fenced.
func (j *Jobs) CompleteJob(id uint64) error {
	return j.update(func(t *tx) error { return t.CancelJob(id) })
}

// RetryJob is Store.RetryJob, fenced.
func (j *Jobs) RetryJob(id uint64, due time.Time, lastErr string) error {
	return j.update(func(t *tx) error {
		old, err := t.jobIfAny(id)
		if old == nil {
			return err
		}
		job := *old
		job.Attempts++
		job.LastError = lastErr
		job.Due = due
		return t.putJob(&job, old)
	})
}

// FailJob is Store.FailJob, fenced.
func (j *Jobs) FailJob(id uint64, lastErr string, at time.Time) error {
	return j.update(func(t *tx) error {
		job, err := t.jobIfAny(id)
		if job == nil {
			return err
		}
		if err := t.deleteJob(job); err != nil {
			return err
		}
		job.Attempts++
		job.LastError = lastErr
		raw, err := json.Marshal(job)
		if err != nil {
			return err
		}
		return t.putLarge(pfxDead+hex64(job.ID), append([]byte(timeHex(at)), raw...), false)
	})
}

// PruneDeadJobs deletes dead letters that failed before cutoff, at most
// limit per call, and returns how many it deleted.
func (j *Jobs) PruneDeadJobs(cutoff, _ time.Time, limit int) (int, error) {
	deleted := 0
	err := j.update(func(t *tx) error {
		deleted = 0
		entries, err := t.scan(pfxDead, prefixEnd(pfxDead), false)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if deleted == limit {
				break
			}
			v, err := t.value(e.value)
			if err != nil {
				return err
			}
			if failed, _, err := deadLetter(v); err == nil && failed.Before(cutoff) {
				if err := t.delBlob(e.value); err != nil {
					return err
				}
				t.del(e.key)
				deleted++
			}
		}
		return nil
	})
	return deleted, err
}

// PruneDocs deletes documents of kind (every version) whose time, as at
// reads it from the body, is before cutoff, at most limit per call, walking
// names in order and stopping at the first that is not old enough (see
// boltstore's PruneDocs).
func (j *Jobs) PruneDocs(kind string, cutoff time.Time, limit int, at func(body []byte) (time.Time, bool)) (int, error) {
	deleted := 0
	err := j.update(func(t *tx) error {
		deleted = 0
		pfx := pfxDoc + kind + "\x00"
		entries, err := t.scan(pfx, prefixEnd(pfx), false)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if deleted == limit {
				break
			}
			body, err := t.value(e.value)
			if err != nil {
				return err
			}
			when, ok := at(body)
			if !ok {
				continue
			}
			if !when.Before(cutoff) {
				break
			}
			if err := t.delBlob(e.value); err != nil {
				return err
			}
			t.del(e.key)
			// The version counter goes with the versions, as in bbolt,
			// where the latest version is found among the versions.
			name := e.key[len(pfx):]
			if i := strings.IndexByte(name, 0); i >= 0 {
				t.del(pfxDocLatest + kind + "\x00" + name[:i])
			}
			deleted++
		}
		return nil
	})
	return deleted, err
}

// PruneDeadJobs is Jobs.PruneDeadJobs, unfenced.
func (s *Store) PruneDeadJobs(cutoff, now time.Time, limit int) (int, error) {
	return s.Fenced(nil).PruneDeadJobs(cutoff, now, limit)
}

// PruneDocs is Jobs.PruneDocs, unfenced.
func (s *Store) PruneDocs(kind string, cutoff time.Time, limit int, at func(body []byte) (time.Time, bool)) (int, error) {
	return s.Fenced(nil).PruneDocs(kind, cutoff, limit, at)
}

// PruneKeys deletes nothing: redelivery keys carry a lease and etcd deletes
// them when it expires.
func (s *Store) PruneKeys([]string, time.Time, int) (int, error) { return 0, nil }

func deadLetter(v []byte) (time.Time, []byte, error) {
	if len(v) < 16 {
		return time.Time{}, nil, fmt.Errorf("damaged dead letter")
	}
	n, err := parseHex(string(v[:16]))
	return time.Unix(0, int64(n)), v[16:], err
}

// DueCount counts the jobs due at now (runnable or waiting behind their
// key); timers set for later are not counted.
func (s *Store) DueCount(now time.Time) (int, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	n := 0
	err := s.View(ctx, func(itx incident.Tx) error {
		ids, _, err := itx.(*tx).dueEntries(now, 0)
		n = len(ids)
		return err
	})
	return n, err
}

// JobStats returns the number of pending jobs, the due time of the oldest
// and the number of dead letters.
func (s *Store) JobStats() (pending int, oldestDue time.Time, dead int, err error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	err = s.View(ctx, func(itx incident.Tx) error {
		t := itx.(*tx)
		var err error
		if pending, err = t.count(pfxJob); err != nil {
			return err
		}
		if dead, err = t.count(pfxDead); err != nil {
			return err
		}
		_, dues, err := t.dueEntries(time.Unix(0, 1<<62), 1)
		if len(dues) > 0 {
			oldestDue = dues[0]
		}
		return err
	})
	return pending, oldestDue, dead, err
}

// DeadJobs lists the jobs that failed for good, oldest first.
func (s *Store) DeadJobs() ([]incident.Job, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var out []incident.Job
	err := s.View(ctx, func(itx incident.Tx) error {
		t := itx.(*tx)
		entries, err := t.scan(pfxDead, prefixEnd(pfxDead), false)
		if err != nil {
			return err
		}
		for _, e := range entries {
			v, err := t.value(e.value)
			if err != nil {
				return err
			}
			_, raw, err := deadLetter(v)
			if err != nil {
				return err
			}
			var j incident.Job
			if err := json.Unmarshal(raw, &j); err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	return out, err
}
