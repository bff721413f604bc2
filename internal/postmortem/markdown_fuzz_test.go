package postmortem_test

// The Markdown structure oracle is goldmark (github.com/yuin/goldmark), a
// CommonMark-compliant parser, with the GFM table, strikethrough and task
// list extensions that wikis use. It is a test-only dependency: an
// independent parser judges what our escaping produces.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/postmortem"
)

// documents runs title, text and name through what outside input goes
// through (slash commands to the command language and the incident use
// cases; a PagerDuty V3 webhook through the adapter's decoder) into the
// store, and renders the postmortem drafts of both incidents and the
// digest of the week. ok is false when the input is refused at the edge
// (an empty or too long title), which is not what this test is about.
func documents(t *testing.T, title, body, name string) (docs []string, ok bool) {
	t.Helper()
	ctx := context.Background()
	start := time.Date(2026, 11, 17, 9, 0, 0, 0, time.UTC)
	clock := incidenttest.NewClock(start)
	svc := incident.NewService(incident.ServiceConfig{Store: bolttest.Open(t), Clock: clock})
	disp := command.NewDispatcher(command.Config{Service: svc})
	actor := incident.Actor{ID: "U0ALICE", Name: name, Source: incident.SourceSlack}

	r := disp.Handle(ctx, command.Request{Text: "declare sev2 T " + title, Actor: actor, ChannelID: "C0GENERAL"})
	if r.Error {
		return nil, false
	}
	for _, cmd := range []string{"note x ", "update x ", "followup x ", "mitigate x ", "resolve x "} {
		clock.Advance(time.Minute)
		req := command.Request{Text: cmd + body, Actor: actor, ChannelID: "C0GENERAL"}
		if r := disp.Run(ctx, req, mustParse(t, req.Text, r.Incident.Number)); r.Error {
			return nil, false
		}
	}

	// The same text from PagerDuty: an incident's title, service and
	// agent, and a note on it.
	var env map[string]map[string]any
	if err := json.Unmarshal(pdtest.WithEvent("01PDTRIGGER", "incident.triggered"), &env); err != nil {
		t.Fatal(err)
	}
	data := env["event"]["data"].(map[string]any)
	data["title"] = "P " + title
	data["service"].(map[string]any)["summary"] = "svc " + name // never empty: "(none)" would merge two rows
	env["event"]["agent"].(map[string]any)["summary"] = name
	env["event"]["occurred_at"] = start.Add(10 * time.Minute).Format(time.RFC3339)
	raw, _ := json.Marshal(env)
	noteData, _ := json.Marshal(map[string]any{
		"incident": map[string]any{"id": "PGR0VU2", "type": "incident_reference", "summary": "P " + title, "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2"},
		"id":       "P2LA89X", "content": "x " + body, "trimmed": false, "type": "incident_note",
	})
	for _, b := range [][]byte{raw, pdtest.Envelope("01PDNOTE", "incident.annotated", &pdtest.Ref{ID: "PUSER1", Type: "user_reference", Summary: name}, string(noteData))} {
		d, err := pagerduty.Decode(b)
		if err != nil {
			t.Fatalf("decoding the webhook: %v", err)
		}
		clock.Advance(time.Minute)
		if _, err := svc.ApplyPagerEvent(ctx, d.PagerEvent(pagerduty.Severities{})); err != nil {
			if incident.ErrorCode(err) == incident.EINVALID {
				return nil, false
			}
			t.Fatalf("applying the webhook: %v", err)
		}
	}

	for n := int64(1); n <= 2; n++ {
		inc, events, err := svc.Timeline(ctx, incident.Ref{Number: n})
		if err != nil {
			t.Fatal(err)
		}
		pm, err := postmortem.Render(inc, events, "", postmortem.Options{Location: time.UTC, Now: clock.Now(), Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(pm.Body))
	}
	week := digest.WeekOf(start).Period(time.UTC)
	dg, err := digest.Generate(ctx, svc.Store(), week, digest.Options{Now: week.To})
	if err != nil {
		t.Fatal(err)
	}
	return append(docs, string(dg.Body)), true
}

func mustParse(t *testing.T, text string, n int64) command.Command {
	t.Helper()
	c, err := command.Parse(text, command.Options{})
	if err != nil {
		t.Fatalf("parsing %q: %v", text, err)
	}
	c.Incident = n
	return c
}

var md = goldmark.New(goldmark.WithExtensions(extension.Table, extension.Strikethrough, extension.TaskList))

// structure lists the Markdown nodes of doc other than text, in document
// order, by kind (headings with their level), for comparing two renderings
// whose text differs. The "<br>" the cell function puts in table cells is
// the template's, not structure from the text. The blameless review at the
// end is left out: what it lists depends on the words people used.
func structure(doc string) []string {
	if i := strings.LastIndex(doc, "\n## Blameless review\n"); i >= 0 {
		doc = doc[:i]
	}
	src := []byte(doc)
	var out []string
	_ = ast.Walk(md.Parser().Parse(text.NewReader(src)), func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Text, *ast.String, *ast.Document:
			return ast.WalkContinue, nil
		case *ast.RawHTML:
			if string(n.Segments.Value(src)) == "<br>" {
				return ast.WalkContinue, nil
			}
		case *ast.Heading:
			out = append(out, fmt.Sprintf("Heading%d", n.Level))
			return ast.WalkContinue, nil
		}
		out = append(out, n.Kind().String())
		return ast.WalkContinue, nil
	})
	return out
}

// forbidden finds what must never appear in a document made from outside
// text: HTML beyond the template's <br>, images, and code blocks.
func forbidden(doc string) string {
	for i := 0; i < len(doc); i++ {
		if doc[i] == '<' && !strings.HasPrefix(doc[i:], "<br>") {
			end := min(i+20, len(doc))
			return fmt.Sprintf("a raw %q", doc[i:end])
		}
	}
	src := []byte(doc)
	var found string
	_ = ast.Walk(md.Parser().Parse(text.NewReader(src)), func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		switch n.Kind() {
		case ast.KindImage, ast.KindHTMLBlock, ast.KindCodeBlock, ast.KindFencedCodeBlock:
			found = n.Kind().String()
			return ast.WalkStop, nil
		}
		return ast.WalkContinue, nil
	})
	return found
}

// FuzzMarkdownStructure: whatever people type in Slack or an alert puts in
// PagerDuty, the postmortem drafts and the digest have the same Markdown
// structure as with plain text, contain no HTML, images or code blocks,
// and still show the text.
func FuzzMarkdownStructure(f *testing.F) {
	for _, s := range [][3]string{
		{"db down", "rolled back", "alice"},
		{"db down\n# Owned\n```", "```\nswallow the rest", "eve\n## x"},
		{"<script>alert(1)</script>", `<img src=x onerror="alert(1)">`, "<b>bob</b>"},
		{"[click](javascript:alert(1))", "![x](https://evil.example/x.png)", "*eve*"},
		{"T2 <https://evil.example/phish|https://status.example.com/ok>", "<mailto:a@evil.example|support>", "<!channel>"},
		{"| a | b |\n|---|---|\n| c | d |", "a | b\n--- | ---\nc | d", "x|y"},
		{"> quote", "1. one\n2) two\n- three\n+ four\n* five", "---"},
		{"Title\n===", "text\n---\n***\n___", "    indented code"},
		{"~~~\ncode", "    four spaces\n\ttab", "_under_ **bold** `code`"},
		{"&lt;script&gt; &amp; &#60;img&#62;", "&copy; &#x3C;svg onload=alert(1)&#x3E;", "a\\"},
		{"line\r\nbreak\rcr", "trailing two spaces  \nhard break\\\nbackslash", "\u2028sep\u2029"},
		{"<!-- comment", "<?php echo 1; ?>", "<![CDATA[x]]>"},
		{"- [ ] task", "[ref]: https://evil.example\n[ref]", "#"},
		{"a\n\n\nb", "\n\n", " "},
	} {
		f.Add(s[0], s[1], s[2])
	}
	plain, ok := []string(nil), false
	f.Fuzz(func(t *testing.T, title, body, name string) {
		if len(title) > 150 || len(body) > 2000 || len(name) > 80 {
			return
		}
		if !ok {
			plain, ok = documents(t, "x", "x", "x")
			if !ok {
				t.Fatal("the plain documents were refused")
			}
		}
		docs, accepted := documents(t, title, body, name)
		if !accepted {
			return
		}
		names := []string{"INC-1 postmortem", "INC-2 postmortem", "digest"}
		for i, doc := range docs {
			if bad := forbidden(doc); bad != "" {
				t.Fatalf("%s has %s for title %q, text %q, name %q:\n%s", names[i], bad, title, body, name, doc)
			}
			got, want := structure(doc), structure(plain[i])
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("%s structure changed for title %q, text %q, name %q:\n got %v\nwant %v\n%s", names[i], title, body, name, got, want, doc)
			}
		}
	})
}
