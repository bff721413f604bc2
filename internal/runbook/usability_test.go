package runbook

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Help leads with what a person needs: each parameter's description and
// an example. Patterns appear only on request, in code spans, exactly as
// the file has them (mrkdwn would eat the * of a bare pattern).
func TestHelpDescriptionsFirstPatternsOnRequest(t *testing.T) {
	h := newHarness(t)
	s := h.baseSpec("purge", script("record.sh"), "{{target}}")
	s["params"] = []any{map[string]any{
		"name": "target", "type": "string", "pattern": `^/[a-z0-9/]{0,20}\*?$`, "required": true,
		"description": "Path to purge; a trailing * purges the prefix", "example": "/static/*",
	}}
	h.write(s)
	rb, _ := h.reg.Lookup("purge")
	usage := rb.Usage()
	for _, want := range []string{
		"Usage: `/incident run purge target=TARGET [--dry-run]`",
		"Example: `/incident run purge target=/static/*`",
		"• target (required): Path to purge; a trailing * purges the prefix. Example: target=/static/*. Text of at most 128 characters.",
		"`/incident run purge --help` shows the exact rules.",
	} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage lacks %q:\n%s", want, usage)
		}
	}
	if strings.Contains(usage, "^/") {
		t.Errorf("usage shows the pattern:\n%s", usage)
	}
	sub, err := h.submit(requester, chanInc, "purge --help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sub.Message, "matching `^/[a-z0-9/]{0,20}\\*?$`") {
		t.Fatalf("help:\n%s", sub.Message)
	}
	h.assertNothingRan()
	if h.audit.has(EventValidationFailed) || h.audit.has(EventStarted) {
		t.Fatalf("help audited as a run: %v", h.audit.kinds())
	}
	// An example that breaks the parameter's own rules does not load.
	bad := strings.Replace(strings.Replace(demoRunbook, "id: demo", "id: bad", 1), "    max_length: 63\n", "    max_length: 63\n    example: Not_Valid\n", 1)
	r := loadReport(t, map[string]string{"bad.yaml": bad})
	if len(r.Errors) != 1 || r.Errors[0].Field != "params[2].example" || !strings.Contains(r.Errors[0].Reason, "does not satisfy") {
		t.Fatalf("errors %v", r.Errors)
	}
}

// `run check-dns localhost`: a runbook with one required parameter takes
// a bare value; otherwise the refusal shows the exact corrected command.
func TestBareValue(t *testing.T) {
	h := newHarness(t)
	h.write(h.baseSpec("echo", script("record.sh"), "{{target}}"))
	if _, err := h.submit(requester, chanInc, "echo localhost"); err != nil {
		t.Fatal(err)
	}
	if res := h.result(); res.Status != StatusSucceeded || !strings.Contains(res.Output, "arg=[localhost]") {
		t.Fatalf("result %+v", res)
	}
	doc := strings.Replace(demoRunbook, "'/bin/echo'", "'"+script("record.sh")+"'", 1)
	doc = strings.Replace(doc, "steps:\n", "env:\n  MARKER: "+h.marker+"\nsteps:\n", 1)
	h.writeRaw("demo", doc)
	_, err := h.submit(requester, chanInc, "demo prod-eu checkout-api --dry-run")
	msg := mustUserError(t, err, KindInvalid)
	if !strings.Contains(msg, "Write each value as name=value, e.g. `/incident run demo context=prod-eu deployment=checkout-api --dry-run`") ||
		!strings.Contains(msg, "word 2 is not name=value") {
		t.Fatalf("refusal %q", msg)
	}
	// A word that is not a valid value is not repeated.
	_, err = h.submit(requester, chanInc, "demo context=staging Hunter2!")
	if msg := mustUserError(t, err, KindInvalid); strings.Contains(msg, "Hunter2") ||
		!strings.Contains(msg, "`/incident run demo context=staging deployment=DEPLOYMENT`") {
		t.Fatalf("refusal %q", msg)
	}
	h.assertExecutions(1)
}

// Cooldown is checked before anyone is asked to confirm or approve.
func TestCooldownCheckedBeforeAsking(t *testing.T) {
	h := newHarness(t)
	s := h.highSpec("scale")
	at(s, "limits")["cooldown"] = "5m"
	h.write(s)
	run := func() {
		t.Helper()
		sub, err := h.submit(requester, chanInc, "scale target=web")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.eng.Confirm(context.Background(), sub.RunID, requester); err != nil {
			t.Fatal(err)
		}
		if _, err := h.eng.Approve(context.Background(), sub.RunID, approver); err != nil {
			t.Fatal(err)
		}
		h.result()
	}
	run()
	h.clock.Advance(time.Minute)
	sub, err := h.submit(requester, chanInc, "scale target=web")
	msg := mustUserError(t, err, KindBusy)
	if sub != nil || !strings.Contains(msg, "it can run again in 4m (cooldown)") || !strings.Contains(msg, "nobody was asked to approve") {
		t.Fatalf("refusal %q", msg)
	}
	// Another target is not cooling down.
	if _, err := h.submit(requester, chanInc, "scale target=db"); err != nil {
		t.Fatal(err)
	}
	// A request confirmed before the cooldown began is stopped at confirm,
	// before approval is asked for.
	h.clock.Advance(5 * time.Minute)
	first, err := h.submit(requester, chanInc, "scale target=web")
	if err != nil {
		t.Fatal(err)
	}
	run()
	_, err = h.eng.Confirm(context.Background(), first.RunID, requester)
	if msg := mustUserError(t, err, KindBusy); !strings.Contains(msg, "cooldown") {
		t.Fatalf("refusal %q", msg)
	}
	h.assertExecutions(2)
}

// Outside an incident channel, `runbooks` says where they run and lists
// them.
func TestListOutsideIncident(t *testing.T) {
	h := newHarness(t)
	h.write(h.baseSpec("echo", script("record.sh"), "{{target}}"))
	text := h.eng.List(context.Background(), Invocation{Caller: requester, ChannelID: chanNone})
	if !strings.Contains(text, "Runbooks run in an open incident's channel") || !strings.Contains(text, "*echo*: Test echo") {
		t.Fatalf("list %s", text)
	}
	text = h.eng.List(context.Background(), Invocation{Caller: outsider, ChannelID: chanInc})
	if !strings.Contains(text, "There are no runbooks you may run here") {
		t.Fatalf("list %s", text)
	}
	text = h.eng.List(context.Background(), Invocation{Caller: requester, ChannelID: chanInc})
	if !strings.Contains(text, "*echo*") || strings.Contains(text, "open incident's channel") {
		t.Fatalf("list %s", text)
	}
}
