package incident_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestCatchupGolden(t *testing.T) {
	now := incidenttest.CatchupStart.Add(55 * time.Minute)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database")
	}
	for _, c := range []struct {
		name string
		long bool
		opt  incident.CatchupOptions
	}{
		// carol joined at 14:40: what changed is told from then.
		{"catchup-joined", false, incident.CatchupOptions{Now: now, User: "U0CAROL"}},
		// someone who never joined (the declarer) sees no "since" section.
		{"catchup-no-since", false, incident.CatchupOptions{Now: now, User: "U0ALICE"}},
		// an explicit since wins over the join, in the reader's zone.
		{"catchup-since-30m", false, incident.CatchupOptions{Now: now, User: "U0CAROL", Since: now.Add(-30 * time.Minute), Location: berlin}},
		// a long incident: every section capped, earlier entries counted.
		{"catchup-long", true, incident.CatchupOptions{Now: now.Add(40 * time.Minute), User: "U0CAROL"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			inc, events := incidenttest.CatchupFixture(c.long)
			cu := incident.BuildCatchup(inc, events, c.opt)
			incidenttest.Golden(t, c.name+".txt", []byte(cu.Text()+"\n"), *update)
			structure, err := json.MarshalIndent(cu, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			incidenttest.Golden(t, c.name+".json", append(structure, '\n'), *update)
			// Deterministic: the same record gives the same text.
			again := incident.BuildCatchup(inc, events, c.opt)
			if again.Text() != cu.Text() {
				t.Fatal("two catch-ups of the same record differ")
			}
		})
	}
}

func TestCatchupSections(t *testing.T) {
	inc, events := incidenttest.CatchupFixture(false)
	now := incidenttest.CatchupStart.Add(55 * time.Minute)
	cu := incident.BuildCatchup(inc, events, incident.CatchupOptions{Now: now, User: "U0CAROL"})
	if !cu.SinceJoined || !cu.Since.Equal(incidenttest.CatchupStart.Add(40*time.Minute)) {
		t.Fatalf("since = %s (joined %v), want carol's join at 14:40", cu.Since, cu.SinceJoined)
	}
	text := cu.Text()
	for _, want := range []string{
		"SEV1 · mitigated", "commander <@U0ALICE> · comms <@U0BOB> · scribe nobody",
		"*Impact:* EU customers cannot pay", "(14:32) from <@U0BOB>: Mitigated: payments succeed again.",
		"`restart-payments` *failed* (exit 1)", "`rollback` *succeeded*",
		"#1 Add a canary stage · <@U0BOB> · due 2026-11-30 *(overdue)*", "#3 Write the runbook for rollbacks · no owner",
		"*Since you joined (14:40)*", "14:45 Note from <@U0DAN>: error rate back to baseline",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("catch-up lacks %q:\n%s", want, text)
		}
	}
	for _, not := range []string{"Alert on 502 rate", "14:32 *Status update*" /* before the join: not a change */} {
		if strings.Contains(text, not) {
			t.Errorf("catch-up shows %q:\n%s", not, text)
		}
	}
	if strings.Contains(text[strings.Index(text, "*Since you joined"):], "joined the channel") {
		t.Error("joins are told as changes")
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"30m", now.Add(-30 * time.Minute)},
		{"2h", now.Add(-2 * time.Hour)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"90 minutes", now.Add(-90 * time.Minute)},
		{"45m ago", now.Add(-45 * time.Minute)},
		{"14:05", time.Date(2026, 12, 1, 14, 5, 0, 0, time.UTC)},
		{"16:00", time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)}, // the last 16:00: yesterday
		{"2026-12-01T13:05:00Z", time.Date(2026, 12, 1, 13, 5, 0, 0, time.UTC)},
	} {
		got, err := incident.ParseSince(c.in, now, time.UTC)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseSince(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"30mm", "2x", "yesterdayish", "25:00", "-5m", "0m", "2026-12-02T13:05:00Z", ""} {
		_, err := incident.ParseSince(in, now, time.UTC)
		if incident.ErrorCode(err) != incident.EINVALID || !strings.Contains(incident.ErrorMessage(err), "`30m`") && !strings.Contains(incident.ErrorMessage(err), "future") {
			t.Errorf("ParseSince(%q) error = %v, want a clear EINVALID", in, err)
		}
	}
}

func TestOfferCatchup(t *testing.T) {
	start := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	joined := func(user string, after time.Duration) incident.Event {
		return incident.Event{Kind: incident.EventMemberJoined, At: start.Add(after), Actor: incident.Actor{ID: user, Source: incident.SourceSlack}}
	}
	inc := func() *incident.Incident {
		return &incident.Incident{Number: 7, Status: incident.StatusAcknowledged, DeclaredAt: start,
			Chat: incident.ChatRef{ChannelID: "C1", InvitedAtCreation: []string{"U0ALICE"}, Invited: []string{"U0ALICE", "U0BOB"}}}
	}
	resolved := inc()
	resolved.Status = incident.StatusResolved
	legacy := inc()
	legacy.Chat.InvitedAtCreation = nil
	nobody := inc() // an alert's incident: nobody to invite with the channel
	nobody.Chat.InvitedAtCreation = []string{}
	pager := joined("P1", 20*time.Minute)
	pager.Actor.Source = incident.SourcePagerDuty
	for _, c := range []struct {
		name string
		inc  *incident.Incident
		ev   incident.Event
		want bool
	}{
		{"late joiner", inc(), joined("U0CAROL", 11*time.Minute), true},
		{"at ten minutes", inc(), joined("U0CAROL", 10*time.Minute), false},
		{"early", inc(), joined("U0CAROL", 3*time.Minute), false},
		{"invited with the channel", inc(), joined("U0ALICE", time.Hour), false},
		// bob was invited later (given a role): he missed the start.
		{"invited later", inc(), joined("U0BOB", time.Hour), true},
		{"invited, before the list was kept", legacy, joined("U0BOB", time.Hour), false},
		{"invited later, nobody at creation", nobody, joined("U0BOB", time.Hour), true},
		{"resolved", resolved, joined("U0CAROL", time.Hour), false},
		{"not a chat user", inc(), pager, false},
		{"not a join", inc(), incident.Event{Kind: incident.EventNote, At: start.Add(time.Hour), Actor: incident.Actor{ID: "U0CAROL", Source: incident.SourceSlack}}, false},
	} {
		if got := incident.OfferCatchup(c.inc, c.ev); got != c.want {
			t.Errorf("%s: OfferCatchup = %v, want %v", c.name, got, c.want)
		}
	}
}

// The hook enqueues one offer job per person and incident, whatever the
// number of joins, and the chat sync records who was invited with the
// channel.
func TestCatchupOfferHookOncePerPerson(t *testing.T) {
	svc, store, clock := newService(t)
	svc.AddHook(incident.CatchupOfferHook("test.offer"))
	ctx := context.Background()
	inc, err := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
	if err != nil {
		t.Fatal(err)
	}
	sync := &incident.ChatSync{Store: store, Chat: incidenttest.NewChat(), Clock: clock}
	if err := sync.Sync(ctx, inc.Number); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Get(ctx, incident.Ref{Number: inc.Number}); !slices.Equal(got.Chat.InvitedAtCreation, []string{alice.ID}) {
		t.Fatalf("invited at creation = %v, want the declarer", got.Chat.InvitedAtCreation)
	}
	// An incident nobody declared in chat has nobody to invite with its
	// channel: the empty list survives the store (it is not "unknown").
	alert, err := svc.Declare(ctx, incident.Declaration{Title: "disk full", By: incident.Actor{ID: "PD1", Source: incident.SourcePagerDuty}, Triggered: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sync.Sync(ctx, alert.Number); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Get(ctx, incident.Ref{Number: alert.Number}); got.Chat.InvitedAtCreation == nil || len(got.Chat.InvitedAtCreation) != 0 {
		t.Fatalf("invited at creation of an alert's incident = %#v, want empty", got.Chat.InvitedAtCreation)
	}
	clock.Advance(30 * time.Minute)
	before := pending(t, store)
	for i, user := range []string{"U0CAROL", "U0CAROL", alice.ID, "U0DAN"} {
		ev := incident.Event{Kind: incident.EventMemberJoined, Key: fmt.Sprintf("join-%d", i), Actor: incident.Actor{ID: user, Source: incident.SourceSlack}, Quiet: true}
		if _, err := svc.Record(ctx, incident.Ref{Number: inc.Number}, ev); err != nil {
			t.Fatal(err)
		}
	}
	var users []string
	for _, user := range []string{"U0CAROL", alice.ID, "U0DAN"} {
		err := store.View(ctx, func(tx incident.Tx) error {
			_, ok, err := tx.Key(incident.CatchupOfferKey(inc.Number, user))
			if ok {
				users = append(users, user)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(users, []string{"U0CAROL", "U0DAN"}) {
		t.Fatalf("offers recorded for %v, want carol and dan", users)
	}
	if after := pending(t, store); after-before != 2 {
		t.Fatalf("%d jobs enqueued by four joins, want 2 offers", after-before)
	}
}

func pending(t *testing.T, store incident.Store) int {
	t.Helper()
	var n int
	if err := store.View(context.Background(), func(tx incident.Tx) error {
		var err error
		n, err = tx.PendingJobs()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
