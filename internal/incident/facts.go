package incident

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fact names a fact of an incident that people can correct after
// declaring it.
type Fact string

// The correctable facts.
const (
	FactTitle         Fact = "title"
	FactSummary       Fact = "summary" // Incident.Description
	FactImpact        Fact = "impact"
	FactServiceAdd    Fact = "service_added"
	FactServiceRemove Fact = "service_removed"
	FactStarted       Fact = "started"
)

// MaxServiceLength caps a service name, in characters.
const MaxServiceLength = 80

// FactChange is one correction: Text for the text facts and services,
// Started for FactStarted.
type FactChange struct {
	Fact    Fact
	Text    string
	Started time.Time
}

// ChangeFact applies c and returns the fact_changed event that records it
// (data: fact, from, to; text: the new value). A value equal to the current
// one is a conflict, so a repeated command says so instead of adding noise
// to the timeline.
func (inc *Incident) ChangeFact(c FactChange, by Actor, at time.Time) (Event, error) {
	text := strings.TrimSpace(c.Text)
	var from, to string
	switch c.Fact {
	case FactTitle:
		text = strings.Join(strings.Fields(text), " ") // a title is one line
		switch n := len([]rune(text)); {
		case n == 0:
			return Event{}, Errorf(EINVALID, "Write the new title: `title <text>`.")
		case n > MaxTitleLength:
			return Event{}, Errorf(EINVALID, "The title is too long (%d characters; at most %d).", n, MaxTitleLength)
		case text == inc.Title:
			return Event{}, Errorf(ECONFLICT, "%s already has that title.", inc.ID())
		}
		from, to, inc.Title = inc.Title, text, text
	case FactSummary, FactImpact:
		field := &inc.Description
		if c.Fact == FactImpact {
			field = &inc.Impact
		}
		switch n := len([]rune(text)); {
		case n == 0:
			return Event{}, Errorf(EINVALID, "Write the %s: `%s <text>`.", c.Fact, c.Fact)
		case n > MaxTextLength:
			return Event{}, Errorf(EINVALID, "That text is too long (%d characters; at most %d).", n, MaxTextLength)
		case text == *field:
			return Event{}, Errorf(ECONFLICT, "%s already has that %s.", inc.ID(), c.Fact)
		}
		from, to, *field = *field, text, text
	case FactServiceAdd, FactServiceRemove:
		switch n := len([]rune(text)); {
		case n == 0:
			return Event{}, Errorf(EINVALID, "Name the service: `service add <name>`.")
		case n > MaxServiceLength || strings.ContainsAny(text, "\n\r"):
			return Event{}, Errorf(EINVALID, "A service name is one line of at most %d characters.", MaxServiceLength)
		}
		i := slices.IndexFunc(inc.Services, func(s string) bool { return strings.EqualFold(s, text) })
		if c.Fact == FactServiceAdd {
			if i >= 0 {
				return Event{}, Errorf(ECONFLICT, "%s already lists the service %s.", inc.ID(), inc.Services[i])
			}
			inc.Services = append(slices.Clone(inc.Services), text)
			to = text
		} else {
			if i < 0 {
				return Event{}, Errorf(EINVALID, "%s does not list the service %q; it lists %s.", inc.ID(), truncate(text, 40), servicesText(inc.Services))
			}
			from = inc.Services[i]
			inc.Services = slices.Delete(slices.Clone(inc.Services), i, i+1)
		}
		text = "" // the name is in the event's data
	case FactStarted:
		s := c.Started
		switch {
		case s.IsZero():
			return Event{}, Errorf(EINVALID, "Say when the problem started: `started 25m ago` or `started 2026-12-01 14:05 UTC`.")
		case s.After(at):
			return Event{}, Errorf(EINVALID, "%s is in the future; the start of the problem must be in the past.", s.UTC().Format("2006-01-02 15:04 UTC"))
		case s.After(inc.DetectedAt):
			return Event{}, Errorf(EINVALID, "%s is after the incident was detected (%s); the problem must have started before that.",
				s.UTC().Format("2006-01-02 15:04 UTC"), inc.DetectedAt.UTC().Format("2006-01-02 15:04 UTC"))
		case s.Equal(inc.StartedAt):
			return Event{}, Errorf(ECONFLICT, "%s already has that start time.", inc.ID())
		}
		if !inc.StartedAt.IsZero() {
			from = inc.StartedAt.UTC().Format(time.RFC3339)
		}
		inc.StartedAt = s.UTC()
		to = inc.StartedAt.Format(time.RFC3339)
		text = ""
	default:
		return Event{}, Errorf(EINVALID, "unknown fact %q", c.Fact)
	}
	data := map[string]string{"fact": string(c.Fact)}
	if from != "" {
		data["from"] = from
	}
	if to != "" {
		data["to"] = to
	}
	return inc.newEvent(EventFactChanged, by, at, text, data), nil
}

func servicesText(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// FactChangeText says what a fact_changed event records, for the
// timeline: "changed the title", "added the service checkout"...
func FactChangeText(d map[string]string) string {
	switch Fact(d["fact"]) {
	case FactTitle, FactSummary, FactImpact:
		verb := "changed"
		if d["from"] == "" {
			verb = "set"
		}
		return verb + " the " + d["fact"]
	case FactServiceAdd:
		return "added the service " + d["to"]
	case FactServiceRemove:
		return "removed the service " + d["from"]
	case FactStarted:
		t, err := time.Parse(time.RFC3339, d["to"])
		if err != nil {
			return "set when the problem started"
		}
		return "recorded that the problem started at " + t.UTC().Format("2006-01-02 15:04 UTC")
	}
	return "changed " + d["fact"]
}

// ChangeFact corrects a fact of the incident ref names.
func (s *Service) ChangeFact(ctx context.Context, ref Ref, c FactChange, by Actor) (*Incident, error) {
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.ChangeFact(c, by, now)
	})
}

var (
	agoPattern   = regexp.MustCompile(`^(\d{1,5})\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\s+ago$`)
	slackDateTok = regexp.MustCompile(`^<!date\^(\d{1,12})\^[^>]*>$`)
	clockPattern = regexp.MustCompile(`^(\d{1,2}):(\d{2})(?::(\d{2}))?$`)
)

// ParseTime reads a moment as people write it, relative to now: "25m ago",
// "1h30m ago", "2 hours ago", a Slack date token, "14:05" (the last such
// time, today or yesterday), "2026-12-01 14:05", "2026-12-01T14:05:00Z".
// A clock time without a zone is in loc; a zone can follow: "UTC", an
// offset like "+01:00", or an IANA name like "Europe/Berlin".
func ParseTime(text string, now time.Time, loc *time.Location) (time.Time, error) {
	t := strings.Join(strings.Fields(text), " ")
	lower := strings.ToLower(t)
	bad := func() (time.Time, error) {
		return time.Time{}, Errorf(EINVALID, "%q is not a time I can read: write `25m ago`, `14:05`, `14:05 UTC` or `2026-12-01 14:05 Europe/Berlin`.", truncate(text, 40))
	}
	if m := agoPattern.FindStringSubmatch(lower); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[m[2][0]]
		return now.Add(-time.Duration(n) * unit), nil
	}
	if rest, ok := strings.CutSuffix(lower, " ago"); ok {
		if d, err := time.ParseDuration(strings.ReplaceAll(rest, " ", "")); err == nil && d > 0 {
			return now.Add(-d), nil
		}
		return bad()
	}
	if m := slackDateTok.FindStringSubmatch(t); m != nil {
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		return time.Unix(sec, 0), nil
	}
	if ts, err := time.Parse(time.RFC3339, t); err == nil {
		return ts, nil
	}
	// A trailing zone.
	zone := loc
	if i := strings.LastIndexByte(t, ' '); i > 0 {
		if z, ok := parseZone(t[i+1:]); ok {
			zone, t = z, t[:i]
		}
	}
	if m := clockPattern.FindStringSubmatch(t); m != nil {
		h, _ := strconv.Atoi(m[1])
		mi, _ := strconv.Atoi(m[2])
		sec := 0
		if m[3] != "" {
			sec, _ = strconv.Atoi(m[3])
		}
		if h > 23 || mi > 59 || sec > 59 {
			return bad()
		}
		n := now.In(zone)
		ts := time.Date(n.Year(), n.Month(), n.Day(), h, mi, sec, 0, zone)
		if ts.After(now) {
			ts = ts.AddDate(0, 0, -1)
		}
		return ts, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if ts, err := time.ParseInLocation(layout, t, zone); err == nil {
			return ts, nil
		}
	}
	return bad()
}

var offsetPattern = regexp.MustCompile(`^[+-]\d{2}:?\d{2}$`)

func parseZone(s string) (*time.Location, bool) {
	switch strings.ToUpper(s) {
	case "UTC", "Z", "GMT":
		return time.UTC, true
	}
	if offsetPattern.MatchString(s) {
		sign := 1
		if s[0] == '-' {
			sign = -1
		}
		digits := strings.ReplaceAll(s[1:], ":", "")
		h, _ := strconv.Atoi(digits[:2])
		m, _ := strconv.Atoi(digits[2:])
		if h > 14 || m > 59 {
			return nil, false
		}
		return time.FixedZone("UTC"+s[:1]+digits[:2]+":"+digits[2:], sign*(h*3600+m*60)), true
	}
	if strings.Contains(s, "/") {
		if z, err := time.LoadLocation(s); err == nil {
			return z, true
		}
	}
	return nil, false
}
