package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/app/apptest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/shell"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// textWorld is a fake Slack workspace and PagerDuty account with the bot
// serving them, for following text from outside to where it is shown.
type textWorld struct {
	*pdWorld
	bot      *pdBot
	announce string
}

func newTextWorld(t testing.TB) *textWorld {
	w := &textWorld{pdWorld: newPDWorld(t)}
	w.announce = w.slack.AddChannel("incidents", false, "U0ALICE", w.slack.BotUserID())
	cfg := w.config(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{"BOT_ANNOUNCE_CHANNEL": w.announce})
	rates := map[string]slack.Rate{slack.ChannelRateKey: {PerMinute: 60000, Burst: 1000}}
	for m := range slack.MethodRates {
		rates[m] = slack.Rate{PerMinute: 60000, Burst: 1000}
	}
	// A fuzz target may not log to its *F once it runs inputs.
	ab := apptest.Start(t, cfg, zap.NewNop(), app.Options{
		Clock: w.clock, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond, SlackRates: rates,
	}, 10*time.Second)
	w.bot = &pdBot{Bot: ab}
	w.bot.hooks = &pdtest.Sender{URL: "http://" + ab.Addr + "/webhooks/pagerduty", Secrets: []string{pdWebhookSecret}}
	w.bot.slack = &slacktest.Sender{BaseURL: "http://" + ab.Addr, Secret: pdSigningSecret, Fake: w.slack, Now: w.clock.Now}
	return w
}

// settle waits until every job due has run.
func (w *textWorld) settle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !w.bot.settled(w.clock.Now()) {
		if time.Now().After(deadline) {
			t.Fatal("the bot did not settle")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var declaredRE = regexp.MustCompile(`^Declared \*INC-(\d+)\*`)

// declare runs `/incident declare <title>` as Slack sends it and returns
// the incident, or nil if the command declared nothing.
func (w *textWorld) declare(t testing.TB, title string) *incident.Incident {
	t.Helper()
	r, err := w.bot.slack.Command(context.Background(), slacktest.Command{User: "U0ALICE", UserName: "alice", Channel: w.general, Text: "declare " + title})
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("declare: %v %d %s", err, r.Status, r.Body)
	}
	m := declaredRE.FindStringSubmatch(r.Text())
	if m == nil {
		return nil
	}
	w.settle(t)
	inc, err := w.bot.App.Service().Get(context.Background(), incident.Ref{Number: atoi(m[1])})
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

// trigger opens a PagerDuty incident titled title and returns the bot's
// incident for it.
func (w *textWorld) trigger(t testing.TB, title string) *incident.Incident {
	t.Helper()
	pi := w.pd.Trigger("PSVC001", title)
	w.bot.deliver(t, w.pdWorld)
	w.settle(t)
	var found *incident.Incident
	incs, err := w.bot.App.Service().List(context.Background(), incident.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, inc := range incs {
		if inc.Pager.IncidentID == pi.ID {
			found = inc
		}
	}
	if found == nil {
		t.Fatalf("no incident for PagerDuty's %s", pi.ID)
	}
	return found
}

func atoi(s string) int64 {
	var n int64
	fmt.Sscan(s, &n)
	return n
}

// shown is every mrkdwn text the bot posted about inc: its messages in
// the incident channel and its announcement, text and blocks.
func (w *textWorld) shown(t testing.TB, inc *incident.Incident) []string {
	t.Helper()
	var out []string
	add := func(m slacktest.Message) {
		out = append(out, m.Text)
		var blocks any
		if len(m.Blocks) > 0 {
			if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
				t.Fatalf("blocks %s: %v", m.Blocks, err)
			}
		}
		collectTexts(blocks, &out)
	}
	for _, m := range botMessages(w.slack, inc.Chat.ChannelID) {
		add(m)
	}
	for _, m := range botMessages(w.slack, w.announce) {
		if strings.Contains(m.Text, inc.ID()+" ") {
			add(m)
		}
	}
	if len(out) == 0 {
		t.Fatalf("nothing posted about %s", inc.ID())
	}
	return out
}

func collectTexts(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "text" {
				*out = append(*out, s)
			} else {
				collectTexts(x, out)
			}
		}
	case []any:
		for _, x := range v {
			collectTexts(x, out)
		}
	}
}

var (
	tokenRE = regexp.MustCompile(`<([^<>]*)>`)
	// The bot's own date tokens: no link, a UTC fallback.
	botDateRE = regexp.MustCompile(`^!date\^\d+\^\{[a-z_]+\}( \{time\})?\|\d{4}-\d\d-\d\d \d\d:\d\d UTC$`)
)

var unescapeSlack = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// checkShown asserts what outside text may do once posted: no control or
// bidirectional formatting character, no broadcast, no mention of someone
// the input did not mention (or the bot's own roles), and no link whose
// label is not its own address except the bot's own link to PagerDuty; a
// link's target is always one the input named. fromSlack says the input
// came as Slack sends text (escaped), else as PagerDuty does (raw).
func checkShown(t testing.TB, input string, fromSlack bool, inc *incident.Incident, texts []string) {
	t.Helper()
	decoded := input
	if fromSlack {
		decoded = unescapeSlack.Replace(input)
	}
	for _, s := range texts {
		for _, r := range s {
			if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) || incident.IsBidiControl(r) {
				t.Fatalf("posted %U from %q: %q", r, input, s)
			}
		}
		for _, m := range tokenRE.FindAllStringSubmatch(s, -1) {
			tok := m[1]
			target, label, labelled := strings.Cut(tok, "|")
			switch {
			case strings.HasPrefix(tok, "@"):
				id := tok[1:]
				if id != "U0ALICE" && !strings.Contains(decoded, "<@"+id) {
					t.Fatalf("posted a mention of %s that %q does not make: %q", id, input, s)
				}
			case strings.HasPrefix(tok, "#"):
				if id := tok[1:]; id != inc.Chat.ChannelID && !strings.Contains(decoded, "<#"+id) {
					t.Fatalf("posted a channel link %s that %q does not make: %q", id, input, s)
				}
			case strings.HasPrefix(tok, "!"):
				if !botDateRE.MatchString(tok) {
					t.Fatalf("posted special token <%s> from %q: %q", tok, input, s)
				}
			case strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:"):
				plain := unescapeSlack.Replace(target)
				if inc.Pager.URL != "" && plain == inc.Pager.URL {
					continue // the bot's own link to PagerDuty
				}
				if !strings.Contains(decoded, plain) {
					t.Fatalf("posted a link to %s that %q does not name: %q", target, input, s)
				}
				if labelled {
					l := unescapeSlack.Replace(label)
					if l != plain && "http://"+l != plain && "https://"+l != plain && "mailto:"+l != plain {
						t.Fatalf("posted a link to %s labelled %q from %q: %q", target, label, input, s)
					}
				}
			default:
				t.Fatalf("posted a token <%s> from %q: %q", tok, input, s)
			}
		}
	}
}

// checkTable asserts the CLI table of incs prints one line per incident
// and no raw control or bidirectional formatting character.
func checkTable(t testing.TB, incs []*incident.Incident) {
	t.Helper()
	var b bytes.Buffer
	tw := shell.NewTerminalWriter(&b)
	if err := shell.IncidentTable(tw, incs, time.UTC); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "\n"); n != len(incs)+1 {
		t.Fatalf("the table has %d lines for %d incidents:\n%s", n, len(incs), out)
	}
	for _, r := range out {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) || incident.IsBidiControl(r) {
			t.Fatalf("the table prints a raw %U: %q", r, out)
		}
	}
}

// Text people type in Slack and alerts send through PagerDuty is decoded
// once, cleaned, and shown for what it is.
func TestOutsideTextIsShownForWhatItIs(t *testing.T) {
	w := newTextWorld(t)
	ctx := context.Background()

	// Slack sends "R&D" as "R&amp;D": stored and listed as R&D, named
	// r-d, posted escaped exactly once.
	inc := w.declare(t, "sev2 R&amp;D portal down")
	if inc == nil || inc.Title != "R&D portal down" || inc.Chat.ChannelName != "inc-1-r-d-portal-down" {
		t.Fatalf("declared: %+v", inc)
	}
	if got := w.shown(t, inc); !strings.Contains(strings.Join(got, "\n"), "*R&amp;D portal down*") || strings.Contains(strings.Join(got, "\n"), "&amp;amp;") {
		t.Fatalf("posted: %q", got)
	}

	// A disguised link in a title, a note, a status update and a
	// follow-up shows where it goes; mentions work; broadcasts do not.
	const phish = "<https://evil.example/phish|https://status.example.com/ok>"
	const shown = "https://status.example.com/ok (<https://evil.example/phish>)"
	inc = w.declare(t, "sev3 T2 "+phish+" \u202egnp.exe")
	if inc == nil || inc.Title != "T2 "+phish+" gnp.exe" {
		t.Fatalf("declared: %+v", inc)
	}
	for _, c := range []string{
		"note see " + phish + " cc <@U0BOB> <!here>",
		"update mail <mailto:evil@evil.example|security@example.com> \x1b[2J now",
		"followup check " + phish,
	} {
		if r := w.bot.command(t, "U0ALICE", inc.Chat.ChannelID, c); strings.Contains(r, "Usage") {
			t.Fatalf("/incident %s: %s", c, r)
		}
	}
	// A pinned message, as Slack stores message text (escaped).
	ts := w.slack.UserPost(inc.Chat.ChannelID, "U0BOB", "R&amp;D says "+phish+" \x1b[31m")
	if r, err := w.bot.slack.Event(ctx, w.slack.ReactionAdded("EvTEXT1", "U0ALICE", "pushpin", inc.Chat.ChannelID, ts), 0); err != nil || r.Status != http.StatusOK {
		t.Fatalf("pin: %v %d", err, r.Status)
	}
	w.settle(t)
	inc, _ = w.bot.App.Service().Get(ctx, incident.Ref{Number: inc.Number})
	all := strings.Join(w.shown(t, inc), "\n")
	for _, want := range []string{"*T2 " + shown + " gnp.exe*", "see " + shown + " cc <@U0BOB> @\u200bhere", "security@example.com (<mailto:evil@evil.example>)", "check " + shown,
		"message from <@U0BOB>: R&amp;D says " + shown} {
		if !strings.Contains(all, want) {
			t.Errorf("posted text lacks %q:\n%s", want, all)
		}
	}
	checkShown(t, "T2 "+phish+" see "+phish+" cc <@U0BOB> <mailto:evil@evil.example|security@example.com>", true, inc, w.shown(t, inc))

	// An alert's title: the same.
	const alert = "Disk full <https://evil.example/x|https://grafana.example.com/d> <!channel> \x1b]0;pwned\x07\u202e"
	inc = w.trigger(t, alert)
	if inc.Title != "Disk full <https://evil.example/x|https://grafana.example.com/d> <!channel> ]0;pwned" {
		t.Fatalf("stored PagerDuty title %q", inc.Title)
	}
	all = strings.Join(w.shown(t, inc), "\n")
	if !strings.Contains(all, "https://grafana.example.com/d (<https://evil.example/x>)") || !strings.Contains(all, "@\u200bchannel") {
		t.Errorf("posted alert:\n%s", all)
	}
	checkShown(t, alert, false, inc, w.shown(t, inc))

	incs, err := w.bot.App.Service().List(ctx, incident.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, incs)
}

// FuzzTextPath follows text from outside, as a slash command's title and
// as a PagerDuty incident's title, to the Slack messages the bot posts and
// to the CLI table, and checks that no link target, mention, broadcast or
// control character survives that was not meant to. The seeds run in
// `go test`; fuzz with `go test -fuzz FuzzTextPath ./internal/app`.
func FuzzTextPath(f *testing.F) {
	for _, s := range []string{
		"db down",
		"R&amp;D portal down",
		"T2 <https://evil.example/phish|https://status.example.com/ok>",
		"<mailto:evil@evil.example|security@example.com> <mailto:a@example.com|a@example.com>",
		"<http://example.com|example.com> <https://example.com/a?b=1&amp;c=2|dash>",
		"<!here> <!channel> <!everyone> <!subteam^S0123|@sre> <!date^1392734382^{date}^https://evil.example|Feb 18>",
		"<@U0BOB> and <@U0CAROL|carol> and <#C0000001|general>",
		"\x1b[2J\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x00 \u202e\u2066\u200f",
		"line one\nline two\r\n```\n# heading",
		"<https://a.example|<!here>> <<@U0BOB>> &lt;!here&gt; &amp;lt;",
		"<javascript:alert(1)|ok> <ftp://x|y> <https://x|y|z>",
		"\xff\xfe bad bytes \u0085 \u2028",
	} {
		f.Add(s)
	}
	w := newTextWorld(f)
	f.Fuzz(func(t *testing.T, title string) {
		if len(title) > 2000 {
			return
		}
		var touched []*incident.Incident
		if inc := w.declare(t, "sev3 "+title); inc != nil {
			checkShown(t, title, true, inc, w.shown(t, inc))
			touched = append(touched, inc)
		}
		inc := w.trigger(t, title)
		checkShown(t, title, false, inc, w.shown(t, inc))
		checkTable(t, append(touched, inc))
	})
}
