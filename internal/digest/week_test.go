package digest

import (
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

func TestParseWeek(t *testing.T) {
	tests := []struct {
		in      string
		want    Week
		wantErr string
	}{
		{in: "2026-W47", want: Week{2026, 47}},
		{in: " 2026-w07 ", want: Week{2026, 7}},
		{in: "2026-W1", want: Week{2026, 1}},
		{in: "2026-W53", want: Week{2026, 53}}, // 2026 starts on a Thursday: 53 weeks
		{in: "2020-W53", want: Week{2020, 53}}, // leap year starting on a Wednesday
		{in: "2025-W53", wantErr: "2025 has weeks 1 to 52"},
		{in: "2026-W00", wantErr: "weeks 1 to 53"},
		{in: "2026-W54", wantErr: "weeks 1 to 53"},
		{in: "2026-47", wantErr: "not an ISO week"},
		{in: "W47", wantErr: "not an ISO week"},
		{in: "2026-W47-1", wantErr: "not an ISO week"},
		{in: "", wantErr: "not an ISO week"},
	}
	for _, tt := range tests {
		got, err := ParseWeek(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || incident.ErrorCode(err) != incident.EINVALID {
				t.Errorf("ParseWeek(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseWeek(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestWeekPeriods(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		week     Week
		loc      *time.Location
		from     string
		hours    float64
		prev     Week
		rangeTxt string
	}{
		{Week{2026, 47}, time.UTC, "2026-11-16T00:00:00Z", 168, Week{2026, 46}, "Mon 16 Nov to Sun 22 Nov 2026"},
		// Week 1 of 2026 starts in 2025; the week before it is 2025's last.
		{Week{2026, 1}, time.UTC, "2025-12-29T00:00:00Z", 168, Week{2025, 52}, "Mon 29 Dec 2025 to Sun 4 Jan 2026"},
		{Week{2027, 1}, time.UTC, "2027-01-04T00:00:00Z", 168, Week{2026, 53}, "Mon 4 Jan to Sun 10 Jan 2027"},
		// Local midnights: the week with the end of summer time is 169 hours.
		{Week{2026, 43}, berlin, "2026-10-19T00:00:00+02:00", 169, Week{2026, 42}, "Mon 19 Oct to Sun 25 Oct 2026"},
		{Week{2026, 13}, berlin, "2026-03-23T00:00:00+01:00", 167, Week{2026, 12}, "Mon 23 Mar to Sun 29 Mar 2026"},
	}
	for _, tt := range tests {
		p := tt.week.Period(tt.loc)
		if got := p.From.Format(time.RFC3339); got != tt.from {
			t.Errorf("%v starts %s, want %s", tt.week, got, tt.from)
		}
		if h := p.To.Sub(p.From).Hours(); h != tt.hours {
			t.Errorf("%v is %v hours, want %v", tt.week, h, tt.hours)
		}
		if got := WeekOf(p.From); got != tt.week {
			t.Errorf("WeekOf(start of %v) = %v", tt.week, got)
		}
		if got := WeekOf(p.To.Add(-time.Nanosecond)); got != tt.week {
			t.Errorf("WeekOf(end of %v) = %v", tt.week, got)
		}
		if got := tt.week.Prev(); got != tt.prev {
			t.Errorf("%v.Prev() = %v, want %v", tt.week, got, tt.prev)
		}
		if got := p.Previous(); got.To != p.From || got.Week != tt.prev {
			t.Errorf("%v.Previous() = %+v", tt.week, got)
		}
		if p.Days() != 7 || p.Range() != tt.rangeTxt {
			t.Errorf("%v: %d days, range %q; want 7, %q", tt.week, p.Days(), p.Range(), tt.rangeTxt)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC) // a Wednesday in week 48
	tests := []struct {
		name           string
		week, from, to string
		wantLabel      string
		wantFrom       string
		wantDays       int
		wantPrev       string
		wantErr        string
	}{
		{name: "default: the previous week", wantLabel: "2026-W47", wantFrom: "2026-11-16T00:00:00+01:00", wantDays: 7, wantPrev: "2026-W46"},
		{name: "a week", week: "2026-W02", wantLabel: "2026-W02", wantFrom: "2026-01-05T00:00:00+01:00", wantDays: 7, wantPrev: "2026-W01"},
		{name: "days, --to included", from: "2026-11-01", to: "2026-11-07", wantLabel: "2026-11-01 to 2026-11-07", wantFrom: "2026-11-01T00:00:00+01:00", wantDays: 7, wantPrev: "2026-10-25 to 2026-10-31"},
		{name: "one day", from: "2026-10-25", to: "2026-10-25", wantLabel: "2026-10-25 to 2026-10-25", wantFrom: "2026-10-25T00:00:00+02:00", wantDays: 1, wantPrev: "2026-10-24 to 2026-10-24"},
		{name: "both kinds", week: "2026-W47", from: "2026-11-01", wantErr: "either --week or --from and --to"},
		{name: "from alone", from: "2026-11-01", wantErr: "--from and --to go together"},
		{name: "to alone", to: "2026-11-01", wantErr: "--from and --to go together"},
		{name: "bad from", from: "1 Nov", to: "2026-11-07", wantErr: `--from "1 Nov" is not a date`},
		{name: "bad to", from: "2026-11-01", to: "2026-13-01", wantErr: `--to "2026-13-01" is not a date`},
		{name: "backwards", from: "2026-11-07", to: "2026-11-01", wantErr: "--to 2026-11-01 is before --from 2026-11-07"},
		{name: "too long", from: "2016-11-01", to: "2026-11-01", wantErr: "at most 366"},
		{name: "bad week", week: "2026-W60", wantErr: "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePeriod(tt.week, tt.from, tt.to, now, berlin)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Label() != tt.wantLabel || p.From.Format(time.RFC3339) != tt.wantFrom || p.Days() != tt.wantDays || p.Previous().Label() != tt.wantPrev {
				t.Errorf("period %q from %s, %d days, previous %q", p.Label(), p.From.Format(time.RFC3339), p.Days(), p.Previous().Label())
			}
		})
	}
}
