package runbook

import (
	"context"
	"strings"
	"testing"
)

// The trust model: who may run or approve is fixed by configuration (users
// and user groups); incident roles only narrow it. Nothing a person can do
// in chat alone (take the commander role, declare an incident) widens it.

// highSpec is a high-risk runbook: requesters SREQUESTERS, approvers
// SAPPROVERS, always approved.
func (h *harness) highSpec(id string) spec {
	return h.baseSpec(id, script("record.sh"), "{{target}}").with("risk", "high").with("confirm", true).
		with("approval", map[string]any{
			"approvers":     map[string]any{"user_groups": []any{"SAPPROVERS"}},
			"count":         1,
			"expires_after": "10m",
		}).
		with("dry_run", map[string]any{"steps": []any{map[string]any{"name": "probe", "argv": []any{script("probe.sh")}, "timeout": "5s"}}})
}

// TestCommanderRoleGrantsNothing: a member in no configured group who is
// this incident's commander can neither run nor approve.
func TestCommanderRoleGrantsNothing(t *testing.T) {
	h := newHarness(t)
	s := h.highSpec("scale")
	// Roles listed next to groups: before, either was enough.
	at(s, "access", "requesters")["incident_roles"] = []any{"commander"}
	at(s, "approval", "approvers")["incident_roles"] = []any{"commander"}
	h.write(s)
	h.incidents.setRoles("UOUT", RoleCommander) // `/incident lead`
	_, err := h.submit(outsider, chanInc, "scale target=web")
	msg := mustUserError(t, err, KindDenied)
	if !strings.Contains(msg, "you are not among the people allowed to run it (members of <!subteam^SREQUESTERS|@SREQUESTERS>, and only while they are this incident's commander)") {
		t.Fatalf("refusal %q", msg)
	}
	if rbs := h.eng.Runbooks(context.Background(), Invocation{Caller: outsider, ChannelID: chanInc}); len(rbs) != 0 {
		t.Fatalf("the commander is offered %d runbooks", len(rbs))
	}

	sub, err := h.submit(requester, chanInc, "scale target=web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Confirm(context.Background(), sub.RunID, requester); err != nil {
		t.Fatal(err)
	}
	_, err = h.eng.Approve(context.Background(), sub.RunID, outsider)
	msg = mustUserError(t, err, KindDenied)
	if !strings.Contains(msg, "you are not among the people allowed to approve it (members of <!subteam^SAPPROVERS|@SAPPROVERS>, and only while they are this incident's commander)") {
		t.Fatalf("approval refusal %q", msg)
	}
	_, err = h.eng.Deny(context.Background(), sub.RunID, outsider)
	mustUserError(t, err, KindDenied)
	h.assertNothingRan()
	// A configured approver who is not commander cannot; once they are, they can.
	_, err = h.eng.Approve(context.Background(), sub.RunID, approver)
	if msg := mustUserError(t, err, KindDenied); !strings.Contains(msg, "you are not this incident's commander, which is also needed to approve it") {
		t.Fatalf("approval refusal %q", msg)
	}
	h.incidents.setRoles("UAPP", RoleCommander)
	if _, err := h.eng.Approve(context.Background(), sub.RunID, approver); err != nil {
		t.Fatal(err)
	}
	if res := h.result(); res.Status != StatusSucceeded {
		t.Fatalf("result %+v", res)
	}
}

// TestIncidentRolesNarrow: with incident_roles listed, a group member must
// also hold the role; the refusal says which.
func TestIncidentRolesNarrow(t *testing.T) {
	h := newHarness(t)
	s := h.baseSpec("echo", script("record.sh"), "{{target}}")
	at(s, "access", "requesters")["incident_roles"] = []any{"commander"}
	h.write(s)
	_, err := h.submit(groupie, chanInc, "echo target=a") // in SREQUESTERS, no role
	if msg := mustUserError(t, err, KindDenied); !strings.Contains(msg, "you are not this incident's commander, which is also needed to run it") {
		t.Fatalf("refusal %q", msg)
	}
	if _, err := h.submit(requester, chanInc, "echo target=a"); err != nil { // in SREQUESTERS and commander
		t.Fatal(err)
	}
	h.result()
	h.assertExecutions(1)
}

// TestApprovalNobodyElseRefusedAtOnce: when the requester is the only
// configured approver, the request is refused before any card, with the
// reason; the confirmation card otherwise says who can approve.
func TestApprovalNobodyElseRefusedAtOnce(t *testing.T) {
	h := newHarness(t)
	h.groups.members["SSOLO"] = []string{"UREQ"}
	s := h.highSpec("scale")
	at(s, "approval")["approvers"] = map[string]any{"user_groups": []any{"SSOLO"}}
	h.write(s)
	sub, err := h.submit(requester, chanInc, "scale target=web")
	msg := mustUserError(t, err, KindDenied)
	if sub != nil || !strings.Contains(msg, "it needs approval by 1 person(s) other than you, and nobody else is among its approvers (members of <!subteam^SSOLO|@SSOLO>)") ||
		!strings.Contains(msg, "team-test") {
		t.Fatalf("refusal %q", msg)
	}
	if !h.audit.has(EventAuthzDenied) || h.audit.has(EventConfirmRequested) {
		t.Fatalf("audit %v", h.audit.kinds())
	}
	// count 2 with one other approver is just as impossible.
	at(s, "approval")["approvers"] = map[string]any{"users": []any{"UAPP"}, "user_groups": []any{"SSOLO"}}
	at(s, "approval")["count"] = 2
	h.write(s)
	_, err = h.submit(requester, chanInc, "scale target=web")
	if msg := mustUserError(t, err, KindDenied); !strings.Contains(msg, "only 1 other person is among its approvers (<@UAPP> or members of <!subteam^SSOLO|@SSOLO>)") {
		t.Fatalf("refusal %q", msg)
	}
	// A dry run needs no approval and still works.
	if _, err := h.submit(requester, chanInc, "scale target=web --dry-run"); err != nil {
		t.Fatal(err)
	}
	h.result()

	at(s, "approval")["count"] = 1
	h.write(s)
	sub, err = h.submit(requester, chanInc, "scale target=web")
	if err != nil {
		t.Fatal(err)
	}
	if text := sub.Card.Text(); !strings.Contains(text, "Can approve: <@UAPP> or members of <!subteam^SSOLO|@SSOLO> (not you)") {
		t.Fatalf("card %s", text)
	}
}

// TestRequesterLostRoleNamedToApprover: the approver whose click would
// start the run is told that the requester lacks the role, not that they
// themselves are not allowed.
func TestRequesterLostRoleNamedToApprover(t *testing.T) {
	h := newHarness(t)
	s := h.highSpec("scale")
	at(s, "access", "requesters")["incident_roles"] = []any{"commander"}
	h.write(s)
	sub, err := h.submit(requester, chanInc, "scale target=web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Confirm(context.Background(), sub.RunID, requester); err != nil {
		t.Fatal(err)
	}
	h.incidents.setRoles("UREQ") // handed command over while waiting
	_, err = h.eng.Approve(context.Background(), sub.RunID, approver)
	msg := mustUserError(t, err, KindDenied)
	want := "<@UREQ>, who requested run " + sub.RunID + ", is not this incident's commander any more, which is also needed to run it"
	if !strings.Contains(msg, want) || strings.Contains(msg, "you are") {
		t.Fatalf("refusal %q, want %q", msg, want)
	}
	h.assertNothingRan()
}
