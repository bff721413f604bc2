package incident

import (
	"context"
	"time"
)

// This file is the on-call side of the domain: who is on call now and who
// is next, in neutral words. An on-call system (PagerDuty, Opsgenie...)
// answers through OnCallDirectory; its adapter maps its own notions
// (escalation policies, escalation rules, schedules) onto these.

// OnCallDirectory answers who is on call (the `oncall` command).
type OnCallDirectory interface {
	// OnCall returns who is on call now and next on the escalation paths
	// that query names: an escalation path or a rotation, by name (in
	// part, any letter case) or by the system's id. An empty query asks
	// for every escalation path the bot can see. A query that names
	// nothing, or more than one thing, is an ENOTFOUND or EINVALID Error
	// whose message says what matched; a rate limit or an outage of the
	// on-call system is an Error too, with a message fit to show.
	OnCall(ctx context.Context, query string) (*OnCall, error)
}

// OnCall is who is on call, path by path, as the on-call system answered
// at At.
type OnCall struct {
	System string    // how people name the on-call system ("PagerDuty")
	At     time.Time // when the on-call system was asked
	// Asked is what the query resolved to ("the schedule Payments
	// primary"); empty for every path.
	Asked string
	Paths []OnCallPath
	// Ahead is how far ahead the next shifts were looked for.
	Ahead time.Duration
	// Truncated: there were more on-call entries than the bot reads in one
	// answer; the paths shown may be incomplete.
	Truncated bool
}

// OnCallPath is an escalation path: who is notified, level by level.
type OnCallPath struct {
	ID, Name, URL string
	Levels        []OnCallLevel // by level, first level first
}

// OnCallLevel is one level of a path and the rotations on it.
type OnCallLevel struct {
	Level     int // 1 is notified first
	Rotations []OnCallRotation
}

// OnCallRotation is who holds one rotation on a level now, and whose turn
// is next. A person put on the level directly (not through a rotation) is
// a rotation without a Name, always on call, with no Next.
type OnCallRotation struct {
	ID, Name, URL string
	Now           []OnCallShift // usually one person; empty: nobody now
	Next          *OnCallShift  // the next shift within OnCall.Ahead; nil: none
}

// OnCallShift is one person's turn on call. A zero Start or End is open:
// the turn has no start or no end (a person always on call).
type OnCallShift struct {
	Person     OnCallPerson
	Start, End time.Time
}

// OnCallPerson is someone on call, as the on-call system knows them, with
// their chat user when one was found (by email).
type OnCallPerson struct {
	Name   string
	ChatID string // the chat user's id; empty: none found
}

// Mention shows the person: a chat mention when the chat user is known,
// else their name.
func (p OnCallPerson) Mention() string {
	if p.ChatID != "" {
		return "<@" + p.ChatID + ">"
	}
	return p.Name
}
