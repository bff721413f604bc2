package incident

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DateFormat is how calendar dates (follow-up due dates) are written.
const DateFormat = "2006-01-02"

// FollowupOp is a change to an existing follow-up.
type FollowupOp string

// The follow-up changes.
const (
	FollowupDone   FollowupOp = "done"
	FollowupReopen FollowupOp = "reopened"
	FollowupAssign FollowupOp = "assigned"
	FollowupDue    FollowupOp = "due"
)

// FollowupChange is one change to follow-up ID of an incident: mark it done,
// reopen it, give it an Owner (a chat user id) or a Due date ("2026-12-15";
// "" clears it).
type FollowupChange struct {
	ID    int
	Op    FollowupOp
	Owner string
	Due   string
}

// Followup returns follow-up id, or an EINVALID error that says which
// numbers exist.
func (inc *Incident) Followup(id int) (*Followup, error) {
	for i := range inc.Followups {
		if inc.Followups[i].ID == id {
			return &inc.Followups[i], nil
		}
	}
	switch n := len(inc.Followups); n {
	case 0:
		return nil, Errorf(EINVALID, "%s has no follow-ups yet; add one with `followup <text>`.", inc.ID())
	case 1:
		return nil, Errorf(EINVALID, "%s has only follow-up #1.", inc.ID())
	default:
		return nil, Errorf(EINVALID, "%s has follow-ups #1 to #%d; `followups` lists them.", inc.ID(), n)
	}
}

// ChangeFollowup applies c and returns the timeline event that records it.
// Follow-ups can be changed on a resolved incident too: that is when most
// of them get done.
func (inc *Incident) ChangeFollowup(c FollowupChange, by Actor, at time.Time) (Event, error) {
	f, err := inc.Followup(c.ID)
	if err != nil {
		return Event{}, err
	}
	data := map[string]string{"id": strconv.Itoa(f.ID), "change": string(c.Op)}
	switch c.Op {
	case FollowupDone:
		if f.Done {
			return Event{}, Errorf(ECONFLICT, "Follow-up #%d of %s is already done.", f.ID, inc.ID())
		}
		f.Done, f.DoneAt, f.DoneBy = true, at, by
	case FollowupReopen:
		if !f.Done {
			return Event{}, Errorf(ECONFLICT, "Follow-up #%d of %s is still open.", f.ID, inc.ID())
		}
		f.Done, f.DoneAt, f.DoneBy = false, time.Time{}, Actor{}
	case FollowupAssign:
		if c.Owner == "" {
			return Event{}, Errorf(EINVALID, "Name the owner with an @-mention.")
		}
		if f.Owner == c.Owner {
			return Event{}, Errorf(ECONFLICT, "<@%s> already owns follow-up #%d of %s.", c.Owner, f.ID, inc.ID())
		}
		if f.Owner != "" {
			data["previous_owner"] = f.Owner
		}
		f.Owner = c.Owner
		data["owner"] = c.Owner
	case FollowupDue:
		if c.Due != "" {
			if _, err := time.Parse(DateFormat, c.Due); err != nil {
				return Event{}, Errorf(EINVALID, "%q is not a date like 2026-12-15.", truncate(c.Due, 32))
			}
		}
		if f.Due == c.Due {
			return Event{}, Errorf(ECONFLICT, "Follow-up #%d of %s already has that due date.", f.ID, inc.ID())
		}
		f.Due = c.Due
		data["due"] = c.Due
	default:
		return Event{}, Errorf(EINVALID, "unknown follow-up change %q", c.Op)
	}
	return inc.newEvent(EventFollowupChanged, by, at, f.Text, data), nil
}

// FollowupChangeText says what a followup_changed event's data records,
// naming users with person: "marked done", "assigned to alice", "due
// 2026-12-15".
func FollowupChangeText(d map[string]string, person func(id string) string) string {
	switch FollowupOp(d["change"]) {
	case FollowupDone:
		return "marked done"
	case FollowupReopen:
		return "reopened"
	case FollowupAssign:
		s := "assigned to " + person(d["owner"])
		if p := d["previous_owner"]; p != "" {
			s += " (was " + person(p) + ")"
		}
		return s
	case FollowupDue:
		if d["due"] == "" {
			return "due date cleared"
		}
		return "due " + d["due"]
	}
	return "changed"
}

// ChangeFollowup changes a follow-up of the incident ref names.
func (s *Service) ChangeFollowup(ctx context.Context, ref Ref, c FollowupChange, by Actor) (*Incident, error) {
	return s.move(ctx, ref, by, func(inc *Incident, now time.Time) (Event, error) {
		return inc.ChangeFollowup(c, by, now)
	})
}

var (
	relDays  = regexp.MustCompile(`^(?:in\s+|\+)?(\d{1,3})\s*(d|days?|w|weeks?)$`)
	weekdays = map[string]time.Weekday{
		"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
		"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
		"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
		"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	}
)

// ParseDueDate reads a due date as people write it, relative to now in
// loc: "2026-12-15", "today", "tomorrow", a weekday ("friday": the next
// one after today), "in 3 days", "3d", "+2w". "none" (or "-") clears the
// date and returns "".
func ParseDueDate(text string, now time.Time, loc *time.Location) (string, error) {
	t := strings.ToLower(strings.Join(strings.Fields(text), " "))
	today := now.In(loc)
	day := func(add int) string { return today.AddDate(0, 0, add).Format(DateFormat) }
	switch t {
	case "none", "-", "clear":
		return "", nil
	case "today":
		return day(0), nil
	case "tomorrow":
		return day(1), nil
	}
	if wd, ok := weekdays[t]; ok {
		n := (int(wd) - int(today.Weekday()) + 7) % 7
		if n == 0 {
			n = 7
		}
		return day(n), nil
	}
	if m := relDays.FindStringSubmatch(t); m != nil {
		n, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "w") {
			n *= 7
		}
		return day(n), nil
	}
	if d, err := time.ParseInLocation(DateFormat, t, loc); err == nil {
		return d.Format(DateFormat), nil
	}
	return "", Errorf(EINVALID, "%q is not a due date: write 2026-12-15, today, tomorrow, friday, in 3 days, 2w, or none.", truncate(text, 40))
}
