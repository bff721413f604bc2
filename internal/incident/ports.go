package incident

import (
	"context"
	"slices"
	"time"
)

// Clock tells the time. Everything that stamps, schedules or times out takes
// one, so tests can move time instead of sleeping.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now returns f().
func (f ClockFunc) Now() time.Time { return f() }

// SystemClock is the real clock.
var SystemClock Clock = ClockFunc(time.Now)

// waitBudgetKey carries how long an outside call may wait for rate-limit
// capacity (see WithWaitBudget).
type waitBudgetKey struct{}

// WithWaitBudget tells adapters that calls made with ctx may wait at most d
// for rate-limit capacity; a longer wait should be returned as Deferred.
// The job runner sets it so that a job waiting for Slack's capacity gives
// its worker back instead of sleeping on it.
func WithWaitBudget(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, waitBudgetKey{}, d)
}

// WaitBudget returns the budget set by WithWaitBudget, if any.
func WaitBudget(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(waitBudgetKey{}).(time.Duration)
	return d, ok
}

// Store persists incidents, timelines, idempotency keys and jobs.
//
// Update runs fn in one read-write transaction that is durable (fsynced)
// when Update returns nil; if fn returns an error nothing it did is kept.
// View runs fn in a read-only snapshot. fn must not retain values from the
// transaction after it returns, and must not call View or Update itself.
type Store interface {
	View(ctx context.Context, fn func(Tx) error) error
	Update(ctx context.Context, fn func(Tx) error) error
}

// Batcher is implemented by stores that let concurrent writers share one
// commit (and its fsync). Its fn may run more than once (when another
// function in the shared commit fails, the others run again without it),
// so fn must change nothing but the store and must set every result it
// reports from scratch on each run.
type Batcher interface {
	Batch(ctx context.Context, fn func(Tx) error) error
}

// Filter selects incidents in Tx.Incidents.
type Filter struct {
	OpenOnly bool
	// DeclaredFrom and DeclaredTo bound the declaration time, [from, to);
	// a zero bound is open.
	DeclaredFrom, DeclaredTo time.Time
	// Limit caps the result (0: no cap). Results are in incident-number order;
	// with Newest set, the newest come first.
	Limit  int
	Newest bool
}

// Collect is the end of a store's Incidents: numbers are the candidates in
// incident-number order (narrowed by the store's indexes), load reads one.
// It applies Newest, keeps the incidents f matches and stops at Limit.
func (f Filter) Collect(numbers []int64, load func(int64) (*Incident, error)) ([]*Incident, error) {
	if f.Newest {
		slices.Reverse(numbers)
	}
	out := make([]*Incident, 0, len(numbers))
	for _, n := range numbers {
		inc, err := load(n)
		if err != nil {
			return nil, err
		}
		if f.OpenOnly && !inc.Status.Open() ||
			!f.DeclaredFrom.IsZero() && inc.DeclaredAt.Before(f.DeclaredFrom) ||
			!f.DeclaredTo.IsZero() && !inc.DeclaredAt.Before(f.DeclaredTo) {
			continue
		}
		out = append(out, inc)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// Tx is one store transaction. Methods of a read-only transaction that write
// return an error.
type Tx interface {
	// NextIncidentNumber allocates the next incident number. A number is
	// consumed only if the transaction commits, and incidents are never
	// deleted, so numbers are sequential and never reused.
	NextIncidentNumber() (int64, error)
	// Incident returns an incident by number, or an ENOTFOUND error.
	Incident(number int64) (*Incident, error)
	// IncidentByChannel returns the incident whose chat channel is id, or ENOTFOUND.
	IncidentByChannel(channelID string) (*Incident, error)
	// IncidentByPager returns the incident linked to incident
	// pagerIncidentID of the pager system (a Source: "pagerduty"), or
	// ENOTFOUND. Stores index links by PagerIndexKey.
	IncidentByPager(system Source, pagerIncidentID string) (*Incident, error)
	// PutIncident stores inc and keeps the look-up indexes in step.
	PutIncident(inc *Incident) error
	// Incidents lists incidents matching f.
	Incidents(f Filter) ([]*Incident, error)
	// ForEachIncident calls fn for every incident in number order until fn
	// returns an error.
	ForEachIncident(fn func(*Incident) error) error

	// AppendEvent adds ev to its incident's timeline, assigning ev.Seq. If
	// ev.Key is set and already recorded for that incident, nothing is stored
	// and it reports false.
	AppendEvent(ev *Event) (bool, error)
	// Timeline returns an incident's events in time order (recording order
	// among equal times).
	Timeline(number int64) ([]Event, error)
	// EventsAfter returns an incident's events with Seq > after, in Seq order.
	EventsAfter(number, after int64) ([]Event, error)

	// Key returns the value recorded for a global idempotency key (a webhook
	// id, a modal submission...) and whether it was recorded.
	Key(key string) ([]byte, bool, error)
	// PutKey records a global idempotency key with a value, stamped at.
	PutKey(key string, value []byte, at time.Time) error

	// Enqueue adds a job; see Job for ordering and coalescing.
	Enqueue(job *Job) error
	// CancelJob removes a pending job (a replaced timer); a job that is
	// gone already is not an error.
	CancelJob(id uint64) error
	// PendingJobs counts jobs waiting to run.
	PendingJobs() (int, error)

	// PutDoc stores a versioned document (postmortem drafts, digests, runbook
	// runs) under kind/name. PutDoc with version 0 appends a new version and
	// returns its number.
	PutDoc(kind, name string, body []byte) (int, error)
	// Doc returns version v of kind/name (0: latest) and the number of the
	// version returned; ENOTFOUND if there is none.
	Doc(kind, name string, v int) ([]byte, int, error)

	RunbookRequestTx
}

// Job is a unit of durable background work: an outbound call, a timer, the
// processing of a stored webhook. Jobs survive restarts; a job whose Due time
// passed while the bot was down runs once when it comes back.
//
// Jobs with the same non-empty Key run one at a time, in the order they were
// enqueued, so outbound work for one channel or one PagerDuty incident is
// never reordered. A job that fails with a retryable error is retried with
// backoff and keeps blocking later jobs of its key; one that fails for good is
// moved aside (and logged) so it cannot block its key forever.
type Job struct {
	ID        uint64    `json:"id"`
	Kind      string    `json:"kind"`
	Key       string    `json:"key,omitempty"`
	Due       time.Time `json:"due"`
	Payload   []byte    `json:"payload,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Created   time.Time `json:"created"`

	// Coalesce lets Enqueue drop this job when an identical job (same Kind,
	// Key and Payload) is already waiting behind another job of the same Key:
	// that waiting job cannot have started yet, so it will see everything
	// committed before it runs. Use it for jobs that converge on current
	// state (chat sync), never for jobs that carry an event.
	Coalesce bool `json:"-"`
}

// Job kinds run by the bot. Handlers are registered by the app.
const (
	JobChatSync = "chat.sync" // converge the chat platform on an incident's state
)

// Directory looks up people's display names for reports (postmortems,
// digests) so they show names rather than raw mentions. Names returns the
// names it knows for ids; an id it cannot look up is left out, and the
// report falls back to the mention. Implementations cache: a report asks
// for the same people again and again.
type Directory interface {
	Names(ctx context.Context, ids []string) map[string]string
}

// Names maps chat user ids to display names. It is a Directory that
// knows only these.
type Names map[string]string

// Names implements Directory.
func (n Names) Names(_ context.Context, ids []string) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		if name, ok := n[id]; ok {
			out[id] = name
		}
	}
	return out
}

// Name is id's display name, or its mention <@id> when unknown (a
// mention still resolves when the text is pasted into chat).
func (n Names) Name(id string) string {
	if name := n[id]; name != "" {
		return name
	}
	return "<@" + id + ">"
}
