package digest

import (
	"flag"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	incidenttest.Golden(t, name, got, *update)
}

var (
	alice   = incident.Actor{ID: "U01ALICE", Name: "Alice Ng", Source: incident.SourceSlack}
	bob     = incident.Actor{ID: "U02BOB", Name: "Bob Martin", Source: incident.SourceSlack}
	pdAlert = incident.Actor{ID: "PSVC001", Name: "Monitoring", Source: incident.SourcePagerDuty}
	pdBob   = incident.Actor{ID: "PUSER02", Name: "Bob Martin", Source: incident.SourcePagerDuty}
)

// utc parses "2026-11-17 09:58" as UTC.
func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// builder makes an incident and its timeline with the domain's own moves,
// as the incident service would record them.
type builder struct {
	t      testing.TB
	inc    *incident.Incident
	events []incident.Event
}

// paged opens an incident the way a PagerDuty trigger does: unacknowledged,
// detected when the alert fired.
func paged(t testing.TB, n int64, title string, sev incident.Severity, detected, declared time.Time, services ...string) *builder {
	b := open(t, n, title, sev, pdAlert, declared, services)
	b.inc.DetectedAt = detected
	b.inc.Status = incident.StatusTriggered
	b.events[0].Data["status"] = string(incident.StatusTriggered)
	return b
}

// declared opens an incident the way a person in chat does: acknowledged by
// the declaration.
func declared(t testing.TB, n int64, title string, sev incident.Severity, at time.Time, services ...string) *builder {
	b := open(t, n, title, sev, alice, at, services)
	b.inc.AcknowledgedAt, b.inc.AcknowledgedBy = at, alice
	return b
}

func open(t testing.TB, n int64, title string, sev incident.Severity, by incident.Actor, at time.Time, services []string) *builder {
	inc := &incident.Incident{
		Number: n, Title: title, Severity: sev, Status: incident.StatusAcknowledged, Source: by.Source,
		DeclaredBy: by, DetectedAt: at, DeclaredAt: at, Services: services, UpdatedAt: at,
	}
	b := &builder{t: t, inc: inc}
	b.add(incident.Event{Incident: n, At: at, Kind: incident.EventDeclared, Actor: by, Text: title,
		Data: map[string]string{"severity": sev.String(), "status": string(incident.StatusAcknowledged)}}, nil)
	return b
}

func (b *builder) add(ev incident.Event, err error) *builder {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	ev.Seq = int64(len(b.events) + 1)
	ev.Recorded = ev.At
	b.events = append(b.events, ev)
	if ev.At.After(b.inc.UpdatedAt) {
		b.inc.UpdatedAt = ev.At
	}
	return b
}

func (b *builder) ack(at time.Time) *builder      { return b.add(b.inc.Acknowledge(pdBob, at)) }
func (b *builder) mitigate(at time.Time) *builder { return b.add(b.inc.Mitigate(bob, at, "")) }
func (b *builder) resolve(at time.Time) *builder  { return b.add(b.inc.Resolve(bob, at, "")) }
func (b *builder) reopen(at time.Time) *builder   { return b.add(b.inc.Reopen(alice, at, "came back")) }
func (b *builder) sev(s incident.Severity, at time.Time) *builder {
	return b.add(b.inc.SetSeverity(s, alice, at, ""))
}

func (b *builder) followup(text string, at time.Time, owner string, done bool) *builder {
	ev, err := b.inc.AddFollowup(text, bob, at)
	f := &b.inc.Followups[len(b.inc.Followups)-1]
	f.Owner, f.Done = owner, done
	return b.add(ev, err)
}

// due gives the last follow-up a due date.
func (b *builder) due(date string) *builder {
	b.inc.Followups[len(b.inc.Followups)-1].Due = date
	return b
}

func (b *builder) postmortem(at time.Time) *builder {
	return b.add(incident.Event{Incident: b.inc.Number, At: at, Kind: incident.EventPostmortemDrafted, Actor: alice,
		Data: map[string]string{"version": "1"}}, nil)
}

func (b *builder) runbook(name, outcome string, dry bool, at time.Time) *builder {
	return b.add(incident.Event{Incident: b.inc.Number, At: at, Kind: incident.EventRunbookRan, Actor: bob,
		Data: map[string]string{"runbook": name, "outcome": outcome, "exit_code": "0", "duration_ms": "1200", "dry_run": strconv.FormatBool(dry)}}, nil)
}

// record returns the incident with its timeline in time order.
func (b *builder) record() Record {
	events := slices.Clone(b.events)
	slices.SortStableFunc(events, func(x, y incident.Event) int { return x.At.Compare(y.At) })
	return Record{Incident: b.inc, Timeline: events}
}

// quiet returns the incident as Load returns one unchanged since before the
// previous period: without its timeline.
func (b *builder) quiet() Record {
	return Record{Incident: b.inc}
}
