package digest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	valid := []string{
		DefaultSchedule,
		"0 9 * * MON",
		"CRON_TZ=Europe/Berlin 30 8 * * 1",
		"TZ=UTC 0 9 * * MON-FRI",
		"@weekly",
		"CRON_TZ=America/New_York @daily",
		"0 0 29 2 *", // leap days only, but it does fire
	}
	for _, spec := range valid {
		if _, err := ParseSchedule(spec, time.UTC); err != nil {
			t.Errorf("ParseSchedule(%q): %v", spec, err)
		}
	}
	invalid := []struct{ spec, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"CRON_TZ=UTC", "must be followed by a schedule"}, // panics in the cron parser
		{"CRON_TZ=UTC   ", "must be followed by a schedule"},
		{"TZ=", "must be followed by a schedule"},
		{"CRON_TZ= 0 9 * * MON", "must be followed by a schedule"},
		{"CRON_TZ=Mars/Olympus 0 9 * * *", "bad location"},
		{"0 9 * * 7", "above maximum"},
		{"0 0 9 * * *", "expected exactly 5 fields"},
		{"0 9 * *", "expected exactly 5 fields"},
		{"@every 168h", "@every is not supported"},
		{"CRON_TZ=UTC @every 1h", "@every is not supported"},
		{"@fortnightly", "not a cron schedule"},
		{"0 0 30 2 *", "never fires"},
		{"every monday", "not a cron schedule"},
	}
	for _, tt := range invalid {
		s, err := ParseSchedule(tt.spec, time.UTC)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSchedule(%q) = %v, %v; want an error with %q", tt.spec, s, err, tt.want)
		}
	}
}

func mustSchedule(t *testing.T, spec string, loc *time.Location) *Schedule {
	t.Helper()
	s, err := ParseSchedule(spec, loc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScheduleDue(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	honolulu, _ := time.LoadLocation("Pacific/Honolulu")
	longAgo := utc("2020-01-01 00:00")
	tests := []struct {
		name       string
		spec       string
		loc        *time.Location
		now, since time.Time
		wantWeek   string // "" for not due
		wantAt     string
	}{
		{"just before Monday 09:00: last Monday's digest", DefaultSchedule, time.UTC, utc("2026-11-23 08:59"), longAgo, "2026-W46", "2026-11-16 09:00"},
		{"at Monday 09:00: last week's", DefaultSchedule, time.UTC, utc("2026-11-23 09:00"), longAgo, "2026-W47", "2026-11-23 09:00"},
		{"down over the weekend, back on Wednesday", DefaultSchedule, time.UTC, utc("2026-11-25 14:00"), longAgo, "2026-W47", "2026-11-23 09:00"},
		{"down for three weeks: only the latest", DefaultSchedule, time.UTC, utc("2026-12-16 12:00"), longAgo, "2026-W50", "2026-12-14 09:00"},
		{"first start after the activation: nothing", DefaultSchedule, time.UTC, utc("2026-11-25 14:00"), utc("2026-11-24 10:00"), "", "2026-11-23 09:00"},
		{"first run exactly at start", DefaultSchedule, time.UTC, utc("2026-11-23 09:00"), utc("2026-11-23 09:00"), "2026-W47", "2026-11-23 09:00"},
		// Without CRON_TZ the spec is read in BOT_TIMEZONE: 09:00 in Berlin is 08:00 UTC in winter.
		{"spec in the digest's zone", "0 9 * * MON", berlin, utc("2026-11-23 08:30"), longAgo, "2026-W47", "2026-11-23 08:00"},
		// A schedule that fires on Sunday evening local time (Monday 05:00
		// UTC in Honolulu) is inside the week it would report: the digest
		// is of the last full week, one week behind.
		{"fires before the local week ended", "CRON_TZ=UTC 0 5 * * MON", honolulu, utc("2026-11-23 06:00"), longAgo, "2026-W46", "2026-11-23 05:00"},
		{"monthly", "0 9 1 * *", time.UTC, utc("2026-11-25 12:00"), longAgo, "2026-W43", "2026-11-01 09:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSchedule(t, tt.spec, tt.loc)
			w, at, ok := s.Due(tt.now, tt.since)
			if got := at.UTC().Format("2006-01-02 15:04"); got != tt.wantAt {
				t.Errorf("last activation %s, want %s", got, tt.wantAt)
			}
			if tt.wantWeek == "" {
				if ok {
					t.Errorf("due %v, want nothing", w)
				}
				return
			}
			if !ok || w.String() != tt.wantWeek {
				t.Errorf("due %v (%v), want %s", w, ok, tt.wantWeek)
			}
		})
	}
}

func TestScheduleNextAndPrevAgree(t *testing.T) {
	s := mustSchedule(t, DefaultSchedule, time.UTC)
	next := s.Next(utc("2026-11-18 12:00"))
	if next != utc("2026-11-23 09:00") {
		t.Fatalf("next = %v", next)
	}
	if prev, ok := s.Prev(next); !ok || !prev.Equal(next) {
		t.Errorf("Prev(activation) = %v, want the activation itself", prev)
	}
	if prev, ok := s.Prev(next.Add(-time.Second)); !ok || !prev.Equal(utc("2026-11-16 09:00")) {
		t.Errorf("Prev(just before) = %v", prev)
	}
}

// TestScheduleAcrossDSTChanges: a local time that does not exist on the day
// clocks go forward runs at the change (robfig/cron alone skips it, and the
// week it would post waits a week); one that occurs twice runs once; other
// days are untouched.
func TestScheduleAcrossDSTChanges(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	newYork, _ := time.LoadLocation("America/New_York")
	for _, tt := range []struct {
		spec      string
		loc       *time.Location
		after     string
		want      []string // the next activations, UTC
		wantWeeks []string // the week each is due for
	}{
		{"CRON_TZ=Europe/Berlin 30 2 * * SUN", berlin, "2026-03-21 12:00",
			[]string{"2026-03-22 01:30", "2026-03-29 01:00", "2026-04-05 00:30"}, []string{"2026-W11", "2026-W12", "2026-W13"}},
		// 02:30 occurs twice on 2026-10-25; either is fine, once.
		{"30 2 * * SUN", berlin, "2026-10-24 12:00",
			[]string{"2026-10-25 00:30|2026-10-25 01:30", "2026-11-01 01:30"}, []string{"2026-W42", "2026-W43"}},
		{"30 2 * * *", newYork, "2026-03-07 00:00",
			[]string{"2026-03-07 07:30", "2026-03-08 07:00", "2026-03-09 06:30"}, []string{"2026-W09", "2026-W09", "2026-W10"}},
		{DefaultSchedule, berlin, "2026-03-21 12:00",
			[]string{"2026-03-23 09:00", "2026-03-30 09:00"}, []string{"2026-W12", "2026-W13"}},
	} {
		s := mustSchedule(t, tt.spec, tt.loc)
		at := utc(tt.after)
		for i, want := range tt.want {
			at = s.Next(at)
			if got := at.UTC().Format("2006-01-02 15:04"); !slices.Contains(strings.Split(want, "|"), got) {
				t.Errorf("%s in %s: activation %d at %s, want %s", tt.spec, tt.loc, i+1, got, want)
			}
			if w := s.WeekDue(at).String(); w != tt.wantWeeks[i] {
				t.Errorf("%s in %s: activation %d posts %s, want %s", tt.spec, tt.loc, i+1, w, tt.wantWeeks[i])
			}
		}
	}
}
