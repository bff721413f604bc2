package pagerduty_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// Fuzz targets for everything PagerDuty sends: the signature header, the V3
// payload and its conversion to the domain's event, and the intake handler
// on a real store. The seeds (f.Add and testdata/fuzz) run in the normal
// test suite; run one target at a time with, e.g.,
//
//	go test -run '^$' -fuzz '^FuzzIntake$' -fuzztime 60s ./internal/pagerduty/

// fuzzSeedBodies are the documented payloads (PROTOCOLS §5.1-§5.4) and
// edge cases: nulls, numbers where strings go and back, wrong types, deep
// nesting, invalid UTF-8, NUL bytes, huge numbers.
func fuzzSeedBodies() []string {
	return []string{
		pdtest.VectorBody,
		pdtest.DocsPriorityUpdated,
		string(pdtest.Envelope("01NOTE", "incident.annotated", &pdtest.Ref{ID: "PLH1HKV", Type: "user_reference", Summary: "Tenex"}, pdtest.DocsNoteData)),
		string(pdtest.Envelope("01RESP", "incident.responder.added", nil, pdtest.DocsResponderData)),
		string(pdtest.Envelope("01STAT", "incident.status_update_published", nil, pdtest.DocsStatusUpdateData)),
		string(pdtest.WithEvent("01ACK", "incident.acknowledged")),
		string(pdtest.WithEvent("01RES", "incident.resolved")),
		`{"event":{"id":"01SVC","event_type":"service.updated","resource_type":"service","occurred_at":"2020-10-02T18:45:22.169Z","agent":null,"client":null,"data":{"id":"PF9KMXH","type":"service","summary":"API Service"}}}`,
		`{"event":{"id":"01TRG","event_type":"incident.triggered","agent":null,"client":null,"data":{"id":"PX","type":"incident","number":"17","status":null,"title":null,"service":null,"assignees":null,"priority":null,"urgency":null,"conference_bridge":{"conference_number":null,"conference_url":null},"resolve_reason":null}}}`,
		`{"event":{"id":"01NUM","event_type":"incident.triggered","data":{"id":"PX","number":1e400,"conference_bridge":{"conference_number":12345678901234567890}}}}`,
		`{"event":{"id":"01NEG","event_type":"incident.triggered","data":{"id":"PX","number":-3,"conference_bridge":{"conference_number":true}}}}`,
		`{"event":{"id":"01NAN","event_type":"incident.triggered","data":{"id":"PX","number":"NaN"}}}`,
		`{"event":{"id":"01INF","event_type":"incident.triggered","data":{"id":"PX","number":"-Inf"}}}`,
		`{"event":{"id":"01FLT","event_type":"incident.triggered","data":{"id":"PX","number":9223372036854775807.5}}}`,
		`{"event":{"id":"01OBJ","event_type":"incident.triggered","data":{"id":"PX","number":{},"conference_bridge":{"conference_number":[1,2]}}}}`,
		`{"event":{"id":"01MRG","event_type":"incident.resolved","data":{"id":"PX","type":"incident","resolve_reason":{"type":"merge_resolve_reason","incident":{"id":"PY","summary":null}}}}}`,
		`{"event":{"id":"01WRONG","event_type":"incident.triggered","data":{"id":7}}}`,
		`{"event":{"id":"01WRONG","event_type":"incident.triggered","data":"PX"}}`,
		`{"event":{"id":"01NODATA","event_type":"incident.triggered"}}`,
		`{"event":{"id":"01NULLDATA","event_type":"incident.annotated","data":null}}`,
		`{"event":{"id":"01NOTE2","event_type":"incident.annotated","data":{"type":"incident_note","incident":null}}}`,
		`{"event":{"id":" ","event_type":"incident.triggered","data":{"id":"PX"}}}`,
		`{"event":{"id":"01","event_type":" ","data":{"id":"PX"}}}`,
		`{"event":{"id":7,"event_type":"incident.triggered"}}`,
		`{"event":null}`,
		`{"event":[]}`,
		`{"messages":[{"event":"incident.trigger"}]}`,
		`{}`,
		`[]`,
		`null`,
		`"event"`,
		``,
		` `,
		`{"event":{"id":"01","event_type":"incident.triggered","data":{"id":"P\u0000X"}}}`,
		"{\"event\":{\"id\":\"\x00\",\"event_type\":\"incident.triggered\",\"data\":{\"id\":\"PX\"}}}",
		"{\"event\":{\"id\":\"\xff\xfe\",\"event_type\":\"incident.triggered\",\"data\":{\"id\":\"\xc3\x28\"}}}",
		`{"event":{"id":"01","event_type":"incident.triggered","data":{"id":"PX","title":"\ud800"}}}`,
		`{"event":{"id":"01","event_type":"incident.triggered","event_type":"incident.resolved","data":{"id":"PX"}}}`,
		`{"event":{"id":"01","event_type":"incident.triggered","data":{"id":"PX"}}} trailing`,
		`{"event":{"id":"01","event_type":"incident.triggered","data":{"id":"PX","teams":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}}}`,
		`{"event":{"id":"` + strings.Repeat("x", 40000) + `","event_type":"incident.triggered","data":{"id":"PX"}}}`,
		`{"event":{"id":"01LONG","event_type":"incident.triggered","data":{"id":"` + strings.Repeat("P", 40000) + `"}}}`,
	}
}

// FuzzVerifySignature: VerifySignature accepts exactly when one of the
// comma-separated "v1=" entries (spaces around it tolerated, hex in either
// case) is the HMAC-SHA256 of the body under one of the secrets; both sides
// of a rotation verify; flipping any bit of a valid request is rejected.
func FuzzVerifySignature(f *testing.F) {
	for _, b := range fuzzSeedBodies()[:8] {
		f.Add([]byte(b), pdtest.VectorSignature, pdtest.VectorSecret, uint8(0), uint(0), byte(1))
	}
	f.Add([]byte(pdtest.VectorBody), pdtest.VectorSignature, pdtest.VectorSecret, uint8(3), uint(100), byte(0x20))
	f.Add([]byte(pdtest.VectorBody), pdtest.VectorMismatch, pdtest.VectorSecret, uint8(3), uint(0), byte(0))
	f.Add([]byte(pdtest.VectorBody), strings.ToUpper(pdtest.VectorSignature[3:]), pdtest.VectorSecret, uint8(1), uint(7), byte(0x20))
	f.Add([]byte(pdtest.VectorBody), "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd, v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5", pdtest.VectorSecret, uint8(2), uint(3), byte(0xff))
	f.Add([]byte("x"), "v2=abc,v1=,v1=zz,,", "", uint8(0), uint(0), byte(0))
	f.Add([]byte{}, "", "s", uint8(0), uint(0), byte(0))
	f.Add([]byte("\x00\xff"), "v1="+strings.Repeat("0", 64), "\x00", uint8(1), uint(1), byte(0x80))
	f.Fuzz(func(t *testing.T, body []byte, header, secret string, mode uint8, pos uint, xor byte) {
		const other = "the-other-secret"
		secrets := []string{secret, other}

		// Arbitrary header: accepted exactly when an entry matches.
		if got, want := pagerduty.VerifySignature(body, header, secrets), headerMatches(body, header, secrets); got != want {
			t.Fatalf("VerifySignature(%q) = %v, want %v", header, got, want)
		}
		if len(body) == 0 {
			if pagerduty.VerifySignature(body, pdtest.Sign(body, secret), secrets) {
				t.Fatal("an empty body verified")
			}
			return
		}

		// A rotation: the entries of both secrets, in either order, with
		// or without a space, verify under either secret alone.
		old, cur := pdtest.Sign(body, other), pdtest.Sign(body, secret)
		sep := ","
		if mode&1 != 0 {
			sep = ", "
		}
		entries := []string{old, cur}
		if mode&2 != 0 {
			entries = []string{cur, old}
		}
		rotation := strings.Join(entries, sep)
		for _, s := range [][]string{{secret}, {other}, {secret, other}} {
			if !pagerduty.VerifySignature(body, rotation, s) {
				t.Fatalf("rotation header %q rejected under %d secret(s)", rotation, len(s))
			}
		}
		// HMAC pads short keys with NULs: "k" and "k\x00" are one key.
		if strings.TrimRight(secret, "\x00") != "the-third-secret" && pagerduty.VerifySignature(body, rotation, []string{"the-third-secret"}) {
			t.Fatal("a rotation header verified under a secret that signed neither entry")
		}

		// A mutation of a valid delivery is rejected.
		if xor == 0 {
			return
		}
		switch mode % 3 {
		case 0: // the body
			mutated := bytes.Clone(body)
			mutated[pos%uint(len(mutated))] ^= xor
			if pagerduty.VerifySignature(mutated, cur, []string{secret}) {
				t.Fatalf("a body with byte %d flipped verified", pos%uint(len(body)))
			}
		case 1: // the signature
			sig := []byte(cur)
			i := 3 + pos%64
			sig[i] ^= xor
			if bytes.EqualFold(sig, []byte(cur)) && sig[i] < 0x80 {
				return // the same hex digit in the other case: the same signature
			}
			if pagerduty.VerifySignature(body, string(sig), []string{secret}) {
				t.Fatalf("signature %q verified", sig)
			}
		case 2: // the secret
			if pagerduty.VerifySignature(body, cur, []string{secret + string(rune(xor))}) {
				t.Fatal("a signature verified under a different secret")
			}
		}
	})
}

// headerMatches is the reference verifier: the documented algorithm
// (PROTOCOLS §5.4), written independently of the code under test.
func headerMatches(body []byte, header string, secrets []string) bool {
	if len(body) == 0 {
		return false
	}
	want := map[string]bool{}
	for _, s := range secrets {
		want[strings.TrimPrefix(pdtest.Sign(body, s), "v1=")] = true
	}
	for _, e := range strings.Split(header, ",") {
		h, ok := strings.CutPrefix(strings.TrimSpace(e), "v1=")
		h = strings.TrimSpace(h)
		if !ok || len(h) != 64 {
			continue
		}
		lower := []byte(h)
		for i, c := range lower {
			if 'A' <= c && c <= 'F' {
				lower[i] = c + 'a' - 'A'
			}
		}
		if want[string(lower)] {
			return true
		}
	}
	return false
}

// FuzzDecode: Decode never panics; a rejection wraps ErrMalformed with a
// short message that echoes no input; an accepted delivery has a non-empty
// event id and type; a handled one names its PagerDuty incident, and its
// domain event carries the same ids, a non-negative incident number and a
// valid (or no) severity, whatever nulls or numbers the fields held.
func FuzzDecode(f *testing.F) {
	for _, b := range fuzzSeedBodies() {
		f.Add([]byte(b))
	}
	sev := pagerduty.Severities{
		Priorities: map[string]incident.Severity{"P1": incident.SEV1, "P2": incident.SEV2},
		Urgencies:  map[string]incident.Severity{"HIGH": incident.SEV2, "LOW": incident.SEV4},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := pagerduty.Decode(body)
		if err != nil {
			if d != nil || !errors.Is(err, pagerduty.ErrMalformed) {
				t.Fatalf("Decode error %v (delivery %v) does not wrap ErrMalformed", err, d)
			}
			msg := err.Error()
			if len(msg) > 160 || !utf8.ValidString(msg) {
				t.Fatalf("rejection message unfit for a 400 answer: %q", msg)
			}
			return
		}
		ev := d.Event
		if ev == nil || strings.TrimSpace(ev.ID) == "" || strings.TrimSpace(ev.EventType) == "" {
			t.Fatalf("accepted a delivery without an event id or type: %+v", ev)
		}
		kind, known := pagerduty.Kind(ev.EventType)
		if d.Handled() != (known && incident.PagerEventHandled(kind)) {
			t.Fatalf("Handled() = %v for %q", d.Handled(), ev.EventType)
		}
		if !d.Handled() {
			return
		}
		pid := d.PagerIncidentID()
		if strings.TrimSpace(pid) == "" {
			t.Fatalf("handled %s without a PagerDuty incident id", ev.EventType)
		}
		pe := d.PagerEvent(sev)
		switch {
		case pe.ID != ev.ID || pe.Type != kind || pe.Source != pagerduty.Source:
			t.Fatalf("domain event %q/%q from %q/%q", pe.ID, pe.Type, ev.ID, ev.EventType)
		case pe.Incident.ID != pid:
			t.Fatalf("domain event about %q, delivery about %q", pe.Incident.ID, pid)
		case pe.Incident.Number < 0:
			t.Fatalf("incident number %d from %s", pe.Incident.Number, body)
		case pe.Severity != 0 && !pe.Severity.Valid():
			t.Fatalf("severity %d", pe.Severity)
		case !pe.OccurredAt.IsZero() && pe.OccurredAt.Location() != time.UTC:
			t.Fatalf("occurred_at not in UTC: %v", pe.OccurredAt)
		}
		for _, a := range pe.Incident.Assignees {
			if a.ID == "" {
				t.Fatalf("assignee without an id: %+v", pe.Incident.Assignees)
			}
		}
	})
}

// countingBatcher is the real store, counting the transactions the intake
// asks for.
type countingBatcher struct {
	*boltstore.Store
	calls atomic.Int64
}

func (c *countingBatcher) Batch(ctx context.Context, fn func(incident.Tx) error) error {
	c.calls.Add(1)
	return c.Store.Batch(ctx, fn)
}

// FuzzIntake drives the webhook handler on a real bbolt store with fuzzed
// bodies, webhook ids and signature headers. Invariants: never a 5xx (the
// store is healthy, so every failure is the client's); 401 exactly when no
// entry of the signature header is valid; a 4xx never touches the store;
// 202 "accepted" stores exactly one job, and a redelivery (same webhook id,
// or the same event under another one) is a 200 duplicate that stores
// nothing; 202 "ignored" and 200 store nothing.
func FuzzIntake(f *testing.F) {
	const cur, old = "whsec-current", "whsec-previous"
	for i, b := range fuzzSeedBodies() {
		f.Add([]byte(b), "wh-"+string(rune('a'+i%26)), "", uint8(i%4))
	}
	f.Add([]byte(pdtest.VectorBody), "", "v1=", uint8(1))
	f.Add(pdtest.WithEvent("01HUGEWEBHOOKID", "incident.triggered"), strings.Repeat("w", 40000), "", uint8(0))
	f.Add(pdtest.WithEvent("01CTLWEBHOOKID", "incident.triggered"), "wh\x00\r\nid", "", uint8(1))
	f.Add([]byte(pdtest.VectorBody), "wh", pdtest.VectorSignature, uint8(2))

	store := &countingBatcher{Store: bolttest.Open(f)}
	jobs := func(t *testing.T) int {
		t.Helper()
		n := 0
		if err := store.View(context.Background(), func(tx incident.Tx) error {
			var err error
			n, err = tx.PendingJobs()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deliver := func(h http.Handler, body []byte, webhookID, sig string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/pagerduty", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "PagerDuty-Webhook/V3.0")
		if sig != "" {
			req.Header.Set(pagerduty.SignatureHeader, sig)
		}
		if webhookID != "" {
			req.Header.Set(pagerduty.WebhookIDHeader, webhookID)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}

	f.Fuzz(func(t *testing.T, body []byte, webhookID, header string, mode uint8) {
		switch mode % 4 {
		case 0: // signed with the current secret
			header = pdtest.Sign(body, cur)
		case 1: // a rotation: whatever the fuzzer wrote, then the old secret
			header = header + "," + pdtest.Sign(body, old)
		case 2: // the fuzzer's header as is
		case 3: // signed with a secret the bot does not have
			header = pdtest.Sign(body, "whsec-stranger")
		}
		// The handler is cheap; one per input logs to that input's test.
		h := pagerduty.NewIntake(pagerduty.IntakeConfig{Store: store, Secrets: []string{cur, old},
			Logger: zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel))})
		signed := headerMatches(body, header, []string{cur, old})
		jobsBefore, callsBefore := jobs(t), store.calls.Load()
		code, text := deliver(h, body, webhookID, header)
		touched := store.calls.Load() != callsBefore
		stored := jobs(t) - jobsBefore

		if code >= 500 {
			t.Fatalf("%d %q for a client's delivery (signed=%v)", code, text, signed)
		}
		if (code == http.StatusUnauthorized) != !signed {
			t.Fatalf("%d %q, but the signature is valid=%v", code, text, signed)
		}
		if code >= 400 {
			if touched || stored != 0 {
				t.Fatalf("%d %q touched the store (%d jobs)", code, text, stored)
			}
			if code == http.StatusBadRequest {
				if _, err := pagerduty.Decode(body); err == nil {
					t.Fatalf("400 %q for a delivery Decode accepts", text)
				}
			}
			return
		}
		d, err := pagerduty.Decode(body)
		if err != nil {
			t.Fatalf("%d %q for a delivery Decode rejects: %v", code, text, err)
		}
		switch {
		case code == http.StatusAccepted && text == "ignored":
			if d.Handled() || touched || stored != 0 {
				t.Fatalf("ignored a handled event (%s) or stored it (%d jobs)", d.Event.EventType, stored)
			}
			return
		case code == http.StatusOK && text == "duplicate":
			if stored != 0 {
				t.Fatalf("a duplicate stored %d jobs", stored)
			}
			return
		case code == http.StatusAccepted && text == "accepted":
			if !d.Handled() || stored != 1 {
				t.Fatalf("accepted %s (handled=%v) storing %d jobs", d.Event.EventType, d.Handled(), stored)
			}
		default:
			t.Fatalf("unexpected answer %d %q", code, text)
		}
		// PagerDuty redelivers with the same webhook id; a second
		// subscription delivers the same event under another one.
		for _, id := range []string{webhookID, webhookID + "-other-subscription"} {
			before := jobs(t)
			if code, text := deliver(h, body, id, header); code != http.StatusOK || text != "duplicate" {
				t.Fatalf("redelivery under webhook id %q: %d %q", id, code, text)
			}
			if n := jobs(t) - before; n != 0 {
				t.Fatalf("a redelivery stored %d jobs", n)
			}
		}
	})
}
