package postmortem

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

func reviewText(text string) []Finding {
	inc := &incident.Incident{Number: 1, Title: "Checkout down"}
	events := []incident.Event{
		{Incident: 1, Kind: incident.EventDeclared, Actor: alice, Text: "Checkout down"},
		{Incident: 1, Kind: incident.EventNote, Actor: bob, Text: text, At: at("10:00:00")},
	}
	when := func(t time.Time) string { return t.UTC().Format(timeFormat) }
	return review(inc, events, peopleOf(inc, events), when)
}

func TestReviewFindsBlame(t *testing.T) {
	tests := []struct {
		text       string
		rule       string
		phrase     string
		wantQuoted string
	}{
		{"Root cause: human error during the deploy.", "human error", "human error", "Root cause: human error during the deploy."},
		{"It was Human-Error, plain and simple", "human error", "Human-Error", ""},
		{"He should have checked the dashboard first.", "hindsight", "should have", ""},
		{"we shouldn't have skipped staging", "hindsight", "shouldn't have", ""},
		{"they should’ve known", "hindsight", "should’ve", ""},
		{"Why didn't anyone look at the graphs?", "hindsight", "Why didn't anyone", ""},
		{"a careless change to the config", "judging the person", "careless", ""},
		{"That was sloppy work", "judging the person", "sloppy", ""},
		{"pretty negligent of ops", "judging the person", "negligent", ""},
		{"It's Bob's fault.", "fault or blame", "Bob's fault", ""},
		{"it was <@U02BOB>'s mistake", "fault or blame", "<@U02BOB>'s mistake", ""},
		{"my fault, sorry", "fault or blame", "my fault", ""},
		{"we blame it on the intern", "fault or blame", "blame it on", ""},
		{"the DBA forgot to raise the limit", "a missed step", "forgot to", ""},
		{"on-call ignored the alerts for an hour", "a missed step", "ignored the alerts", ""},
		{"the deployer failed to follow the runbook", "a missed step", "failed to", ""},
		{"someone fat-fingered the region", "a mistake", "fat-fingered", ""},
		{"ops dropped the ball here", "a mistake", "dropped the ball", ""},
		{"The root cause is the pool limit", "single root cause", "root cause", ""},
		{"This was caused by <@U04DAVE> pushing on Friday", "a person as the cause", "caused by <@U04DAVE>", ""},
		{"because of @dave the cache was flushed", "a person as the cause", "because of @dave", ""},
		{"Bob Martin broke prod", "a person as the cause", "Bob Martin broke", ""},
		{"U01ALICE deployed without review", "a person as the cause", "U01ALICE deployed", ""},
		{"human error by <@U02BOB|bob> again", "a person as the cause", "error by <@U02BOB|bob>", ""},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := reviewText(tt.text)
			i := slices.IndexFunc(got, func(f Finding) bool { return f.Rule == tt.rule })
			if i < 0 {
				t.Fatalf("no %q finding in %+v", tt.rule, got)
			}
			f := got[i]
			if f.Phrase != tt.phrase {
				t.Errorf("phrase = %q, want %q", f.Phrase, tt.phrase)
			}
			if f.Suggestion == "" {
				t.Error("no suggested reframing")
			}
			if f.Where != "Note by Bob Martin, 2026-11-20 10:00:00" {
				t.Errorf("where = %q", f.Where)
			}
			want := tt.wantQuoted
			if want == "" {
				want = tt.text
			}
			if f.Quote != want {
				t.Errorf("quote = %q, want the people's text %q", f.Quote, want)
			}
		})
	}
}

func TestReviewLeavesBlamelessTextAlone(t *testing.T) {
	for _, text := range []string{
		"It was nobody's fault; the pool default was too low.",
		"No one's fault: the alert was routed to an old rotation.",
		"We run blameless postmortems.",
		"The deploy of 4f2a changed the pool size from 500 to 50.",
		"Error budget: 0.2% of requests failed.",
		"Contributing factors: the canary stage was skipped and the alert fired late.",
		"Alice rolled back the deploy at 10:25.",
		"The faulty disk was replaced.",
	} {
		if got := reviewText(text); len(got) > 0 {
			t.Errorf("%q: unexpected findings %+v", text, got)
		}
	}
}

func TestReviewQuotesTheSentenceOnly(t *testing.T) {
	text := "Latency rose at 09:56. Error rate 0.2% at first.\nThen Dave should have paged the DB team! Everything else went fine."
	got := reviewText(text)
	if len(got) != 1 {
		t.Fatalf("findings = %+v", got)
	}
	if want := "Then Dave should have paged the DB team!"; got[0].Quote != want {
		t.Errorf("quote = %q, want %q", got[0].Quote, want)
	}
}

func TestReviewCutsLongSentences(t *testing.T) {
	text := strings.Repeat("very long context ", 30) + "and then human error happened " + strings.Repeat("with more words after it ", 20)
	got := reviewText(text)
	if len(got) != 1 {
		t.Fatalf("findings = %+v", got)
	}
	q := got[0].Quote
	if !strings.HasPrefix(q, "…") || !strings.HasSuffix(q, "…") || !strings.Contains(q, "human error") || len([]rune(q)) > maxQuote+2 {
		t.Errorf("quote = %q (%d characters)", q, len([]rune(q)))
	}
	if !strings.Contains(text, strings.Trim(q, "…")) {
		t.Errorf("quote %q is not a verbatim part of the text", q)
	}
}

func TestReviewScansTitleDescriptionAndFollowups(t *testing.T) {
	inc := &incident.Incident{Number: 1, Title: "Human error in deploy", Description: "Somebody should have checked."}
	events := []incident.Event{
		{Incident: 1, Kind: incident.EventDeclared, Actor: alice, Text: "Human error in deploy"},
		{Incident: 1, Kind: incident.EventFollowupAdded, Actor: alice, Text: "Stop careless deploys", Data: map[string]string{"id": "1"}},
		{Incident: 1, Kind: incident.EventReminder, Actor: incident.BotActor, Text: "you should have posted an update"},
	}
	got := review(inc, events, peopleOf(inc, events), func(time.Time) string { return "t" })
	var where []string
	for _, f := range got {
		where = append(where, f.Where+": "+f.Rule)
	}
	want := []string{"Title: human error", "Description: hindsight", "Follow-up by Alice Ng, t: judging the person"}
	if !slices.Equal(where, want) {
		t.Errorf("findings at %q, want %q (the declaration repeats the title; the bot's own text is not reviewed)", where, want)
	}
}
