package digest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultSchedule is when the digest is posted unless BOT_DIGEST_SCHEDULE
// says otherwise: Mondays at 09:00 UTC.
const DefaultSchedule = "CRON_TZ=UTC 0 9 * * MON"

// Schedule is a parsed digest schedule: a standard 5-field cron spec or a
// descriptor (@weekly, @daily...), optionally prefixed with CRON_TZ=<zone>.
// At each activation the digest of the last full ISO week before it (in the
// digest's zone) is due.
type Schedule struct {
	spec  string
	sched cron.Schedule
	loc   *time.Location // the digest's zone; also the zone of specs without CRON_TZ
}

// ParseSchedule parses spec for periods in loc. It never panics: the cron
// parser does on "CRON_TZ=UTC" without a spec, so that is checked first.
func ParseSchedule(spec string, loc *time.Location) (*Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	spec = strings.TrimSpace(spec)
	rest := spec
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if r, ok := strings.CutPrefix(spec, prefix); ok {
			zone, sched, _ := strings.Cut(r, " ")
			if zone == "" || strings.TrimSpace(sched) == "" {
				return nil, fmt.Errorf("%q: %s<zone> must be followed by a schedule, as in %q", spec, prefix, DefaultSchedule)
			}
			rest = strings.TrimSpace(sched)
			break
		}
	}
	switch {
	case rest == "":
		return nil, errors.New("the schedule is empty; use a cron spec like " + DefaultSchedule)
	case strings.HasPrefix(rest, "@every"):
		// A fixed interval has no calendar position, so there is no "last
		// activation" to catch up after a restart.
		return nil, fmt.Errorf("%q: @every is not supported for the digest; use a calendar schedule like %q", spec, DefaultSchedule)
	}
	sched, err := parseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron schedule (minute hour day-of-month month day-of-week, e.g. %q): %w", spec, DefaultSchedule, err)
	}
	s := &Schedule{spec: spec, sched: onWallClock(sched, loc), loc: loc}
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("%q never fires", spec)
	}
	return s, nil
}

// wallClock runs a cron spec on the wall clock of its zone, as Vixie cron
// does across DST changes: an activation whose local time does not exist
// (02:30 on the day clocks go from 02:00 to 03:00) runs at the change
// instead of being skipped, as robfig/cron's own Next does (PROTOCOLS.md
// §7.2), and one whose local time occurs twice (the day clocks go back)
// runs once.
type wallClock struct {
	spec *cron.SpecSchedule // a copy whose Location is UTC, standing for the wall clock
	loc  *time.Location     // the zone whose wall clock it is
}

// onWallClock wraps a parsed spec; a spec without CRON_TZ is read in loc.
// Anything other than a spec (cron.ParseStandard returns nothing else for
// the specs ParseSchedule accepts) is returned as it is.
func onWallClock(sched cron.Schedule, loc *time.Location) cron.Schedule {
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return sched
	}
	w := wallClock{spec: new(cron.SpecSchedule), loc: loc}
	*w.spec = *spec
	if spec.Location != time.Local {
		w.loc = spec.Location
	}
	w.spec.Location = time.UTC
	return w
}

// Next returns the first activation after t.
func (w wallClock) Next(t time.Time) time.Time {
	l := t.In(w.loc)
	wall := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
	for range 3 { // a wall time that maps back to t or before (the repeated hour) is passed over
		n := w.spec.Next(wall)
		if n.IsZero() {
			return n
		}
		at := time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), 0, w.loc)
		if atWall := time.Date(at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), at.Second(), 0, time.UTC); !atWall.Equal(n) {
			// n does not exist on this day, and time.Date moved it to
			// one side of the gap (which side is not guaranteed): run at
			// the change itself.
			start, end := at.ZoneBounds()
			if atWall.Before(n) {
				at = end
			} else {
				at = start
			}
		}
		if at.After(t) {
			return at
		}
		wall = n
	}
	return time.Time{}
}

// parseStandard is cron.ParseStandard with any panic turned into an error.
func parseStandard(spec string) (s cron.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("cron parser failed: %v", p)
		}
	}()
	return cron.ParseStandard(spec)
}

// String returns the spec.
func (s *Schedule) String() string { return s.spec }

// Location is the zone of the digest's periods.
func (s *Schedule) Location() *time.Location { return s.loc }

// Next returns the first activation after t (zero if none within 5 years).
func (s *Schedule) Next(t time.Time) time.Time {
	// A spec without CRON_TZ is read in the time's own zone.
	return s.sched.Next(t.In(s.loc))
}

// Prev returns the last activation at or before t, and false if there is
// none in the five years before t.
func (s *Schedule) Prev(t time.Time) (time.Time, bool) {
	// Cron schedules only answer "next", so walk forward from a little
	// before t, looking further back for sparse (monthly, yearly) specs.
	for _, back := range []time.Duration{8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 366 * 24 * time.Hour} {
		var last time.Time
		for n := s.Next(t.Add(-back)); !n.IsZero() && !n.After(t); n = s.Next(n) {
			last = n
		}
		if !last.IsZero() {
			return last, true
		}
	}
	return time.Time{}, false
}

// WeekDue returns the week whose digest is due at activation t: the last
// full ISO week before the one that contains t, in the digest's zone. When
// activations cross a week boundary of that zone (a DST change) two
// activations can give the same week and the next one skip a week; the
// Scheduler therefore posts every unposted week up to this one.
func (s *Schedule) WeekDue(t time.Time) Week {
	return WeekOf(t.In(s.loc)).Prev()
}

// Due returns the week whose digest should have been posted by now: the
// week due at the last activation at or before now. ok is false when that
// activation is before since, the moment this bot first ran the schedule
// (a fresh install does not post last week's digest on its first start),
// or when there is none.
func (s *Schedule) Due(now, since time.Time) (week Week, activation time.Time, ok bool) {
	t, found := s.Prev(now)
	if !found || t.Before(since) {
		return Week{}, t, false
	}
	return s.WeekDue(t), t, true
}
