package slack

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Slack's published worked example (PROTOCOLS §1.2).
const (
	docSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	docTS     = "1531420618"
	docBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	docSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func docClock(offset time.Duration) incident.Clock {
	sec, _ := strconv.ParseInt(docTS, 10, 64)
	return incident.ClockFunc(func() time.Time { return time.Unix(sec, 0).Add(offset) })
}

func headers(sig, ts string) http.Header {
	h := http.Header{}
	if sig != "" {
		h.Set("X-Slack-Signature", sig)
	}
	if ts != "" {
		h.Set("X-Slack-Request-Timestamp", ts)
	}
	return h
}

func TestVerifierAcceptsSlackWorkedExample(t *testing.T) {
	v := Verifier{Secret: docSecret, Clock: docClock(30 * time.Second)}
	if err := v.Verify(headers(docSig, docTS), []byte(docBody)); err != nil {
		t.Fatalf("Slack's worked example rejected: %v", err)
	}
	if got := Sign(docSecret, docTS, []byte(docBody)); got != docSig {
		t.Fatalf("Sign = %s, want %s", got, docSig)
	}
}

func TestVerifierSecondVector(t *testing.T) {
	// slack-go's security_test.go vector, JSON body (PROTOCOLS §1.3).
	body := `{"token":"aF5ynEYQH0dFN9imlgcADxDB","team_id":"XXXXXXXXX","api_app_id":"YYYYYYYYY","event":{"type":"app_mention","user":"AAAAAAAAA","text":"<@EEEEEEEEE> hello world","client_msg_id":"477cc591-ch73-a14z-4db8-g0cd76321bec","ts":"1531431954.000073","channel":"TTTTTTTTT","event_ts":"1531431954.000073"},"type":"event_callback","event_id":"TvBP7LRED7","event_time":1531431954,"authed_users":["EEEEEEEEE"]}`
	v := Verifier{Secret: "e6b19c573432dcc6b075501d51b51bb8", Clock: incident.ClockFunc(func() time.Time { return time.Unix(1531431954, 0) })}
	if err := v.Verify(headers("v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c", "1531431954"), []byte(body)); err != nil {
		t.Fatalf("second vector rejected: %v", err)
	}
}

func TestVerifierRejects(t *testing.T) {
	tampered := []byte(docBody[:len(docBody)-1] + "d")
	cases := []struct {
		name   string
		secret string
		clock  time.Duration
		sig    string
		ts     string
		body   []byte
		want   error
	}{
		{"tampered body", docSecret, 0, docSig, docTS, tampered, ErrBadSignature},
		{"wrong secret", "not-the-secret", 0, docSig, docTS, []byte(docBody), ErrBadSignature},
		{"timestamp changed", docSecret, 0, docSig, "1531420619", []byte(docBody), ErrBadSignature},
		{"stale, 5m1s old", docSecret, 5*time.Minute + time.Second, docSig, docTS, []byte(docBody), ErrStaleTimestamp},
		{"future, 5m1s ahead", docSecret, -5*time.Minute - time.Second, docSig, docTS, []byte(docBody), ErrStaleTimestamp},
		{"missing signature", docSecret, 0, "", docTS, []byte(docBody), ErrMissingSignature},
		{"missing timestamp", docSecret, 0, docSig, "", []byte(docBody), ErrMissingSignature},
		{"no v0= prefix", docSecret, 0, docSig[3:], docTS, []byte(docBody), ErrMalformedHeader},
		{"v1 scheme", docSecret, 0, "v1=" + docSig[3:], docTS, []byte(docBody), ErrMalformedHeader},
		{"short signature", docSecret, 0, docSig[:40], docTS, []byte(docBody), ErrMalformedHeader},
		{"not hex", docSecret, 0, "v0=" + string(make([]byte, 64)), docTS, []byte(docBody), ErrMalformedHeader},
		{"timestamp not a number", docSecret, 0, docSig, "15314206l8", []byte(docBody), ErrMalformedHeader},
		{"negative timestamp", docSecret, 0, docSig, "-1531420618", []byte(docBody), ErrMalformedHeader},
		{"no secret configured", "", 0, docSig, docTS, []byte(docBody), ErrNoSigningSecret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Verifier{Secret: tc.secret, Clock: docClock(tc.clock)}
			err := v.Verify(headers(tc.sig, tc.ts), tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifierWindowEdges(t *testing.T) {
	for _, off := range []time.Duration{5 * time.Minute, -5 * time.Minute, 299 * time.Second} {
		v := Verifier{Secret: docSecret, Clock: docClock(off)}
		if err := v.Verify(headers(docSig, docTS), []byte(docBody)); err != nil {
			t.Errorf("offset %s: %v, want accepted", off, err)
		}
	}
}

func TestSignRequestRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r, _ := http.NewRequest(http.MethodPost, "http://x/slack/events", nil)
	body := []byte(`{"type":"url_verification","challenge":"abc"}`)
	SignRequest(r, "s3cret", now, body)
	v := Verifier{Secret: "s3cret", Clock: incident.ClockFunc(func() time.Time { return now })}
	if err := v.Verify(r.Header, body); err != nil {
		t.Fatal(err)
	}
}
