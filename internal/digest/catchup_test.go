package digest

import (
	"strings"
	"testing"
	"time"
)

// postedWeeks returns the weeks of the digests posted so far, in order.
func (b *bot) postedWeeks() []string {
	var weeks []string
	for _, p := range b.chat.all() {
		weeks = append(weeks, strings.TrimSuffix(strings.TrimPrefix(p.file, "incident-digest-"), ".md"))
	}
	return weeks
}

// wantConsecutive fails unless weeks are consecutive ISO weeks from first
// to last, each once.
func wantConsecutive(t *testing.T, weeks []string, first, last string) {
	t.Helper()
	w, err := ParseWeek(first)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for ; ; w = w.next() {
		want = append(want, w.String())
		if w.String() == last {
			break
		}
	}
	if strings.Join(weeks, " ") != strings.Join(want, " ") {
		t.Fatalf("posted weeks\n %v\nwant each week once, in order\n %v", weeks, want)
	}
}

// next is the week after w (tests only).
func (w Week) next() Week { return WeekOf(w.Start(time.UTC).AddDate(0, 0, 7)) }

// TestEveryWeekIsPostedAcrossDSTChanges runs each schedule's real cron
// activations through 2026, both DST changes included, and checks that every
// week's digest is posted once, in order: no week skipped where the
// activation moves across a week boundary in the digest's zone, or does not
// exist on the DST day.
func TestEveryWeekIsPostedAcrossDSTChanges(t *testing.T) {
	for _, tt := range []struct {
		name, spec, zone string
		// The weeks the year's first and last activations post; every
		// week between them must be posted once, in order. (Skipped before:
		// 2026-W09 in Adak and New York, 2026-W12 in Berlin.)
		first, last string
	}{
		// Monday 09:00 UTC is Sunday 23:00 in Adak in winter, Monday
		// 00:00 in summer.
		{"default schedule read in America/Adak", DefaultSchedule, "America/Adak", "2026-W01", "2026-W51"},
		{"Monday 04:00 UTC read in America/New_York", "CRON_TZ=UTC 0 4 * * MON", "America/New_York", "2026-W01", "2026-W51"},
		// 02:30 does not exist on 2026-03-29; cron skips that activation.
		{"Sunday 02:30 in Berlin, nonexistent on the DST day", "CRON_TZ=Europe/Berlin 30 2 * * SUN", "Europe/Berlin", "2026-W01", "2026-W51"},
		{"default schedule in UTC", DefaultSchedule, "UTC", "2026-W02", "2026-W52"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := time.LoadLocation(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC) // Monday of 2026-W02, after its 09:00 activation
			b := newBotWith(t, start, tt.spec, loc)
			b.catchUp() // records when the bot began: 2026-W02
			end := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			for at := b.sched.cfg.Schedule.Next(start); at.Before(end); at = b.sched.cfg.Schedule.Next(at) {
				b.clock.Set(at)
				b.fire()
				b.runJobs()
			}
			wantConsecutive(t, b.postedWeeks(), tt.first, tt.last)
		})
	}
}

// TestCatchUpPostsEveryMissedWeek: downtime over several activations posts
// every week missed since the last one posted, oldest first, once each (a
// restart and a late activation add nothing); a longer outage posts only
// the last MaxCatchUpWeeks weeks.
func TestCatchUpPostsEveryMissedWeek(t *testing.T) {
	b := newBot(t, utc("2026-11-10 12:00")) // running in 2026-W46
	b.catchUp()
	b.clock.Set(utc("2026-11-16 09:00"))
	b.fire()
	b.runJobs()
	wantConsecutive(t, b.postedWeeks(), "2026-W46", "2026-W46")

	b.restart() // down from Monday of W47...
	b.clock.Set(utc("2026-12-01 10:00"))
	// ...to Tuesday of W49: the activations that post W47 and W48 were
	// missed.
	if !b.catchUp() {
		t.Fatal("the missed digests were not queued")
	}
	b.runJobs()
	b.restart()
	if b.catchUp() || b.fire() {
		t.Error("a missed week was queued twice")
	}
	b.runJobs()
	wantConsecutive(t, b.postedWeeks(), "2026-W46", "2026-W48")

	b.restart() // down for longer than MaxCatchUpWeeks
	b.clock.Set(utc("2027-01-19 10:00"))
	b.catchUp()
	b.runJobs()
	weeks := b.postedWeeks()[3:]
	wantConsecutive(t, weeks, "2026-W52", "2027-W02") // 2026 has 53 ISO weeks
	if len(weeks) != MaxCatchUpWeeks {
		t.Fatalf("after a long outage %d weeks were posted, want %d: %v", len(weeks), MaxCatchUpWeeks, weeks)
	}
}
