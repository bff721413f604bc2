package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxTitleLength caps incident titles, in characters.
const MaxTitleLength = 200

// MaxTextLength caps notes, updates and other free text, in characters.
const MaxTextLength = 3000

// Service holds the incident use cases. Every method is safe for concurrent
// use; every change is one store transaction that also records the timeline
// events and enqueues the outbound work (chat sync, pager calls, timers), so
// a crash never leaves a change without its consequences.
type Service struct {
	store Store
	clock Clock
	hooks []ChangeHook
}

// ChangeHook is called inside the transaction of every change, after the
// incident and its new events are stored, so that features can enqueue their
// own jobs (pager sync, escalation timers) atomically with the change. It
// must only use tx.
type ChangeHook func(tx Tx, inc *Incident, events []Event) error

// ServiceConfig configures a Service.
type ServiceConfig struct {
	Store Store
	Clock Clock // default SystemClock
	// Hooks run inside every change's transaction, in order.
	Hooks []ChangeHook
}

// NewService returns the incident use cases over cfg.Store.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock
	}
	return &Service{store: cfg.Store, clock: cfg.Clock, hooks: cfg.Hooks}
}

// AddHook appends a change hook. Call it while wiring, before use.
func (s *Service) AddHook(h ChangeHook) { s.hooks = append(s.hooks, h) }

// Store returns the service's store, for adapters that read or run jobs.
func (s *Service) Store() Store { return s.store }

// Clock returns the service's clock.
func (s *Service) Clock() Clock { return s.clock }

// Ref names an incident: by number when Number is set, otherwise as the
// incident whose chat channel is ChannelID.
type Ref struct {
	Number    int64
	ChannelID string
}

// String renders the reference for messages and logs.
func (r Ref) String() string {
	if r.Number != 0 {
		return FormatID(r.Number)
	}
	return "channel " + r.ChannelID
}

func (s *Service) lookup(tx Tx, ref Ref) (*Incident, error) {
	if ref.Number != 0 {
		return tx.Incident(ref.Number)
	}
	if ref.ChannelID == "" {
		return nil, Errorf(EINVALID, "Name the incident, e.g. `INC-7`.")
	}
	inc, err := tx.IncidentByChannel(ref.ChannelID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(EINVALID, "This channel is not an incident channel. Name the incident, e.g. `resolve INC-7`, or run the command in the incident's channel.")
	}
	return inc, err
}

// write runs fn in a read-write transaction, sharing the commit with
// concurrent writers when the store can (see Batcher): under a webhook storm
// a slash command's change then waits for one shared fsync, not a queue of
// them. Every fn given to write resets its results at the start.
func (s *Service) write(ctx context.Context, fn func(Tx) error) error {
	return writeShared(ctx, s.store, fn)
}

// writeShared runs fn through the store's Batch when it has one (fn may
// then run more than once), else through Update.
func writeShared(ctx context.Context, store Store, fn func(Tx) error) error {
	if b, ok := store.(Batcher); ok {
		return b.Batch(ctx, fn)
	}
	return store.Update(ctx, fn)
}

// Get returns the incident ref names.
func (s *Service) Get(ctx context.Context, ref Ref) (*Incident, error) {
	var inc *Incident
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		inc, err = s.lookup(tx, ref)
		return err
	})
	return inc, err
}

// List returns the incidents matching f.
func (s *Service) List(ctx context.Context, f Filter) ([]*Incident, error) {
	var out []*Incident
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.Incidents(f)
		return err
	})
	return out, err
}

// Timeline returns the incident and its events in time order.
func (s *Service) Timeline(ctx context.Context, ref Ref) (*Incident, []Event, error) {
	var (
		inc    *Incident
		events []Event
	)
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		if inc, err = s.lookup(tx, ref); err != nil {
			return err
		}
		events, err = tx.Timeline(inc.Number)
		return err
	})
	return inc, events, err
}

// Declaration is what Declare needs to open an incident.
type Declaration struct {
	Title       string
	Description string
	Severity    Severity // zero: DefaultSeverity
	By          Actor
	// Triggered opens the incident unacknowledged, as a pager does. A person
	// declaring in chat opens it acknowledged by themselves.
	Triggered  bool
	DetectedAt time.Time // zero: now
	Services   []string
	Pager      PagerRef
	// Key makes the declaration idempotent: a second Declare with the same
	// key returns the incident the first one opened.
	Key string
	// Commander defaults to the declaring chat user.
	Commander string
	// Events are more timeline entries recorded in the declaration's
	// transaction, after it: the chat message the incident was declared
	// from, say, so its link is kept with the incident from the start.
	// Each needs a Kind; Incident, Seq and Recorded are filled in.
	Events []Event
}

// Declare opens an incident, records it on its timeline and schedules the
// chat sync that creates its channel. With d.Key set it is idempotent.
func (s *Service) Declare(ctx context.Context, d Declaration) (*Incident, error) {
	// Titles are one line wherever they are shown; every adapter already
	// passed the text through CleanText.
	title := CleanLine(d.Title)
	switch {
	case title == "":
		return nil, Errorf(EINVALID, "An incident needs a title: `declare [sev1-4] <title>`.")
	case len([]rune(title)) > MaxTitleLength:
		return nil, Errorf(EINVALID, "The title is too long (%d characters; at most %d).", len([]rune(title)), MaxTitleLength)
	case len([]rune(d.Description)) > MaxTextLength:
		return nil, Errorf(EINVALID, "The description is too long (at most %d characters).", MaxTextLength)
	}
	sev := d.Severity
	if sev == 0 {
		sev = DefaultSeverity
	}
	if !sev.Valid() {
		return nil, Errorf(EINVALID, "Severity must be sev1 (worst) to sev4.")
	}
	for _, ev := range d.Events {
		if ev.Kind == "" {
			return nil, Errorf(EINVALID, "event kind missing")
		}
	}
	var out *Incident
	err := s.write(ctx, func(tx Tx) error {
		out = nil
		if d.Key != "" {
			if prev, ok, err := tx.Key(declareKey(d.Key)); err != nil {
				return err
			} else if ok {
				n, _ := strconv.ParseInt(string(prev), 10, 64)
				inc, err := tx.Incident(n)
				out = inc
				return err
			}
		}
		if d.Pager.IncidentID != "" {
			inc, err := tx.IncidentByPager(Source(d.Pager.System), d.Pager.IncidentID)
			if err == nil {
				out = inc
				return nil
			} else if ErrorCode(err) != ENOTFOUND {
				return err
			}
		}
		now := s.clock.Now()
		n, err := tx.NextIncidentNumber()
		if err != nil {
			return err
		}
		inc := &Incident{
			Number:      n,
			Title:       title,
			Description: strings.TrimSpace(d.Description),
			Severity:    sev,
			Status:      StatusAcknowledged,
			Source:      d.By.Source,
			DeclaredBy:  d.By,
			Services:    d.Services,
			DetectedAt:  d.DetectedAt,
			DeclaredAt:  now,
			Pager:       d.Pager,
			Roles:       map[Role]string{},
		}
		if inc.DetectedAt.IsZero() || inc.DetectedAt.After(now) {
			inc.DetectedAt = now
		}
		if d.Triggered {
			inc.Status = StatusTriggered
		} else {
			inc.AcknowledgedAt = now
			inc.AcknowledgedBy = d.By
		}
		commander := d.Commander
		if commander == "" && d.By.ChatUser() {
			commander = d.By.ID
		}
		if commander != "" {
			inc.Roles[RoleCommander] = commander
		}
		ev := inc.newEvent(EventDeclared, d.By, now, title, map[string]string{
			"severity": sev.String(), "status": string(inc.Status),
		})
		if d.Key != "" {
			if err := tx.PutKey(declareKey(d.Key), []byte(strconv.FormatInt(n, 10)), now); err != nil {
				return err
			}
		}
		if err := s.commit(tx, inc, append([]Event{ev}, d.Events...), now); err != nil {
			return err
		}
		out = inc
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("declaring incident: %w", err)
	}
	return out, nil
}

func declareKey(k string) string { return "declare:" + k }

// Change applies fn to the incident ref names in one transaction: fn changes
// the incident and returns the events that record the change. It is the
// building block of the use cases below, exported for adapters with
// changes of their own (linking a pager incident, say). fn may run more
// than once (see Batcher): it must only change the incident it is given.
func (s *Service) Change(ctx context.Context, ref Ref, fn func(inc *Incident, now time.Time) ([]Event, error)) (*Incident, error) {
	var out *Incident
	err := s.write(ctx, func(tx Tx) error {
		out = nil
		inc, err := s.lookup(tx, ref)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		events, err := fn(inc, now)
		if err != nil {
			return err
		}
		if err := s.commit(tx, inc, events, now); err != nil {
			return err
		}
		out = inc
		return nil
	})
	return out, err
}

// commit stores inc and the events that changed it, and enqueues what follows
// from the change. Events whose idempotency key was already recorded are
// dropped; if all of them are, the incident itself is still stored.
func (s *Service) commit(tx Tx, inc *Incident, events []Event, now time.Time) error {
	inc.UpdatedAt = now
	inc.Revision++
	if err := tx.PutIncident(inc); err != nil {
		return err
	}
	recorded := make([]Event, 0, len(events))
	for i := range events {
		ev := events[i]
		ev.Incident = inc.Number
		ev.Recorded = now
		if ev.At.IsZero() {
			ev.At = now
		}
		ok, err := tx.AppendEvent(&ev)
		if err != nil {
			return err
		}
		if ok {
			recorded = append(recorded, ev)
		}
	}
	if err := EnqueueChatSync(tx, inc.Number, now); err != nil {
		return err
	}
	for _, h := range s.hooks {
		if err := h(tx, inc, recorded); err != nil {
			return err
		}
	}
	return nil
}

// EnqueueChatSync schedules a chat sync for incident n, coalescing with a
// sync that is already waiting.
func EnqueueChatSync(tx Tx, n int64, now time.Time) error {
	payload, _ := json.Marshal(chatSyncPayload{Incident: n})
	return tx.Enqueue(&Job{Kind: JobChatSync, Key: ChatJobKey(n), Due: now, Payload: payload, Coalesce: true})
}

// ChatJobKey is the ordering key of an incident's chat work.
func ChatJobKey(n int64) string { return "chat:" + FormatID(n) }

func (s *Service) move(ctx context.Context, ref Ref, by Actor, move func(inc *Incident, now time.Time) (Event, error)) (*Incident, error) {
	return s.Change(ctx, ref, func(inc *Incident, now time.Time) ([]Event, error) {
		ev, err := move(inc, now)
		if err != nil {
			return nil, err
		}
		if by.ChatUser() {
			inc.addMember(by.ID)
		}
		return []Event{ev}, nil
	})
}

func checkText(text string) error {
	if n := len([]rune(text)); n > MaxTextLength {
		return Errorf(EINVALID, "That text is too long (%d characters; at most %d).", n, MaxTextLength)
	}
	return nil
}

// Acknowledge acknowledges the incident.
func (s *Service) Acknowledge(ctx context.Context, ref Ref, by Actor) (*Incident, error) {
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.Acknowledge(by, now)
	})
}

// Mitigate marks the incident mitigated.
func (s *Service) Mitigate(ctx context.Context, ref Ref, by Actor, text string) (*Incident, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.Mitigate(by, now, text)
	})
}

// Resolve resolves the incident.
func (s *Service) Resolve(ctx context.Context, ref Ref, by Actor, text string) (*Incident, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.Resolve(by, now, text)
	})
}

// Reopen reopens a resolved incident.
func (s *Service) Reopen(ctx context.Context, ref Ref, by Actor, reason string) (*Incident, error) {
	if err := checkText(reason); err != nil {
		return nil, err
	}
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.Reopen(by, now, reason)
	})
}

// SetSeverity changes the severity.
func (s *Service) SetSeverity(ctx context.Context, ref Ref, sev Severity, by Actor) (*Incident, error) {
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.SetSeverity(sev, by, now, "")
	})
}

// AssignRole gives role to user.
func (s *Service) AssignRole(ctx context.Context, ref Ref, role Role, user string, by Actor) (*Incident, error) {
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.AssignRole(role, user, by, now)
	})
}

// AddNote adds a note to the timeline.
func (s *Service) AddNote(ctx context.Context, ref Ref, text string, by Actor) (*Incident, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, Errorf(EINVALID, "Write the note: `note <text>`.")
	}
	if err := checkText(text); err != nil {
		return nil, err
	}
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.newEvent(EventNote, by, now, text, nil), nil
	})
}

// PostStatusUpdate records a status update for stakeholders.
func (s *Service) PostStatusUpdate(ctx context.Context, ref Ref, text string, by Actor) (*Incident, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.StatusUpdate(text, by, now)
	})
}

// AddFollowup records a follow-up action item.
func (s *Service) AddFollowup(ctx context.Context, ref Ref, text string, by Actor) (*Incident, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.AddFollowup(text, by, now)
	})
}

// Record adds an outside event (a pinned message, a member joining, a
// runbook decision) to the incident's timeline. With ev.Key set it is
// idempotent: it reports false if that key was already recorded.
func (s *Service) Record(ctx context.Context, ref Ref, ev Event) (bool, error) {
	if ev.Kind == "" {
		return false, Errorf(EINVALID, "event kind missing")
	}
	recorded := false
	err := s.write(ctx, func(tx Tx) error {
		recorded = false
		inc, err := s.lookup(tx, ref)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		ev.Incident = inc.Number
		ev.Recorded = now
		if ev.At.IsZero() {
			ev.At = now
		}
		ok, err := tx.AppendEvent(&ev)
		if err != nil || !ok {
			return err
		}
		recorded = true
		if ev.Kind == EventMemberJoined && ev.Actor.ChatUser() {
			inc.addMember(ev.Actor.ID)
		}
		inc.UpdatedAt = now
		if err := tx.PutIncident(inc); err != nil {
			return err
		}
		if !ev.Quiet {
			if err := EnqueueChatSync(tx, inc.Number, now); err != nil {
				return err
			}
		}
		for _, h := range s.hooks {
			if err := h(tx, inc, []Event{ev}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("recording %s on %s: %w", ev.Kind, ref, err)
	}
	return recorded, nil
}
