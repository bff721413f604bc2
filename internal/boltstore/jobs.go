package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// The job queue lives in three buckets: jobs (id → job), jobs_due (due time
// + id, the run order) and jobs_key (ordering key + 0 + id, the FIFO of each
// key). A job is runnable when it is due and it is the oldest job of its key.

func jobKeyPrefix(key string) []byte { return append([]byte(key), 0) }

func (t *tx) Enqueue(job *incident.Job) error {
	if err := t.writable(); err != nil {
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
	id, err := t.b(bucketJobs).NextSequence()
	if err != nil {
		return err
	}
	job.ID = id
	t.enqueued = true
	return t.putJob(job, nil)
}

// waitingDuplicate reports whether the newest job of job.Key is identical to
// job and is not the oldest of its key (so it has not started).
func (t *tx) waitingDuplicate(job *incident.Job) (bool, error) {
	prefix := jobKeyPrefix(job.Key)
	c := t.b(bucketJobsByKey).Cursor()
	first, _ := c.Seek(prefix)
	if first == nil || !bytes.HasPrefix(first, prefix) {
		return false, nil
	}
	last := first
	for k, _ := c.Next(); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		last = k
	}
	if bytes.Equal(first, last) {
		return false, nil
	}
	prev, err := t.job(binary.BigEndian.Uint64(last[len(prefix):]))
	if err != nil {
		return false, err
	}
	return prev.Kind == job.Kind && bytes.Equal(prev.Payload, job.Payload), nil
}

func (t *tx) job(id uint64) (*incident.Job, error) {
	raw := t.b(bucketJobs).Get(u64(id))
	if raw == nil {
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
	id := u64(job.ID)
	if err := t.b(bucketJobs).Put(id, raw); err != nil {
		return err
	}
	if old != nil {
		if err := t.b(bucketJobsDue).Delete(concat(timeKey(old.Due), id)); err != nil {
			return err
		}
	}
	if err := t.b(bucketJobsDue).Put(concat(timeKey(job.Due), id), nil); err != nil {
		return err
	}
	if job.Key != "" {
		return t.b(bucketJobsByKey).Put(concat(jobKeyPrefix(job.Key), id), nil)
	}
	return nil
}

func (t *tx) deleteJob(job *incident.Job) error {
	id := u64(job.ID)
	if err := t.b(bucketJobs).Delete(id); err != nil {
		return err
	}
	if err := t.b(bucketJobsDue).Delete(concat(timeKey(job.Due), id)); err != nil {
		return err
	}
	if job.Key != "" {
		return t.b(bucketJobsByKey).Delete(concat(jobKeyPrefix(job.Key), id))
	}
	return nil
}

// CancelJob removes a pending job (a timer that was replaced); a job that
// is gone already is not an error.
func (t *tx) CancelJob(id uint64) error {
	if err := t.writable(); err != nil {
		return err
	}
	job, err := t.job(id)
	if incident.ErrorCode(err) == incident.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	return t.deleteJob(job)
}

func (t *tx) PendingJobs() (int, error) {
	return t.b(bucketJobs).Stats().KeyN, nil
}

// headOfKey reports whether job is the oldest job of its key.
func (t *tx) headOfKey(job *incident.Job) bool {
	if job.Key == "" {
		return true
	}
	prefix := jobKeyPrefix(job.Key)
	k, _ := t.b(bucketJobsByKey).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix) && binary.BigEndian.Uint64(k[len(prefix):]) == job.ID
}

// DueJobs returns up to limit jobs that are due at now and runnable: each is
// the oldest job of its key, at most one per key, and not rejected by skip
// (the runner skips jobs and keys it is already running).
func (s *Store) DueJobs(now time.Time, limit int, skip func(incident.Job) bool) ([]incident.Job, error) {
	var out []incident.Job
	err := s.db.View(func(btx *bolt.Tx) error {
		t := &tx{tx: btx}
		seen := map[string]bool{}
		end := timeKey(now)
		c := t.b(bucketJobsDue).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if bytes.Compare(k[:8], end) > 0 {
				break
			}
			job, err := t.job(binary.BigEndian.Uint64(k[8:]))
			if err != nil {
				return err
			}
			if job.Key != "" && (seen[job.Key] || !t.headOfKey(job)) {
				continue
			}
			if skip != nil && skip(*job) {
				continue
			}
			if job.Key != "" {
				seen[job.Key] = true
			}
			out = append(out, *job)
		}
		return nil
	})
	return out, err
}

// NextDue returns the earliest due time of any job, and false if there is
// none.
func (s *Store) NextDue() (time.Time, bool, error) {
	var (
		due time.Time
		ok  bool
	)
	err := s.db.View(func(btx *bolt.Tx) error {
		k, _ := btx.Bucket(bucketJobsDue).Cursor().First()
		if k != nil {
			due, ok = time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))), true
		}
		return nil
	})
	return due, ok, err
}

// CompleteJob removes a finished job. Completing a job that is gone is not
// an error (it ran twice after a crash, was completed already, or was
// cancelled while it ran). Concurrent completions share a commit.
func (s *Store) CompleteJob(id uint64) error {
	return s.group.do(func(btx *bolt.Tx) error { return (&tx{tx: btx}).CancelJob(id) })
}

// RetryJob records a failed attempt and reschedules the job at due. It keeps
// its place in its key's order.
func (s *Store) RetryJob(id uint64, due time.Time, lastErr string) error {
	return s.reschedule(id, due, func(j *incident.Job) {
		j.Attempts++
		j.LastError = lastErr
	})
}

// reschedule moves a job to a new due time, keeping its place in its key's
// order. A job that is gone (cancelled while it ran) is not an error.
func (s *Store) reschedule(id uint64, due time.Time, change func(*incident.Job)) error {
	return s.group.do(func(btx *bolt.Tx) error {
		t := &tx{tx: btx}
		old, err := t.job(id)
		if incident.ErrorCode(err) == incident.ENOTFOUND {
			return nil
		} else if err != nil {
			return err
		}
		job := *old
		change(&job)
		job.Due = due
		return t.putJob(&job, old)
	})
}

// FailJob moves a job that failed for good to the dead-letter bucket, where
// operators can inspect it until PruneDeadJobs removes it; its key's later
// jobs can then run. at is when it failed.
func (s *Store) FailJob(id uint64, lastErr string, at time.Time) error {
	return s.group.do(func(btx *bolt.Tx) error {
		t := &tx{tx: btx}
		job, err := t.job(id)
		if incident.ErrorCode(err) == incident.ENOTFOUND {
			return nil
		} else if err != nil {
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
		return t.b(bucketJobsDead).Put(u64(job.ID), concat(timeKey(at), raw))
	})
}

// A dead letter is the failure time (8 bytes, as timeKey) and the job's
// JSON. Files written before the time was recorded hold the JSON alone.
func deadLetter(v []byte) (failed time.Time, job []byte, stamped bool) {
	if len(v) > 8 && v[0] != '{' {
		return time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))), v[8:], true
	}
	return time.Time{}, v, false
}

// PruneDeadJobs deletes dead letters that failed before cutoff, at most
// limit per call (one short write transaction), and returns how many it
// deleted. Dead letters from before failure times were recorded are
// stamped with now instead, so they are kept one retention from the first
// prune.
func (s *Store) PruneDeadJobs(cutoff, now time.Time, limit int) (int, error) {
	deleted := 0
	err := s.update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketJobsDead)
		var doomed, stamp [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(doomed)+len(stamp) < limit; k, v = c.Next() {
			failed, _, stamped := deadLetter(v)
			switch {
			case !stamped:
				stamp = append(stamp, bytes.Clone(k))
			case failed.Before(cutoff):
				doomed = append(doomed, bytes.Clone(k))
			}
		}
		// Changing the bucket while iterating can skip keys: change it
		// afterwards.
		for _, k := range stamp {
			if err := b.Put(k, concat(timeKey(now), b.Get(k))); err != nil {
				return err
			}
		}
		deleted = len(doomed)
		return deleteKeys(b, doomed)
	})
	return deleted, err
}

// DueCount counts the jobs due at now (runnable or waiting behind their
// key); timers set for later are not counted.
func (s *Store) DueCount(now time.Time) (int, error) {
	n := 0
	err := s.db.View(func(btx *bolt.Tx) error {
		end := timeKey(now)
		c := btx.Bucket(bucketJobsDue).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// JobStats returns the number of pending jobs and the due time of the oldest.
func (s *Store) JobStats() (pending int, oldestDue time.Time, dead int, err error) {
	err = s.db.View(func(btx *bolt.Tx) error {
		pending = btx.Bucket(bucketJobs).Stats().KeyN
		dead = btx.Bucket(bucketJobsDead).Stats().KeyN
		if k, _ := btx.Bucket(bucketJobsDue).Cursor().First(); k != nil {
			oldestDue = time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))
		}
		return nil
	})
	return pending, oldestDue, dead, err
}

// DeadJobs lists the jobs that failed for good, oldest first.
func (s *Store) DeadJobs() ([]incident.Job, error) {
	var out []incident.Job
	err := s.db.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketJobsDead).ForEach(func(_, v []byte) error {
			var j incident.Job
			_, raw, _ := deadLetter(v)
			if err := json.Unmarshal(raw, &j); err != nil {
				return err
			}
			out = append(out, j)
			return nil
		})
	})
	return out, err
}
