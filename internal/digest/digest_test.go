package digest

import (
	"slices"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

func mins(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Minute
	}
	return out
}

func TestMedianAndPercentile(t *testing.T) {
	tests := []struct {
		name    string
		xs      []time.Duration
		median  time.Duration
		p90     time.Duration
		noValue bool
	}{
		{name: "empty", xs: nil, noValue: true},
		{name: "one sample", xs: mins(7), median: 7 * time.Minute, p90: 7 * time.Minute},
		{name: "two: mean of the middle, p90 rank ceil(1.8)=2", xs: mins(10, 2), median: 6 * time.Minute, p90: 10 * time.Minute},
		{name: "odd count, unsorted", xs: mins(30, 2, 10, 6, 4), median: 6 * time.Minute, p90: 30 * time.Minute},
		{name: "ten: p90 rank 9", xs: mins(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), median: 5*time.Minute + 30*time.Second, p90: 9 * time.Minute},
		{name: "eleven: p90 rank ceil(9.9)=10", xs: mins(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100), median: 6 * time.Minute, p90: 10 * time.Minute},
		{name: "ties", xs: mins(5, 5, 5, 5), median: 5 * time.Minute, p90: 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, okM := Median(tt.xs)
			p, okP := Percentile(tt.xs, 90)
			if okM == tt.noValue || okP == tt.noValue {
				t.Fatalf("ok = %v, %v; want %v", okM, okP, !tt.noValue)
			}
			if m != tt.median || p != tt.p90 {
				t.Errorf("median %v p90 %v; want %v and %v", m, p, tt.median, tt.p90)
			}
		})
	}
	if _, ok := Percentile(mins(1), 0); ok {
		t.Error("p0 is not a percentile")
	}
	if p, _ := Percentile(mins(3, 1, 2), 100); p != 3*time.Minute {
		t.Errorf("p100 = %v, want the maximum", p)
	}
}

func w47() Period { return Week{2026, 47}.Period(time.UTC) } // Mon 16 Nov to Mon 23 Nov 2026

func build(records ...Record) *Digest {
	return Build(Input{Period: w47(), Records: records, Generated: utc("2026-11-23 09:00")})
}

func ids(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func TestBuildEmptyWeek(t *testing.T) {
	d := build()
	if d.Opened != 0 || d.Resolved != 0 || d.PrevOpened != 0 || len(d.StillOpen) != 0 || d.FollowupsOpen != 0 {
		t.Errorf("counts: %+v", d)
	}
	if d.MTTA.N != 0 || d.MTTA.MedianText() != "n/a" || d.MTTR.P90Text() != "n/a" || d.MTTR.MedianChange() != "n/a" {
		t.Errorf("stats of an empty week: %+v %+v", d.MTTA, d.MTTR)
	}
	if len(d.BySeverity) != 4 || d.BySeverity[0] != (Row{Name: "SEV1"}) || len(d.ByService) != 0 {
		t.Errorf("rows: %+v %+v", d.BySeverity, d.ByService)
	}
	if d.Label != "2026-W47" || d.PrevLabel != "2026-W46" || d.Range != "Mon 16 Nov to Sun 22 Nov 2026" {
		t.Errorf("labels %q %q %q", d.Label, d.PrevLabel, d.Range)
	}
}

// Hand-computed: TTA this week 2, 4, 6, 10, 30 minutes (median 6m, p90 at
// rank ceil(4.5)=5: 30m); last week 5 and 7 (median 6m, p90 7m). TTR this
// week 1h, 2h, 3h, 10h (median 2h30m, p90 rank ceil(3.6)=4: 10h); last week
// 4h and 2h (median 3h, p90 4h).
func TestBuildMediansP90AndChange(t *testing.T) {
	day := func(d int, hm string) time.Time { return utc("2026-11-" + twoDigits(d) + " " + hm) }
	page := func(n int64, d int, ack, resolve time.Duration) *builder {
		at := day(d, "10:00")
		b := paged(t, n, "page", incident.SEV3, at, at, "api").ack(at.Add(ack))
		if resolve > 0 {
			b.resolve(at.Add(resolve))
		}
		return b
	}
	records := []Record{
		page(1, 16, 2*time.Minute, time.Hour).record(),
		page(2, 17, 4*time.Minute, 2*time.Hour).record(),
		page(3, 18, 6*time.Minute, 3*time.Hour).record(),
		page(4, 19, 10*time.Minute, 10*time.Hour).record(),
		page(5, 20, 30*time.Minute, 0).record(),
		// Declared in chat: acknowledged by the declaration, no MTTA sample.
		declared(t, 6, "chat", incident.SEV3, day(21, "12:00")).record(),
		page(7, 9, 5*time.Minute, 4*time.Hour).record(),
		page(8, 10, 7*time.Minute, 2*time.Hour).record(),
	}
	d := build(records...)
	if d.Opened != 6 || d.Resolved != 4 || d.PrevOpened != 2 || d.PrevResolved != 2 {
		t.Errorf("opened %d resolved %d, previous %d %d; want 6 4 2 2", d.Opened, d.Resolved, d.PrevOpened, d.PrevResolved)
	}
	wantTTA := Stat{N: 5, PrevN: 2, Median: 6 * time.Minute, P90: 30 * time.Minute, PrevMedian: 6 * time.Minute, PrevP90: 7 * time.Minute}
	if d.MTTA != wantTTA {
		t.Errorf("MTTA = %+v\nwant   %+v", d.MTTA, wantTTA)
	}
	wantTTR := Stat{N: 4, PrevN: 2, Median: 150 * time.Minute, P90: 10 * time.Hour, PrevMedian: 3 * time.Hour, PrevP90: 4 * time.Hour}
	if d.MTTR != wantTTR {
		t.Errorf("MTTR = %+v\nwant   %+v", d.MTTR, wantTTR)
	}
	for _, c := range []struct{ got, want string }{
		{d.MTTA.MedianChange(), "no change"},
		{d.MTTA.P90Change(), "+23m 0s"},
		{d.MTTR.MedianText(), "2h 30m"},
		{d.MTTR.MedianChange(), "-30m 0s"},
		{d.MTTR.P90Change(), "+6h 0m"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if got := ids(d.Longest); !slices.Equal(got, []string{"INC-4", "INC-3", "INC-2", "INC-1"}) {
		t.Errorf("longest = %v", got)
	}
	if got := ids(d.StillOpen); !slices.Equal(got, []string{"INC-5", "INC-6"}) {
		t.Errorf("still open = %v", got)
	}
	if got := d.StillOpen[0].Duration; got != 3*24*time.Hour-10*time.Hour {
		t.Errorf("INC-5 open for %v at the end of the week, want 2d 14h", got)
	}
}

func twoDigits(n int) string { return time.Date(2000, 1, n, 0, 0, 0, 0, time.UTC).Format("02") }

func TestBuildWeekBoundaries(t *testing.T) {
	// Paged late on Sunday of week 46, acknowledged and resolved on Monday
	// of week 47: opened in 46; acknowledged and resolved in 47.
	late := paged(t, 1, "late", incident.SEV2, utc("2026-11-15 23:50"), utc("2026-11-15 23:50")).
		ack(utc("2026-11-16 00:10")).resolve(utc("2026-11-16 01:00")).record()
	// Declared on Sunday of week 47, resolved on Monday of week 48: opened
	// in 47 and still open at its end.
	spill := declared(t, 2, "spill", incident.SEV3, utc("2026-11-22 23:30")).resolve(utc("2026-11-23 00:30")).record()

	d := build(late, spill)
	if d.Opened != 1 || d.PrevOpened != 1 || d.Resolved != 1 || d.PrevResolved != 0 {
		t.Errorf("opened %d (prev %d), resolved %d (prev %d); want 1 1 1 0", d.Opened, d.PrevOpened, d.Resolved, d.PrevResolved)
	}
	if d.MTTA.N != 1 || d.MTTA.Median != 20*time.Minute || d.MTTA.PrevN != 0 {
		t.Errorf("MTTA = %+v, want one sample of 20m this week", d.MTTA)
	}
	if d.MTTR.N != 1 || d.MTTR.Median != 70*time.Minute {
		t.Errorf("MTTR = %+v, want one sample of 1h10m from detection", d.MTTR)
	}
	if got := ids(d.StillOpen); !slices.Equal(got, []string{"INC-2"}) || d.StillOpen[0].Duration != 30*time.Minute {
		t.Errorf("still open = %+v", d.StillOpen)
	}
	if d.BySeverity[1] != (Row{Name: "SEV2", Resolved: 1}) || d.BySeverity[2] != (Row{Name: "SEV3", Opened: 1}) {
		t.Errorf("by severity = %+v", d.BySeverity)
	}

	// The same incidents seen from week 46: INC-1 opened and still open.
	d46 := Build(Input{Period: Week{2026, 46}.Period(time.UTC), Records: []Record{late, spill}, Generated: utc("2026-11-23 09:00")})
	if d46.Opened != 1 || d46.Resolved != 0 || !slices.Equal(ids(d46.StillOpen), []string{"INC-1"}) || d46.StillOpen[0].Duration != 10*time.Minute {
		t.Errorf("week 46: opened %d resolved %d still open %+v", d46.Opened, d46.Resolved, d46.StillOpen)
	}
}

func TestBuildReopenedIncidents(t *testing.T) {
	// Resolved in week 46, reopened and resolved again in week 47.
	again := paged(t, 1, "again", incident.SEV3, utc("2026-11-12 10:00"), utc("2026-11-12 10:00")).
		ack(utc("2026-11-12 10:05")).resolve(utc("2026-11-12 11:00")).
		reopen(utc("2026-11-17 09:00")).resolve(utc("2026-11-17 10:00")).record()
	// Resolved and reopened within week 47: still open at its end.
	flapping := declared(t, 2, "flapping", incident.SEV3, utc("2026-11-16 10:00")).
		resolve(utc("2026-11-16 11:00")).reopen(utc("2026-11-16 12:00")).record()
	// Resolved in week 47, reopened in week 48: week 47 keeps counting it.
	later := declared(t, 3, "later", incident.SEV3, utc("2026-11-18 10:00")).
		resolve(utc("2026-11-18 12:00")).reopen(utc("2026-11-24 08:00")).record()

	d := build(again, flapping, later)
	if d.Resolved != 2 || d.Reopened != 2 || d.PrevResolved != 1 {
		t.Errorf("resolved %d, reopened %d, previous week resolved %d; want 2 2 1", d.Resolved, d.Reopened, d.PrevResolved)
	}
	// INC-1: from detection (12 Nov 10:00) to its last resolution (17 Nov
	// 10:00), the time it spent resolved included: 5 days. INC-3: 2h.
	if got := ids(d.Longest); !slices.Equal(got, []string{"INC-1", "INC-3"}) || d.Longest[0].Duration != 5*24*time.Hour || d.Longest[1].Duration != 2*time.Hour {
		t.Errorf("longest = %+v", d.Longest)
	}
	if d.MTTR.N != 2 || d.MTTR.PrevN != 1 || d.MTTR.PrevMedian != time.Hour {
		t.Errorf("MTTR = %+v", d.MTTR)
	}
	if got := ids(d.StillOpen); !slices.Equal(got, []string{"INC-2"}) || d.StillOpen[0].Status != "acknowledged" {
		t.Errorf("still open = %+v", d.StillOpen)
	}
	if d.MTTA.N != 0 {
		t.Errorf("INC-1 was first acknowledged in week 46: MTTA = %+v", d.MTTA)
	}
}

func TestBuildRecordsWithoutTimeline(t *testing.T) {
	// Unchanged since before week 46: Load leaves the timeline out.
	stale := declared(t, 1, "stale", incident.SEV4, utc("2026-10-01 10:00")).quiet()
	closed := declared(t, 2, "closed", incident.SEV2, utc("2026-10-01 10:00")).resolve(utc("2026-10-02 10:00")).quiet()
	d := build(stale, closed)
	if d.Opened != 0 || d.Resolved != 0 || d.PrevResolved != 0 || !slices.Equal(ids(d.StillOpen), []string{"INC-1"}) {
		t.Errorf("opened %d resolved %d still open %v", d.Opened, d.Resolved, ids(d.StillOpen))
	}
	if got := d.StillOpen[0].Duration; got != utc("2026-11-23 00:00").Sub(utc("2026-10-01 10:00")) {
		t.Errorf("open for %v", got)
	}
}

func TestBuildSeverityAndPostmortems(t *testing.T) {
	// Declared SEV3, raised to SEV1, lowered to SEV2: counted as SEV1.
	peak := declared(t, 1, "peak", incident.SEV3, utc("2026-11-17 10:00"), "checkout").
		sev(incident.SEV1, utc("2026-11-17 10:10")).sev(incident.SEV2, utc("2026-11-17 11:00")).
		resolve(utc("2026-11-17 12:00")).record()
	drafted := declared(t, 2, "drafted", incident.SEV2, utc("2026-11-18 10:00"), "checkout", "payments").
		resolve(utc("2026-11-18 11:00")).postmortem(utc("2026-11-19 09:00")).record()
	minor := declared(t, 3, "minor", incident.SEV3, utc("2026-11-18 10:00")).resolve(utc("2026-11-18 11:00")).record()
	paged := paged(t, 4, "paged", incident.SEV2, utc("2026-11-19 10:00"), utc("2026-11-19 10:00"), "payments").record()

	d := build(peak, drafted, minor, paged)
	wantSev := []Row{{"SEV1", 1, 1}, {"SEV2", 2, 1}, {"SEV3", 1, 1}, {"SEV4", 0, 0}}
	if !slices.Equal(d.BySeverity, wantSev) {
		t.Errorf("by severity = %v, want %v", d.BySeverity, wantSev)
	}
	wantSvc := []Row{{"checkout", 2, 2}, {"payments", 2, 1}, {"(none)", 1, 1}}
	if !slices.Equal(d.ByService, wantSvc) {
		t.Errorf("by service = %v, want %v", d.ByService, wantSvc)
	}
	wantSrc := []Row{{"Slack", 3, 3}, {"PagerDuty", 1, 0}}
	if !slices.Equal(d.BySource, wantSrc) {
		t.Errorf("by source = %v, want %v", d.BySource, wantSrc)
	}
	if got := d.WithoutPostmortem; len(got) != 1 || got[0].ID != "INC-1" || got[0].Severity != "SEV1" {
		t.Errorf("without postmortem = %+v, want INC-1 as SEV1", got)
	}
}

func TestBuildFollowupsAndRunbooks(t *testing.T) {
	a := declared(t, 1, "a", incident.SEV3, utc("2026-09-01 10:00")).
		followup("old and open", utc("2026-09-01 11:00"), "U02BOB", false).
		followup("done", utc("2026-09-01 11:30"), "", true).
		followup("after the week", utc("2026-11-24 10:00"), "", false).
		resolve(utc("2026-09-02 10:00")).quiet()
	b := declared(t, 2, "b", incident.SEV3, utc("2026-11-16 10:00")).
		followup("newer &amp; open", utc("2026-11-16 11:00"), "", false).
		runbook("rollback", "succeeded", false, utc("2026-11-16 10:30")).
		runbook("rollback", "failed", false, utc("2026-11-16 10:40")).
		runbook("fetch-logs", "succeeded", true, utc("2026-11-16 10:50")).
		runbook("rollback", "succeeded", false, utc("2026-11-17 10:00")).
		runbook("rollback", "succeeded", false, utc("2026-11-23 00:00")). // next week
		record()
	c := declared(t, 3, "c", incident.SEV3, utc("2026-11-10 10:00")).
		runbook("fetch-logs", "succeeded", false, utc("2026-11-10 10:30")). // previous week
		record()
	d := build(a, b, c)
	if d.FollowupsOpen != 2 || len(d.Followups) != 2 {
		t.Fatalf("follow-ups = %d %+v", d.FollowupsOpen, d.Followups)
	}
	if f := d.Followups[0]; f.Incident != "INC-1" || f.Text != "old and open" || f.Owner != "U02BOB" {
		t.Errorf("oldest follow-up = %+v", f)
	}
	if f := d.Followups[1]; f.Text != "newer & open" {
		t.Errorf("follow-up text = %q, want Slack's escaping undone", f.Text)
	}
	want := []RunbookUse{{"`rollback`", 3, 2, 1, 0}, {"`fetch-logs`", 1, 0, 0, 1}} // code spans, for Markdown
	if !slices.Equal(d.Runbooks, want) {
		t.Errorf("runbooks = %+v, want %+v", d.Runbooks, want)
	}
}

func TestBuildCapsLists(t *testing.T) {
	var records []Record
	for i := range 20 {
		at := utc("2026-11-17 10:00").Add(time.Duration(i) * time.Minute)
		b := declared(t, int64(i+1), "x", incident.SEV3, at).followup("f", at, "", false)
		b.resolve(at.Add(time.Duration(i+1) * time.Hour))
		records = append(records, b.record())
	}
	d := build(records...)
	if len(d.Longest) != maxLongest || d.Longest[0].ID != "INC-20" || len(d.Followups) != maxFollowups || d.FollowupsOpen != 20 {
		t.Errorf("longest %d (first %s), follow-ups listed %d of %d", len(d.Longest), d.Longest[0].ID, len(d.Followups), d.FollowupsOpen)
	}
}

// TestBuildMeasuresFromTheRecordedStart: an incident declared in chat has
// no MTTA sample until its start is recorded with `started`; then MTTA and
// MTTR run from that start.
func TestBuildMeasuresFromTheRecordedStart(t *testing.T) {
	at := utc("2026-11-17 10:00")
	b := declared(t, 1, "chat", incident.SEV2, at)
	b.resolve(at.Add(time.Hour))
	if d := build(b.record()); d.MTTA.N != 0 || d.MTTR.N != 1 || d.MTTR.Median != time.Hour {
		t.Fatalf("without a start: MTTA %+v, MTTR %+v", d.MTTA, d.MTTR)
	}
	b.add(b.inc.ChangeFact(incident.FactChange{Fact: incident.FactStarted, Started: at.Add(-20 * time.Minute)}, alice, at.Add(2*time.Hour)))
	d := build(b.record())
	if d.MTTA.N != 1 || d.MTTA.Median != 20*time.Minute || d.MTTR.Median != 80*time.Minute {
		t.Fatalf("with a start: MTTA %+v, MTTR %+v", d.MTTA, d.MTTR)
	}
}
