package digest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Week is an ISO 8601 week: weeks start on Monday, and week 1 of a year is
// the week with the year's first Thursday.
type Week struct {
	Year int
	Week int
}

// String renders the week as "2026-W47".
func (w Week) String() string { return fmt.Sprintf("%04d-W%02d", w.Year, w.Week) }

// IsZero reports whether w is the zero week (no week).
func (w Week) IsZero() bool { return w == Week{} }

// WeekOf returns the ISO week that contains t, in t's location.
func WeekOf(t time.Time) Week {
	y, n := t.ISOWeek()
	return Week{Year: y, Week: n}
}

var weekPattern = regexp.MustCompile(`^(\d{4})-[Ww](\d{1,2})$`)

// ParseWeek parses "2026-W47".
func ParseWeek(s string) (Week, error) {
	m := weekPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Week{}, incident.Errorf(incident.EINVALID, "%q is not an ISO week; write it like 2026-W47.", s)
	}
	y, _ := strconv.Atoi(m[1])
	n, _ := strconv.Atoi(m[2])
	if n < 1 || n > weeksIn(y) {
		return Week{}, incident.Errorf(incident.EINVALID, "%d has weeks 1 to %d, so %q does not exist.", y, weeksIn(y), s)
	}
	return Week{Year: y, Week: n}, nil
}

// weeksIn returns 52 or 53: the ISO week of 28 December is the year's last.
func weeksIn(year int) int {
	_, n := time.Date(year, time.December, 28, 12, 0, 0, 0, time.UTC).ISOWeek()
	return n
}

// Start returns Monday 00:00 of the week in loc.
func (w Week) Start(loc *time.Location) time.Time {
	// 4 January is always in week 1; week 1 starts on the Monday before it.
	jan4 := time.Date(w.Year, time.January, 4, 0, 0, 0, 0, loc)
	sinceMonday := (int(jan4.Weekday()) + 6) % 7
	// time.Date normalises the day, so this is calendar arithmetic: a week
	// that contains a daylight-saving change is 167 or 169 hours long.
	return time.Date(w.Year, time.January, 4-sinceMonday+7*(w.Week-1), 0, 0, 0, 0, loc)
}

// Prev returns the week before w.
func (w Week) Prev() Week {
	return WeekOf(w.Start(time.UTC).AddDate(0, 0, -7))
}

// Period returns the week as a period in loc.
func (w Week) Period(loc *time.Location) Period {
	from := w.Start(loc)
	return Period{From: from, To: from.AddDate(0, 0, 7), Week: w}
}

// Period is a span of time [From, To) whose bounds are local midnights in
// the configured zone. Week is set when the period is an ISO week.
type Period struct {
	From, To time.Time
	Week     Week
}

// Contains reports whether t is in [From, To).
func (p Period) Contains(t time.Time) bool {
	return !t.Before(p.From) && t.Before(p.To)
}

// Days is the number of calendar days in the period.
func (p Period) Days() int {
	return int(p.To.Sub(p.From).Round(24*time.Hour) / (24 * time.Hour))
}

// Previous returns the period of the same length just before p: the week
// before a week, or as many days before a custom period.
func (p Period) Previous() Period {
	if !p.Week.IsZero() {
		return p.Week.Prev().Period(p.From.Location())
	}
	return Period{From: p.From.AddDate(0, 0, -p.Days()), To: p.From}
}

// Label names the period: "2026-W47", or "2026-11-01 to 2026-11-07" (both
// days included).
func (p Period) Label() string {
	if !p.Week.IsZero() {
		return p.Week.String()
	}
	return p.From.Format(dateFormat) + " to " + p.lastDay().Format(dateFormat)
}

// Range describes the days of the period: "Mon 16 Nov to Sun 22 Nov 2026".
func (p Period) Range() string {
	last := p.lastDay()
	first := p.From.Format("Mon 2 Jan")
	if p.From.Year() != last.Year() {
		first = p.From.Format("Mon 2 Jan 2006")
	}
	return first + " to " + last.Format("Mon 2 Jan 2006")
}

// lastDay is the last calendar day in the period.
func (p Period) lastDay() time.Time { return p.To.AddDate(0, 0, -1) }

const dateFormat = "2006-01-02"

// MaxDays bounds a custom period, so that a typo in a year does not make the
// bot read every incident for a report nobody wants.
const MaxDays = 366

// ParsePeriod chooses the period of a digest from the command line's
// --week, --from and --to (dates as 2026-11-01, --to included), in loc.
// With none of them it is the previous week of now.
func ParsePeriod(week, from, to string, now time.Time, loc *time.Location) (Period, error) {
	week, from, to = strings.TrimSpace(week), strings.TrimSpace(from), strings.TrimSpace(to)
	switch {
	case week != "" && (from != "" || to != ""):
		return Period{}, incident.Errorf(incident.EINVALID, "Use either --week or --from and --to, not both.")
	case week != "":
		w, err := ParseWeek(week)
		if err != nil {
			return Period{}, err
		}
		return w.Period(loc), nil
	case from == "" && to == "":
		return WeekOf(now.In(loc)).Prev().Period(loc), nil
	case from == "" || to == "":
		return Period{}, incident.Errorf(incident.EINVALID, "--from and --to go together: give both days, like --from 2026-11-01 --to 2026-11-07.")
	}
	f, err := time.ParseInLocation(dateFormat, from, loc)
	if err != nil {
		return Period{}, incident.Errorf(incident.EINVALID, "--from %q is not a date like 2026-11-01.", from)
	}
	l, err := time.ParseInLocation(dateFormat, to, loc)
	if err != nil {
		return Period{}, incident.Errorf(incident.EINVALID, "--to %q is not a date like 2026-11-07.", to)
	}
	if l.Before(f) {
		return Period{}, incident.Errorf(incident.EINVALID, "--to %s is before --from %s.", to, from)
	}
	p := Period{From: f, To: time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)}
	if p.Days() > MaxDays {
		return Period{}, incident.Errorf(incident.EINVALID, "That period is %d days long; a digest covers at most %d.", p.Days(), MaxDays)
	}
	return p, nil
}
