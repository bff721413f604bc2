package slack

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/incidentbot/incident-bot/internal/incident"
)

func TestSafeText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain text", "plain text"},
		// Slack-escaped input stays as it is (no double escaping).
		{"a &lt;b&gt; &amp; c", "a &lt;b&gt; &amp; c"},
		// Raw input from elsewhere is escaped.
		{"CPU > 90% & rising <fast>", "CPU &gt; 90% &amp; rising &lt;fast&gt;"},
		// Broadcasts and group mentions cannot fire.
		{"<!here> look", "@\u200bhere look"},
		{"<!channel>", "@\u200bchannel"},
		{"<!everyone|everyone>", "@\u200beveryone"},
		{"ping <!subteam^S0123ABC|@sre-oncall>", "ping @\u200bsre-oncall"},
		{"ping <!subteam^S0123ABC>", "ping @\u200bgroup"},
		// Mentions and channels survive (Slack shows the real names).
		{"<@U024BE7LH> and <@W123|bob>", "<@U024BE7LH> and <@W123>"},
		{"see <#C012AB3CD|general>", "see <#C012AB3CD>"},
		// Links show where they go: a label that is not the address is
		// text, followed by the address.
		{"<https://example.com/a?b=1&amp;c=2>", "<https://example.com/a?b=1&amp;c=2>"},
		{"<https://example.com/a?b=1&amp;c=2|the dashboard>", "the dashboard (<https://example.com/a?b=1&amp;c=2>)"},
		{"<https://evil.example/phish|https://status.example.com/ok>", "https://status.example.com/ok (<https://evil.example/phish>)"},
		{"<http://example.com|example.com>", "<http://example.com|example.com>"},
		{"<mailto:a@example.com|a@example.com>", "<mailto:a@example.com|a@example.com>"},
		{"<mailto:a@evil.example|security@example.com>", "security@example.com (<mailto:a@evil.example>)"},
		// A date token may carry a link: only its fallback is shown.
		{"<!date^1392734382^{date}|Feb 18>", "Feb 18"},
		{"<!date^1392734382^{date}^https://evil.example|Feb 18>", "Feb 18"},
		// Anything else in angle brackets is shown, not interpreted.
		{"<javascript:alert(1)>", "&lt;javascript:alert(1)&gt;"},
		{"<U024BE7LH>", "&lt;U024BE7LH&gt;"},
		{"unclosed <!here", "unclosed &lt;!here"},
		{"nested <<!here>>", "nested &lt;@\u200bhere&gt;"},
		{"<!unknown|label>", "label"},
		{"<https://x.test|<!channel>>", "&lt;https://x.test|@\u200bchannel&gt;"},
	}
	for _, tc := range cases {
		if got := SafeText(tc.in); got != tc.want {
			t.Errorf("SafeText(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if again := SafeText(SafeText(tc.in)); again != SafeText(tc.in) {
			t.Errorf("SafeText not idempotent on %q: %q", tc.in, again)
		}
	}
}

// EscapeText escapes stored (decoded) text exactly once.
func TestEscapeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"R&D portal down", "R&amp;D portal down"},
		{"a &lt;b&gt; typed literally", "a &amp;lt;b&amp;gt; typed literally"},
		{"CPU > 90% & rising <fast>", "CPU &gt; 90% &amp; rising &lt;fast&gt;"},
		{"T2 <https://evil.example/phish|https://status.example.com/ok>", "T2 https://status.example.com/ok (<https://evil.example/phish>)"},
		{"<https://a.example/?x=1&y=2|go>", "go (<https://a.example/?x=1&amp;y=2>)"},
		{"<!here> <@U024BE7LH> <#C012AB3CD>", "@\u200bhere <@U024BE7LH> <#C012AB3CD>"},
	} {
		if got := EscapeText(tc.in); got != tc.want {
			t.Errorf("EscapeText(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// broadcast reports whether s contains a token that would notify a crowd.
func broadcast(s string) bool {
	for _, tok := range []string{"<!here", "<!channel", "<!everyone", "<!group", "<!subteam"} {
		if strings.Contains(s, tok) {
			return true
		}
	}
	return false
}

func blocksJSON(t *testing.T, blocks []slackapi.Block) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(blocks); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func testIncident() *incident.Incident {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	return &incident.Incident{
		Number: 7, Title: "Checkout <!channel> down & out", Severity: incident.SEV2, Status: incident.StatusTriggered,
		Description: "Errors <!here> since 10:00", DeclaredBy: incident.Actor{ID: "U1", Source: incident.SourceSlack},
		Roles:      map[incident.Role]string{incident.RoleCommander: "U1"},
		DeclaredAt: at, DetectedAt: at, UpdatedAt: at,
		Chat:  incident.ChatRef{ChannelID: "C0INC7", ChannelName: "inc-7-checkout-down-out"},
		Pager: incident.PagerRef{System: "pagerduty", SystemName: "PagerDuty", URL: "https://acme.pagerduty.com/incidents/PGR0VU2", Number: 2},
	}
}

// Issue 14: the summary card's Page field names the pager that holds the
// page, whichever it is, not PagerDuty always.
func TestRenderSummaryNamesThePager(t *testing.T) {
	inc := testIncident()
	inc.Pager = incident.PagerRef{System: "opsgenie", SystemName: "Opsgenie", URL: "https://acme.app.opsgenie.com/alert/detail/42", Number: 42}
	js := blocksJSON(t, Render(incident.Message{Kind: incident.MessageSummary, Incident: inc}).Blocks)
	if !strings.Contains(js, "Opsgenie #42") || strings.Contains(js, "PagerDuty") {
		t.Errorf("the Page field does not name Opsgenie:\n%s", js)
	}
}

func TestRenderSummary(t *testing.T) {
	inc := testIncident()
	r := Render(incident.Message{Kind: incident.MessageSummary, Incident: inc})
	js := blocksJSON(t, r.Blocks)
	if broadcast(js) || broadcast(r.Text) {
		t.Fatalf("summary can notify a crowd:\n%s\n%s", r.Text, js)
	}
	for _, want := range []string{"INC-7", "SEV2", "Triggered", "down &amp; out", "<@U1>", "PagerDuty #2", `"action_id":"incident_ack"`, `"action_id":"incident_mitigate"`, `"action_id":"incident_resolve"`, `"action_id":"incident_lead"`, `"value":"INC-7"`} {
		if !strings.Contains(js, want) {
			t.Errorf("summary blocks lack %q:\n%s", want, js)
		}
	}
	if !strings.HasPrefix(r.Text, "INC-7 SEV2 triggered: Checkout") {
		t.Errorf("fallback text = %q", r.Text)
	}

	// Buttons follow the status: no Acknowledge once acknowledged, no
	// buttons at all once resolved.
	inc.Status = incident.StatusAcknowledged
	js = blocksJSON(t, Render(incident.Message{Kind: incident.MessageSummary, Incident: inc}).Blocks)
	if strings.Contains(js, "incident_ack") || !strings.Contains(js, "incident_resolve") {
		t.Errorf("acknowledged summary buttons wrong:\n%s", js)
	}
	inc.Status = incident.StatusResolved
	inc.ResolvedAt = inc.DeclaredAt.Add(time.Hour)
	js = blocksJSON(t, Render(incident.Message{Kind: incident.MessageSummary, Incident: inc}).Blocks)
	if strings.Contains(js, `"type":"actions"`) || !strings.Contains(js, "Resolved") {
		t.Errorf("resolved summary:\n%s", js)
	}
}

func TestRenderAnnouncementLinksChannel(t *testing.T) {
	r := Render(incident.Message{Kind: incident.MessageAnnouncement, Incident: testIncident()})
	if !strings.Contains(r.Text, "<#C0INC7>") || !strings.Contains(blocksJSON(t, r.Blocks), "<#C0INC7>") {
		t.Fatalf("announcement does not link the channel: %q", r.Text)
	}
	if broadcast(r.Text) || broadcast(blocksJSON(t, r.Blocks)) {
		t.Fatalf("announcement can notify a crowd: %q", r.Text)
	}
}

func TestRenderStaysWithinSlackLimits(t *testing.T) {
	long := strings.Repeat("word <!here> & ", 1000) // ~15k characters
	var events []incident.Event
	for i := range 60 {
		events = append(events, incident.Event{Incident: 7, Seq: int64(i), Kind: incident.EventNote, Text: long,
			Actor: incident.Actor{ID: "U1", Source: incident.SourceSlack}, At: time.Unix(1_800_000_000, 0)})
	}
	inc := testIncident()
	inc.Title = strings.Repeat("t", 200)
	inc.Description = long
	for _, m := range []incident.Message{
		{Kind: incident.MessageEvents, Incident: inc, Events: events},
		{Kind: incident.MessageSummary, Incident: inc},
		{Kind: incident.MessageText, Text: strings.Repeat(long, 5)},
	} {
		r := Render(m)
		if len(r.Blocks) > MaxBlocks {
			t.Errorf("kind %d: %d blocks", m.Kind, len(r.Blocks))
		}
		if n := utf8.RuneCountInString(r.Text); n > MaxText {
			t.Errorf("kind %d: text of %d characters", m.Kind, n)
		}
		var decoded []map[string]any
		if err := json.Unmarshal([]byte(blocksJSON(t, r.Blocks)), &decoded); err != nil {
			t.Fatal(err)
		}
		for _, b := range decoded {
			if txt, ok := b["text"].(map[string]any); ok {
				if n := utf8.RuneCountInString(txt["text"].(string)); n > MaxSectionText {
					t.Errorf("kind %d: section of %d characters", m.Kind, n)
				}
			}
		}
		if broadcast(r.Text) || broadcast(blocksJSON(t, r.Blocks)) {
			t.Errorf("kind %d can notify a crowd", m.Kind)
		}
	}
}

func TestCutKeepsTokensWhole(t *testing.T) {
	s := strings.Repeat("a", 10) + "<@U0123456789>" + "tail"
	for n := 5; n < len(s); n++ {
		got := cut(s, n)
		if strings.Count(got, "<") != strings.Count(got, ">") {
			t.Fatalf("cut(%d) = %q splits a token", n, got)
		}
		if utf8.RuneCountInString(got) > n {
			t.Fatalf("cut(%d) = %q is too long", n, got)
		}
	}
	if got := cut("x &amp; y", 5); strings.Contains(got, "&am") && !strings.Contains(got, "&amp;") {
		t.Fatalf("cut split an entity: %q", got)
	}
}

func TestRenderCardButtonsCarryOnlyRunID(t *testing.T) {
	r := RenderCard(Card{Text: "*Confirm: restart* <!subteam^S1|@sre>", RunID: "01HRUN", Buttons: ConfirmButtons})
	js := blocksJSON(t, r.Blocks)
	for _, want := range []string{`"action_id":"runbook_confirm"`, `"action_id":"runbook_cancel"`, `"value":"01HRUN"`, "<!subteam^S1|@sre>"} {
		if !strings.Contains(js, want) {
			t.Errorf("card lacks %s:\n%s", want, js)
		}
	}
	r = RenderCard(Card{Text: "x", RunID: "R2", Buttons: ApproveButtons})
	js = blocksJSON(t, r.Blocks)
	if !strings.Contains(js, "runbook_approve") || !strings.Contains(js, "runbook_deny") {
		t.Errorf("approval card:\n%s", js)
	}
}

func TestTSTime(t *testing.T) {
	got := TSTime("1531420618.000200")
	if !got.Equal(time.Unix(1531420618, 200_000)) {
		t.Fatalf("TSTime = %v", got)
	}
	if !TSTime("nope").IsZero() {
		t.Fatal("malformed ts should be zero")
	}
}

// FuzzEscapeText: whatever stored text comes in, the mrkdwn that goes out
// has every & as an entity, no < or > outside a token, no broadcast or
// special token, only mentions, channel links and links whose label is
// their own address; and EscapeText keeps every character of plain text
// (nothing is lost but markup).
func FuzzEscapeText(f *testing.F) {
	for _, s := range []string{
		"R&D portal down", "a &lt;b&gt; &amp;", "T2 <https://evil.example/phish|https://status.example.com/ok>",
		"<mailto:a@evil.example|security@example.com>", "<!here> <!subteam^S1|@sre> <!date^1^{date}^https://x|d>",
		"<@U024BE7LH|bob> <#C012AB3CD|general>", "<<@U1>> <https://a|<!here>> <http://x|x> <https://x|y|z>", "<", ">", "&",
	} {
		f.Add(s)
	}
	tokenRE := regexp.MustCompile(`<([^<>]*)>`)
	f.Fuzz(func(t *testing.T, s string) {
		out := EscapeText(s)
		rest := tokenRE.ReplaceAllStringFunc(out, func(tok string) string {
			inner := tok[1 : len(tok)-1]
			target, label, labelled := strings.Cut(inner, "|")
			switch {
			case userToken.MatchString(inner) && !labelled, channelToken.MatchString(inner) && !labelled:
			case linkToken.MatchString(inner):
				if labelled && !honestLabel(decodeEntities(label), decodeEntities(target)) {
					t.Fatalf("EscapeText(%q) = %q: link %s labelled %q", s, out, target, label)
				}
			default:
				t.Fatalf("EscapeText(%q) = %q: token %s", s, out, tok)
			}
			return ""
		})
		if strings.ContainsAny(rest, "<>") {
			t.Fatalf("EscapeText(%q) = %q: a bare < or >", s, out)
		}
		for i := range len(out) {
			if out[i] == '&' && !entity(out[i:]) {
				t.Fatalf("EscapeText(%q) = %q: a bare & at %d", s, out, i)
			}
		}
		if !strings.ContainsAny(s, "<>&") && out != s {
			t.Fatalf("EscapeText(%q) = %q changed plain text", s, out)
		}
	})
}
