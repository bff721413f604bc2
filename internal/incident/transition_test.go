package incident

import (
	"strings"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC)
	alice = Actor{ID: "U0ALICE", Name: "alice", Source: SourceSlack}
	pd    = Actor{ID: "PUSER", Name: "PagerDuty user", Source: SourcePagerDuty}
)

func newIncident(status Status) *Incident {
	return &Incident{Number: 7, Title: "db down", Severity: SEV2, Status: status, DetectedAt: t0, DeclaredAt: t0}
}

func TestTransitions(t *testing.T) {
	type move func(inc *Incident) (Event, error)
	ack := func(inc *Incident) (Event, error) { return inc.Acknowledge(alice, t0.Add(time.Minute)) }
	unack := func(inc *Incident) (Event, error) { return inc.Unacknowledge(pd, t0.Add(time.Minute)) }
	mitigate := func(inc *Incident) (Event, error) { return inc.Mitigate(alice, t0.Add(2*time.Minute), "rolled back") }
	resolve := func(inc *Incident) (Event, error) { return inc.Resolve(alice, t0.Add(3*time.Minute), "fixed") }
	reopen := func(inc *Incident) (Event, error) { return inc.Reopen(alice, t0.Add(4*time.Minute), "came back") }
	reopenByPager := func(inc *Incident) (Event, error) { return inc.Reopen(pd, t0.Add(4*time.Minute), "") }

	tests := []struct {
		name    string
		from    Status
		move    move
		want    Status // status after a legal move
		wantErr string // substring of the conflict message for an illegal move
	}{
		{"ack triggered", StatusTriggered, ack, StatusAcknowledged, ""},
		{"ack acknowledged", StatusAcknowledged, ack, "", "already acknowledged"},
		{"ack mitigated", StatusMitigated, ack, "", "already mitigated"},
		{"ack resolved", StatusResolved, ack, "", "is resolved, so it cannot be acknowledged"},
		{"unack acknowledged", StatusAcknowledged, unack, StatusTriggered, ""},
		{"unack triggered", StatusTriggered, unack, "", "not acknowledged"},
		{"mitigate triggered", StatusTriggered, mitigate, StatusMitigated, ""},
		{"mitigate acknowledged", StatusAcknowledged, mitigate, StatusMitigated, ""},
		{"mitigate mitigated", StatusMitigated, mitigate, "", "already mitigated"},
		{"mitigate resolved", StatusResolved, mitigate, "", "cannot be mitigated"},
		{"resolve triggered", StatusTriggered, resolve, StatusResolved, ""},
		{"resolve acknowledged", StatusAcknowledged, resolve, StatusResolved, ""},
		{"resolve mitigated", StatusMitigated, resolve, StatusResolved, ""},
		{"resolve resolved", StatusResolved, resolve, "", "already resolved"},
		{"reopen resolved by a person", StatusResolved, reopen, StatusAcknowledged, ""},
		{"reopen resolved by the pager", StatusResolved, reopenByPager, StatusTriggered, ""},
		{"reopen open", StatusAcknowledged, reopen, "", "still open"},
		{"reopen triggered", StatusTriggered, reopen, "", "still open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := newIncident(tt.from)
			before := *inc
			ev, err := tt.move(inc)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("move succeeded, want conflict %q; status now %s", tt.wantErr, inc.Status)
				}
				if ErrorCode(err) != ECONFLICT || !strings.Contains(ErrorMessage(err), tt.wantErr) {
					t.Fatalf("error = %v (code %s), want conflict containing %q", err, ErrorCode(err), tt.wantErr)
				}
				if inc.Status != before.Status || inc.ResolvedAt != before.ResolvedAt || inc.AcknowledgedAt != before.AcknowledgedAt {
					t.Fatalf("an illegal move changed the incident: %+v", inc)
				}
				return
			}
			if err != nil {
				t.Fatalf("move failed: %v", err)
			}
			if inc.Status != tt.want {
				t.Fatalf("status = %s, want %s", inc.Status, tt.want)
			}
			if ev.Kind != EventStatusChanged || ev.Data["from"] != string(tt.from) || ev.Data["to"] != string(tt.want) {
				t.Fatalf("event = %+v, want status_changed %s -> %s", ev, tt.from, tt.want)
			}
		})
	}
}

func TestKeyTimesAndReopenKeepsFirstAcknowledgement(t *testing.T) {
	inc := newIncident(StatusTriggered)
	if _, ok := inc.TimeToAcknowledge(); ok {
		t.Fatal("an unacknowledged incident has a time to acknowledge")
	}
	mustMove(t)(inc.Acknowledge(alice, t0.Add(4*time.Minute)))
	mustMove(t)(inc.Mitigate(alice, t0.Add(10*time.Minute), ""))
	mustMove(t)(inc.Resolve(alice, t0.Add(30*time.Minute), ""))
	if d, _ := inc.TimeToAcknowledge(); d != 4*time.Minute {
		t.Errorf("MTTA = %s, want 4m", d)
	}
	if d, _ := inc.TimeToMitigate(); d != 10*time.Minute {
		t.Errorf("time to mitigate = %s, want 10m", d)
	}
	if d, _ := inc.TimeToResolve(); d != 30*time.Minute {
		t.Errorf("MTTR = %s, want 30m", d)
	}

	mustMove(t)(inc.Reopen(alice, t0.Add(40*time.Minute), "it is back"))
	if !inc.ResolvedAt.IsZero() || !inc.MitigatedAt.IsZero() {
		t.Errorf("reopen kept resolution/mitigation times: %v %v", inc.ResolvedAt, inc.MitigatedAt)
	}
	if inc.AcknowledgedAt != t0.Add(4*time.Minute) || inc.Reopened != 1 {
		t.Errorf("reopen lost the first acknowledgement or the count: %v %d", inc.AcknowledgedAt, inc.Reopened)
	}
	mustMove(t)(inc.Resolve(alice, t0.Add(90*time.Minute), ""))
	if d, _ := inc.TimeToResolve(); d != 90*time.Minute {
		t.Errorf("MTTR after reopen = %s, want 90m (to the final resolution)", d)
	}
	if d, ok := inc.TimeToMitigate(); ok || !inc.MitigatedAt.IsZero() {
		t.Errorf("resolving without mitigating invented a mitigation after %s", d)
	}
}

// TestResponseTimesFromStart: with `started` set, every response time is
// measured from it and time to detect exists; a person's declaration is
// no 0 s acknowledgement.
func TestResponseTimesFromStart(t *testing.T) {
	declared := &Incident{Number: 3, Status: StatusAcknowledged, DetectedAt: t0, DeclaredAt: t0, AcknowledgedAt: t0, AcknowledgedBy: alice}
	if d, ok := declared.TimeToAcknowledge(); ok {
		t.Errorf("a declared incident has a time to acknowledge of %s", d)
	}
	if _, ok := declared.TimeToDetect(); ok {
		t.Error("time to detect without a start")
	}
	mustMove(t)(declared.ChangeFact(FactChange{Fact: FactStarted, Started: t0.Add(-25 * time.Minute)}, alice, t0.Add(time.Hour)))
	mustMove(t)(declared.Mitigate(alice, t0.Add(20*time.Minute), ""))
	mustMove(t)(declared.Resolve(alice, t0.Add(35*time.Minute), ""))
	for name, f := range map[string]func() (time.Duration, bool){
		"detect": declared.TimeToDetect, "acknowledge": declared.TimeToAcknowledge,
		"mitigate": declared.TimeToMitigate, "resolve": declared.TimeToResolve,
	} {
		want := map[string]time.Duration{"detect": 25 * time.Minute, "acknowledge": 25 * time.Minute, "mitigate": 45 * time.Minute, "resolve": time.Hour}[name]
		if d, ok := f(); !ok || d != want {
			t.Errorf("time to %s = %s, %v; want %s", name, d, ok, want)
		}
	}

	paged := newIncident(StatusTriggered)
	mustMove(t)(paged.Acknowledge(alice, t0.Add(4*time.Minute)))
	if d, ok := paged.TimeToAcknowledge(); !ok || d != 4*time.Minute {
		t.Errorf("paged: time to acknowledge %s, %v", d, ok)
	}
	// A start after detection or in the future is refused.
	if _, err := paged.ChangeFact(FactChange{Fact: FactStarted, Started: t0.Add(time.Minute)}, alice, t0.Add(time.Hour)); ErrorCode(err) != EINVALID {
		t.Errorf("start after detection: %v", err)
	}
	if _, err := paged.ChangeFact(FactChange{Fact: FactStarted, Started: t0.Add(2 * time.Hour)}, alice, t0.Add(time.Hour)); ErrorCode(err) != EINVALID {
		t.Errorf("start in the future: %v", err)
	}
}

func mustMove(t *testing.T) func(Event, error) {
	return func(_ Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSeverityAndRoles(t *testing.T) {
	inc := newIncident(StatusAcknowledged)
	ev, err := inc.SetSeverity(SEV1, alice, t0, "")
	if err != nil || inc.Severity != SEV1 || ev.Data["from"] != "SEV2" || ev.Data["to"] != "SEV1" {
		t.Fatalf("SetSeverity: %v %+v", err, ev)
	}
	if _, err := inc.SetSeverity(SEV1, alice, t0, ""); ErrorCode(err) != ECONFLICT {
		t.Errorf("same severity again: %v, want conflict", err)
	}
	if _, err := inc.SetSeverity(Severity(5), alice, t0, ""); ErrorCode(err) != EINVALID {
		t.Errorf("SEV5: %v, want invalid", err)
	}
	if _, err := inc.AssignRole(RoleCommander, "U1", alice, t0); err != nil {
		t.Fatal(err)
	}
	ev, err = inc.AssignRole(RoleCommander, "U2", alice, t0)
	if err != nil || ev.Data["previous"] != "U1" || inc.Commander() != "U2" {
		t.Fatalf("reassign commander: %v %+v", err, ev)
	}
	if _, err := inc.AssignRole(RoleCommander, "U2", alice, t0); ErrorCode(err) != ECONFLICT {
		t.Errorf("same holder again: %v, want conflict", err)
	}
	if _, err := inc.AssignRole(Role("janitor"), "U2", alice, t0); ErrorCode(err) != EINVALID {
		t.Errorf("unknown role: %v, want invalid", err)
	}
	if _, err := ParseRole("janitor"); ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), "commander, comms or scribe") {
		t.Errorf("ParseRole(janitor) = %v", err)
	}
	for in, want := range map[string]Role{"IC": RoleCommander, "Comms": RoleComms, "scribe": RoleScribe} {
		if r, err := ParseRole(in); err != nil || r != want {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", in, r, err, want)
		}
	}
}

func TestParseSeverityAndID(t *testing.T) {
	for in, want := range map[string]Severity{
		"sev1": SEV1, "SEV2": SEV2, "Sev3": SEV3, "4": SEV4, "sev-1": SEV1, "SEV-2": SEV2, "sev_3": SEV3,
		"P1": SEV1, "p4": SEV4, "critical": SEV1, "Major": SEV2, "minor": SEV3, "LOW": SEV4,
	} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "sev0", "sev5", "0", "5", "+1", "-1", "sev--1", "sev-+1", "P0", "P5", "p-1", "high", "sev 1", "1.0"} {
		if _, err := ParseSeverity(in); err == nil {
			t.Errorf("ParseSeverity(%q) succeeded", in)
		}
	}
	for in, want := range map[string]int64{"INC-7": 7, "inc-42": 42, "Inc-1000": 1000} {
		if got, ok := ParseID(in); !ok || got != want {
			t.Errorf("ParseID(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"INC-", "INC-0", "INC-07", "INC-7x", "INC7", "7", "INC--7", "INC-99999999999999"} {
		if _, ok := ParseID(in); ok {
			t.Errorf("ParseID(%q) succeeded", in)
		}
	}
}

func TestChannelName(t *testing.T) {
	long := strings.Repeat("database connection pool exhausted ", 8)
	tests := []struct {
		n       int64
		title   string
		attempt int
		want    string
	}{
		{7, "Database is DOWN!", 0, "inc-7-database-is-down"},
		{7, "Database is DOWN!", 1, "inc-7-database-is-down-2"},
		{12, "Café crème: paiement échoué", 0, "inc-12-cafe-creme-paiement-echoue"},
		{3, "🔥🔥🔥", 0, "inc-3"},
		{3, "🔥🔥🔥", 2, "inc-3-3"},
		{4, "支付服务不可用", 0, "inc-4"},
		{5, "api 5xx — eu-west-1 (prod)", 0, "inc-5-api-5xx-eu-west-1-prod"},
		{6, "---", 0, "inc-6"},
		// Links keep their label; bare URLs and mentions without one go.
		{8, "High latency https://grafana.example.com/d/abc?orgId=1&from=now-6h", 0, "inc-8-high-latency"},
		{9, "Checkout errors, see <https://grafana.example.com/d/x|dashboard> <@U123>", 0, "inc-9-checkout-errors-see-dashboard"},
		{10, "https://status.example.com", 0, "inc-10"},
		{11, "a <b unclosed", 0, "inc-11-a-b-unclosed"},
	}
	for _, tt := range tests {
		if got := ChannelName(tt.n, tt.title, tt.attempt); got != tt.want {
			t.Errorf("ChannelName(%d, %q, %d) = %q, want %q", tt.n, tt.title, tt.attempt, got, tt.want)
		}
	}
	for attempt := range 12 {
		name := ChannelName(123456, long, attempt)
		if len(name) > 80 || strings.HasSuffix(name, "-") && attempt == 0 {
			t.Errorf("long title, attempt %d: %q (%d chars)", attempt, name, len(name))
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Fatalf("invalid character %q in %q", r, name)
			}
		}
	}
}

func TestWorstSeverity(t *testing.T) {
	inc := newIncident(StatusResolved) // SEV2 now
	sevChange := func(from, to string) Event {
		return Event{Kind: EventSeverityChanged, Data: map[string]string{"from": from, "to": to}}
	}
	tests := []struct {
		events []Event
		want   Severity
	}{
		{nil, SEV2},
		{[]Event{{Kind: EventDeclared, Data: map[string]string{"severity": "SEV3"}}, sevChange("SEV3", "SEV2")}, SEV2},
		{[]Event{{Kind: EventDeclared, Data: map[string]string{"severity": "SEV3"}}, sevChange("SEV3", "SEV1"), sevChange("SEV1", "SEV2")}, SEV1},
		{[]Event{{Kind: EventNote, Data: map[string]string{"severity": "SEV1"}}}, SEV2}, // only severity events count
		{[]Event{sevChange("garbage", "SEV4")}, SEV2},
	}
	for i, tt := range tests {
		if got := WorstSeverity(inc, tt.events); got != tt.want {
			t.Errorf("case %d: %s, want %s", i, got, tt.want)
		}
	}
}
