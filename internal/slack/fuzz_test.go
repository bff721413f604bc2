package slack_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// Fuzz targets for everything Slack sends over HTTP: the request
// signature, the Events API envelope, interaction payloads and slash
// command forms. The handlers run in process (httptest.NewRecorder) on a
// real bbolt store, with the Web API pointed at the fake Slack. The seeds
// (f.Add and testdata/fuzz) run in the normal test suite; fuzz one target
// at a time with, e.g.,
//
//	go test -run '^$' -fuzz '^FuzzEvents$' -fuzztime 60s ./internal/slack/

// Slack's documented vectors (PROTOCOLS §1.2, §1.3).
const (
	fzDocSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	fzDocTS     = "1531420618"
	fzDocBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	fzDocSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

	fzEventSecret = "e6b19c573432dcc6b075501d51b51bb8"
	fzEventTS     = "1531431954"
	fzEventBody   = `{"token":"aF5ynEYQH0dFN9imlgcADxDB","team_id":"XXXXXXXXX","api_app_id":"YYYYYYYYY","event":{"type":"app_mention","user":"AAAAAAAAA","text":"<@EEEEEEEEE> hello world","client_msg_id":"477cc591-ch73-a14z-4db8-g0cd76321bec","ts":"1531431954.000073","channel":"TTTTTTTTT","event_ts":"1531431954.000073"},"type":"event_callback","event_id":"TvBP7LRED7","event_time":1531431954,"authed_users":["EEEEEEEEE"]}`
	fzEventSig    = "v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c"

	fzURLVerification = `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
)

// refSign is the reference signer (PROTOCOLS §1.1), written independently
// of the code under test.
func refSign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// FuzzVerifier: the verifier accepts exactly when the signature is the
// HMAC of "v0:<timestamp>:<body>" under the secret and the timestamp is
// within five minutes of the injected clock, either way; any fuzzed
// mutation of a valid request is rejected.
func FuzzVerifier(f *testing.F) {
	f.Add(fzDocSecret, fzDocTS, fzDocSig, []byte(fzDocBody), int64(30), uint8(0), uint(0), byte(0))
	f.Add(fzEventSecret, fzEventTS, fzEventSig, []byte(fzEventBody), int64(0), uint8(1), uint(5), byte(1))
	f.Add(fzDocSecret, fzDocTS, refSign(fzDocSecret, fzDocTS, []byte(fzURLVerification)), []byte(fzURLVerification), int64(-300), uint8(2), uint(70), byte(0x20))
	f.Add(fzDocSecret, fzDocTS, fzDocSig, []byte(fzDocBody), int64(301), uint8(3), uint(1), byte(2))
	f.Add(fzDocSecret, fzDocTS, fzDocSig, []byte(fzDocBody), int64(-301), uint8(0), uint(9), byte(0xff))
	f.Add(fzDocSecret, fzDocTS, strings.ToUpper(fzDocSig), []byte(fzDocBody), int64(1), uint8(1), uint(0), byte(0))
	f.Add(fzDocSecret, fzDocTS, fzDocSig[3:], []byte(fzDocBody), int64(1), uint8(2), uint(0), byte(0))
	f.Add(fzDocSecret, "+"+fzDocTS, fzDocSig, []byte(fzDocBody), int64(1), uint8(3), uint(0), byte(0))
	f.Add(fzDocSecret, "0"+fzDocTS, fzDocSig, []byte(fzDocBody), int64(1), uint8(0), uint(0), byte(0))
	f.Add(fzDocSecret, " "+fzDocTS, fzDocSig+" ", []byte(fzDocBody), int64(1), uint8(0), uint(0), byte(0))
	f.Add("", fzDocTS, fzDocSig, []byte(fzDocBody), int64(0), uint8(0), uint(0), byte(0))
	f.Add("s", "", "", []byte{}, int64(0), uint8(0), uint(0), byte(0))
	f.Add("s", "99999999999999999999", "v0=", []byte("\x00"), int64(0), uint8(0), uint(0), byte(0))
	f.Add("s", "-1", "v0=zz", []byte("\xff\xfe"), int64(0), uint8(0), uint(0), byte(0))
	f.Add("s\x00", "1e9", "v1="+strings.Repeat("0", 64), []byte("a"), int64(0), uint8(0), uint(0), byte(0))
	f.Fuzz(func(t *testing.T, secret, ts, sig string, body []byte, skew int64, mode uint8, pos uint, xor byte) {
		skew %= 3600 // around the window; larger changes nothing
		secs, tsErr := strconv.ParseInt(ts, 10, 64)
		canonicalTS := tsErr == nil && secs > 0 && len(ts) <= 12 && strings.Trim(ts, "0123456789") == ""
		if tsErr != nil || secs <= 0 || secs > 1<<40 {
			secs = 1531420618 // the clock still needs a reference point
		}
		now := time.Unix(secs+skew, 0)
		v := slack.Verifier{Secret: secret, Clock: incident.ClockFunc(func() time.Time { return now })}
		hdr := func(sig, ts string) http.Header {
			h := http.Header{}
			h.Set("X-Slack-Signature", sig)
			h.Set("X-Slack-Request-Timestamp", ts)
			return h
		}
		inWindow := skew >= -300 && skew <= 300

		// Arbitrary headers: accepted only for the right HMAC, in the
		// window, with a secret configured.
		if err := v.Verify(hdr(sig, ts), body); err == nil {
			want := refSign(secret, ts, body)
			if secret == "" || !strings.EqualFold(sig, want) || !strings.HasPrefix(sig, "v0=") || tsErr != nil || !inWindow {
				t.Fatalf("accepted sig %q ts %q skew %ds; want %s", sig, ts, skew, want)
			}
		}

		// The right signature with a canonical timestamp: accepted exactly
		// inside the window.
		good := refSign(secret, ts, body)
		err := v.Verify(hdr(good, ts), body)
		switch {
		case secret == "":
			if !errors.Is(err, slack.ErrNoSigningSecret) {
				t.Fatalf("no secret configured: %v", err)
			}
			return
		case canonicalTS && inWindow && err != nil:
			t.Fatalf("a valid request (ts %q, skew %ds) rejected: %v", ts, skew, err)
		case !inWindow && err == nil:
			t.Fatalf("a request %ds off the clock accepted", skew)
		}
		if err != nil || xor == 0 {
			return
		}

		// A mutation of the valid request is rejected.
		switch mode % 4 {
		case 0: // a byte of the body
			if len(body) == 0 {
				body = []byte{0}
			}
			mutated := bytes.Clone(body)
			mutated[pos%uint(len(mutated))] ^= xor
			err = v.Verify(hdr(good, ts), mutated)
		case 1: // a character of the timestamp
			mutated := []byte(ts)
			mutated[pos%uint(len(mutated))] ^= xor
			err = v.Verify(hdr(good, string(mutated)), body)
		case 2: // a hex digit of the signature
			mutated := []byte(good)
			i := 3 + pos%64
			mutated[i] ^= xor
			if bytes.EqualFold(mutated, []byte(good)) && mutated[i] < 0x80 {
				return // the same digit in the other case
			}
			err = v.Verify(hdr(string(mutated), ts), body)
		case 3: // the secret
			err = slack.Verifier{Secret: secret + string(rune(xor)), Clock: v.Clock}.Verify(hdr(good, ts), body)
		}
		if err == nil {
			t.Fatalf("mutation %d at %d (^%#x) of a valid request accepted", mode%4, pos, xor)
		}
	})
}

// fzChannel is the incident channel the fake creates first; seeds name
// it so the fuzzer starts from events the bot acts on.
const fzChannel = "C0000001"

// fzResponseURL in a seed is replaced by a response URL of the fake, so
// that replies to it can be checked.
const fzResponseURL = "https://hooks.slack.com/actions/T0TEST/1/fuzz"

// fuzzEnv is one fake Slack and one real store shared by every input of a
// fuzz target; each input gets its own Handler (cheap), closed and joined
// before the checks.
type fuzzEnv struct {
	fake  *slacktest.Server
	store *boltstore.Store
	svc   *incident.Service
	cfg   slack.HandlerConfig
	now   time.Time
}

// loopbackOnly refuses any request that is not for the fake Slack: fuzzed
// payloads carry arbitrary response URLs, and the bot posts to them.
type loopbackOnly struct{ host string }

func (l loopbackOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != l.host {
		return nil, fmt.Errorf("fuzz: refusing a request to %q", r.URL.Host)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	f.Helper()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	fake := slacktest.NewServer(slacktest.Config{})
	f.Cleanup(fake.Close)
	fake.AddUser(slacktest.User{ID: "U0ALICE", Name: "alice"})
	api, _ := url.Parse(fake.APIURL())
	store := openStore(f)
	svc := incident.NewService(incident.ServiceConfig{Store: store})
	// The client outlives every input, and an *F cannot log once fuzzing
	// starts: it logs nowhere. The handlers log to each input's test.
	client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zap.NewNop(),
		Rates: fastRates(), HTTPClient: &http.Client{Transport: loopbackOnly{host: api.Host}}})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	inc, err := svc.Declare(ctx, incident.Declaration{Title: "db down", By: incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}})
	if err != nil {
		f.Fatal(err)
	}
	if err := (&incident.ChatSync{Store: store, Chat: client, Clock: incident.SystemClock}).Sync(ctx, inc.Number); err != nil {
		f.Fatal(err)
	}
	if got, _ := svc.Get(ctx, incident.Ref{Number: inc.Number}); got.Chat.ChannelID != fzChannel {
		f.Fatalf("INC-1's channel is %q; the seeds name %q", got.Chat.ChannelID, fzChannel)
	}
	return &fuzzEnv{fake: fake, store: store, svc: svc, now: now, cfg: slack.HandlerConfig{
		Client: client, Service: svc, SigningSecret: secret,
		Dispatcher: command.NewDispatcher(command.Config{Service: svc}),
		Clock:      incident.ClockFunc(func() time.Time { return now }),
	}}
}

// serve sends one signed request to the handler route picks and returns
// the answer once all the work it started has finished.
func (e *fuzzEnv) serve(t *testing.T, route func(*slack.Handler) http.Handler, contentType string, body []byte, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	cfg := e.cfg
	var errorLogs atomic.Int64
	cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel), zaptest.WrapOptions(zap.Hooks(func(e zapcore.Entry) error {
		if e.Level >= zapcore.ErrorLevel {
			errorLogs.Add(1)
		}
		return nil
	})))
	h, err := slack.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for k, v := range hdr {
		req.Header[k] = v
	}
	slack.SignRequest(req, secret, e.now, body)
	rec := httptest.NewRecorder()
	route(h).ServeHTTP(rec, req)
	// A click acknowledged is a job stored; run it as the app would.
	runClicks(t, e.store, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Error logs are for operators; the store and the fake Slack are
	// healthy, so nothing a client sends may produce one.
	if n := errorLogs.Load(); n != 0 {
		t.Fatalf("%d error log(s) for a client's request (answered %d)", n, rec.Code)
	}
	return rec
}

// storeState fingerprints what the store holds.
type storeState struct {
	stats boltstore.Stats
	inc1  int // events on INC-1's timeline
}

func (e *fuzzEnv) state(t *testing.T) storeState {
	t.Helper()
	st, err := e.store.Stats()
	if err != nil {
		t.Fatal(err)
	}
	_, events, err := e.svc.Timeline(context.Background(), incident.Ref{Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	st.SizeBytes = 0 // bbolt grows its file on its own schedule
	return storeState{stats: st, inc1: len(events)}
}

// assertInert fails if text could notify a crowd or is not valid UTF-8.
func assertInert(t *testing.T, where, text string) {
	t.Helper()
	for _, bad := range []string{"<!channel", "<!here", "<!everyone", "<!subteam"} {
		if strings.Contains(text, bad) {
			t.Fatalf("%s contains %q: %q", where, bad, text)
		}
	}
	if !utf8.ValidString(text) {
		t.Fatalf("%s is not valid UTF-8: %q", where, text)
	}
}

// fzEvent builds an event_callback body around an inner event.
func fzEvent(eventID string, inner string) string {
	return `{"token":"deprecated","team_id":"T0TEST","api_app_id":"A0TEST","event":` + inner +
		`,"type":"event_callback","event_id":"` + eventID + `","event_time":1772445600,` +
		`"authorizations":[{"enterprise_id":null,"team_id":"T0TEST","user_id":"U0BOT","is_bot":true,"is_enterprise_install":false}],"is_ext_shared_channel":false}`
}

// FuzzEvents drives POST /slack/events with signed, fuzzed bodies.
// Invariants: the answer is 200 or 400, never 401 or 5xx; a body that is
// not a JSON envelope is 400; url_verification echoes its challenge as
// text; a 400 stores nothing; a job is stored only for an event_callback
// with an event id whose inner event (reaction_added, pin_added or
// member_joined_channel) is in an incident channel, at most one; and a
// redelivery (Slack's retry) stores nothing more.
func FuzzEvents(f *testing.F) {
	for _, s := range []string{
		fzURLVerification,
		fzEventBody,
		`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","type":"app_rate_limited","team_id":"T123456","minute_rate_limited":1518467820,"api_app_id":"A123456"}`,
		fzEvent("Ev01PIN", `{"type":"reaction_added","user":"U0ALICE","reaction":"pushpin","item_user":"U0ALICE","item":{"type":"message","channel":"C0000001","ts":"1772445600.000100"},"event_ts":"1772445601.000200"}`),
		fzEvent("Ev01TONE", `{"type":"reaction_added","user":"U0ALICE","reaction":"pushpin::skin-tone-2","item":{"type":"message","channel":"C0000001","ts":"1772445600.000101"},"event_ts":"1772445601.000201"}`),
		fzEvent("Ev01BOT", `{"type":"reaction_added","user":"U0BOT","reaction":"pushpin","item":{"type":"message","channel":"C0000001","ts":"1772445600.000102"}}`),
		fzEvent("Ev01OTHER", `{"type":"reaction_added","user":"U0ALICE","reaction":"pushpin","item":{"type":"message","channel":"C9999999","ts":"1772445600.000103"}}`),
		fzEvent("Ev01FILE", `{"type":"reaction_added","user":"U0ALICE","reaction":"pushpin","item":{"type":"file","file":"F1"}}`),
		fzEvent("Ev01PINNED", `{"type":"pin_added","user":"U0ALICE","channel_id":"C0000001","item":{"type":"message","channel":"C0000001","message":{"type":"message","user":"U0ALICE","text":"rolled back <!channel>","ts":"1772445600.000104"},"created":1772445600,"created_by":"U0ALICE"},"event_ts":"1772445601.000204"}`),
		fzEvent("Ev01PINNULL", `{"type":"pin_added","user":"U0ALICE","channel_id":"C0000001","item":{"type":"message","message":null}}`),
		fzEvent("Ev01JOIN", `{"type":"member_joined_channel","user":"U0BOB","channel":"C0000001","channel_type":"C","team":"T0TEST","event_ts":"1772445601.000205"}`),
		fzEvent("Ev01JOINBOT", `{"type":"member_joined_channel","user":"U0BOT","channel":"C0000001"}`),
		fzEvent("Ev01HOME", `{"type":"app_home_opened","user":"U0ALICE","channel":"D0ALICE","tab":"home","event_ts":"1772445601.000206"}`),
		fzEvent("Ev01HOMEBAD", `{"type":"app_home_opened","user":"<!channel>","tab":"home"}`),
		fzEvent("Ev01MENTION", `{"type":"app_mention","text":"<@U0BOT> test","user":"U0ALICE","ts":"1610927831.000200","channel":"C0000001","event_ts":"1610927831.000200"}`),
		fzEvent("", `{"type":"member_joined_channel","user":"U0BOB","channel":"C0000001"}`),
		fzEvent("Ev01NULL", `null`),
		fzEvent("Ev01STR", `"member_joined_channel"`),
		fzEvent("Ev01NUM", `{"type":7,"user":["U0BOB"],"channel":{"id":"C0000001"}}`),
		fzEvent("Ev01NUL", `{"type":"member_joined_channel","user":"U0\u0000BOB","channel":"C0000001"}`),
		fzEvent("Ev\\u0000NUL", `{"type":"member_joined_channel","user":"U0CAROL","channel":"C0000001"}`),
		fzEvent(strings.Repeat("E", 40000), `{"type":"member_joined_channel","user":"U0DAVE","channel":"C0000001"}`),
		fzEvent("Ev01DEEP", strings.Repeat(`{"a":`, 5000)+"1"+strings.Repeat("}", 5000)),
		`{"type":"event_callback","event_id":"Ev01NOEVENT"}`,
		`{"type":"event_callback","event_id":"Ev01BADTIME","event_time":"yesterday","event":{"type":"member_joined_channel","user":"U0ERIN","channel":"C0000001"}}`,
		`{"type":"event_callback","event_id":"Ev01BIGTIME","event_time":1e400,"event":{}}`,
		`{"type":"event_callback","event_id":"Ev01AUTH","authorizations":null,"event":{"type":"member_joined_channel","user":"U0FRANK","channel":"C0000001"}}`,
		`{"type":"url_verification"}`,
		`{"type":"url_verification","challenge":null}`,
		`{"type":"url_verification","challenge":"<script>alert(1)</script>"}`,
		`{"type":"something_new","event_id":"Ev01NEW"}`,
		`{"type":null}`,
		`[]`, `null`, `""`, ``, `{`, "\xff\xfe", "{\"type\":\"url_verification\",\"challenge\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var probe struct {
			Type      string          `json:"type"`
			Challenge string          `json:"challenge"`
			EventID   string          `json:"event_id"`
			Event     json.RawMessage `json:"event"`
		}
		probeErr := json.Unmarshal(body, &probe)
		before := env.state(t)
		rec := env.serve(t, (*slack.Handler).Events, "application/json", body, nil)
		after := env.state(t)
		stored := after.stats.Jobs - before.stats.Jobs

		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("answered %d %q", rec.Code, rec.Body)
		}
		if probeErr != nil && rec.Code != http.StatusBadRequest {
			t.Fatalf("answered %d to a body that is not an envelope (%v)", rec.Code, probeErr)
		}
		if rec.Code == http.StatusBadRequest {
			if after != before {
				t.Fatalf("a 400 changed the store: %+v -> %+v", before, after)
			}
			if probeErr == nil && probe.Type == "url_verification" && probe.Challenge != "" {
				t.Fatal("a url_verification with a challenge answered 400")
			}
			return
		}
		if probe.Type == "url_verification" {
			if rec.Body.String() != probe.Challenge || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
				t.Fatalf("challenge %q answered %q (%s)", probe.Challenge, rec.Body, rec.Header().Get("Content-Type"))
			}
		}
		if probe.Type != "event_callback" && after != before {
			t.Fatalf("a %q body changed the store", probe.Type)
		}
		if after.stats.Incidents != before.stats.Incidents || after.stats.Events != before.stats.Events {
			t.Fatalf("an event changed incidents or timelines before its job ran: %+v -> %+v", before, after)
		}
		switch {
		case stored > 1:
			t.Fatalf("one event stored %d jobs", stored)
		case stored == 1:
			var inner struct {
				Type      string `json:"type"`
				Channel   string `json:"channel"`
				ChannelID string `json:"channel_id"`
				Item      struct {
					Channel string `json:"channel"`
				} `json:"item"`
			}
			_ = json.Unmarshal(probe.Event, &inner)
			inIncident := slices.Contains([]string{inner.Channel, inner.ChannelID, inner.Item.Channel}, fzChannel)
			if probe.EventID == "" || !inIncident ||
				!slices.Contains([]string{"reaction_added", "pin_added", "member_joined_channel"}, inner.Type) {
				t.Fatalf("stored a job for event %q of type %q (incident channel: %v)", probe.EventID, inner.Type, inIncident)
			}
		}
		if probe.Type != "event_callback" {
			return
		}
		// Slack retries a delivery it thinks failed; the retry adds nothing.
		retry := http.Header{"X-Slack-Retry-Num": {"1"}, "X-Slack-Retry-Reason": {"http_timeout"}}
		rec = env.serve(t, (*slack.Handler).Events, "application/json", body, retry)
		if again := env.state(t); rec.Code != http.StatusOK || again != after {
			t.Fatalf("redelivery answered %d and changed the store: %+v -> %+v", rec.Code, after, again)
		}
	})
}

// fzBlockAction is a block_actions payload clicking actionID with value.
func fzBlockAction(actionID, value, actionTS string) string {
	return `{"type":"block_actions","api_app_id":"A0TEST","token":"deprecated","trigger_id":"100001.4700001.abc001",` +
		`"user":{"id":"U0ALICE","username":"alice","name":"alice","team_id":"T0TEST"},"team":{"id":"T0TEST","domain":"test"},` +
		`"container":{"type":"message","message_ts":"1772445600.000100","channel_id":"C0000001","is_ephemeral":false},` +
		`"channel":{"id":"C0000001","name":"inc-1-db-down"},"message":{"type":"message","ts":"1772445600.000100"},` +
		`"response_url":"` + fzResponseURL + `",` +
		`"actions":[{"action_id":"` + actionID + `","block_id":"incident_actions","type":"button","value":"` + value + `","action_ts":"` + actionTS + `","text":{"type":"plain_text","text":"x"}}]}`
}

// fzDeclare is a view_submission of the declare form.
func fzDeclare(viewID, title, sev, desc, meta string) string {
	return `{"type":"view_submission","api_app_id":"A0TEST","token":"deprecated","trigger_id":"100002.4700002.abc002",` +
		`"user":{"id":"U0ALICE","username":"alice","name":"alice","team_id":"T0TEST"},"team":{"id":"T0TEST","domain":"test"},` +
		`"view":{"id":"` + viewID + `","team_id":"T0TEST","type":"modal","callback_id":"declare_incident","private_metadata":"` + meta + `",` +
		`"state":{"values":{"title":{"title":{"type":"plain_text_input","value":"` + title + `"}},` +
		`"severity":{"severity":{"type":"static_select","selected_option":{"value":"` + sev + `","text":{"type":"plain_text","text":"x"}}}},` +
		`"description":{"description":{"type":"plain_text_input","value":"` + desc + `"}}}}}}`
}

// fzMessageShortcut is a message_action payload on a message.
func fzMessageShortcut(callbackID, channel, ts, text string) string {
	return `{"type":"message_action","api_app_id":"A0TEST","token":"deprecated","trigger_id":"100005.4700005.abc005","callback_id":"` + callbackID + `",` +
		`"user":{"id":"U0ALICE","username":"alice","name":"alice","team_id":"T0TEST"},"team":{"id":"T0TEST","domain":"test"},` +
		`"channel":{"id":"` + channel + `","name":"x"},"message_ts":"` + ts + `","response_url":"` + fzResponseURL + `",` +
		`"message":{"type":"message","ts":"` + ts + `","user":"U0BOB","text":"` + text + `"}}`
}

// fzForm is a view_submission of a one-field form (update, resolve, the
// incident picker); a picker's value is the selected option.
func fzForm(viewID, callbackID, meta, block, value string) string {
	v := `{"type":"plain_text_input","value":"` + value + `"}`
	if callbackID == slack.PickIncidentCallbackID {
		v = `{"type":"static_select","selected_option":{"value":"` + value + `","text":{"type":"plain_text","text":"x"}}}`
	}
	return `{"type":"view_submission","api_app_id":"A0TEST","token":"deprecated","trigger_id":"100006.4700006.abc006",` +
		`"user":{"id":"U0ALICE","username":"alice","name":"alice","team_id":"T0TEST"},"team":{"id":"T0TEST","domain":"test"},` +
		`"view":{"id":"` + viewID + `","team_id":"T0TEST","type":"modal","callback_id":"` + callbackID + `","private_metadata":"` + meta + `",` +
		`"state":{"values":{"` + block + `":{"` + block + `":` + v + `}}}}}`
}

// FuzzInteractions drives POST /slack/interactions with signed form
// bodies whose payload field (or, with raw, the whole body) is fuzzed.
// Invariants: 200 or 400 only; 400 exactly for a body without a decodable
// payload, and it changes nothing; a 200 payload had a type and a user; an
// incident's timeline changes only through a summary button whose value
// names that incident (nothing else in the payload is trusted), and a new
// incident only through a submitted declare form with a view id; an
// update or resolve form changes only the incident its metadata names; a
// replayed click or form changes nothing; the answer is empty or a form's
// errors, and every reply to the response URL is ephemeral and inert.
func FuzzInteractions(f *testing.F) {
	for _, s := range []string{
		fzBlockAction(slack.ActionAck, "INC-1", "1772445600.000001"),
		fzBlockAction(slack.ActionMitigate, "INC-1", "1772445600.000002"),
		fzBlockAction(slack.ActionResolve, "1", "1772445600.000003"),
		fzBlockAction(slack.ActionLead, "INC-1", "1772445600.000004"),
		fzBlockAction(slack.ActionAck, "INC-2", "1772445600.000005"),
		fzBlockAction(slack.ActionAck, "INC-99999999999999999999", "1772445600.000006"),
		fzBlockAction(slack.ActionAck, "<!channel>", "1772445600.000007"),
		fzBlockAction(slack.ActionAck, "", ""),
		fzBlockAction(slack.ActionRunbookConfirm, "01RUN", "1772445600.000008"),
		fzBlockAction("unknown_action", "INC-1", "1772445600.000009"),
		fzBlockAction(slack.ActionResolve, "INC-1", strings.Repeat("9", 40000)),
		fzBlockAction(slack.ActionResolve, "INC-1\\u0000", "1772445600.000010"),
		strings.Replace(fzBlockAction(slack.ActionAck, "INC-1", "1772445600.000011"), `"actions":[{`, `"actions":[],"x":[{`, 1),
		strings.Replace(fzBlockAction(slack.ActionAck, "INC-1", "1772445600.000012"), `"actions":[{`, `"actions":null,"x":[{`, 1),
		strings.Replace(fzBlockAction(slack.ActionAck, "INC-1", "1772445600.000013"), `"id":"U0ALICE"`, `"id":""`, 1),
		strings.Replace(fzBlockAction(slack.ActionAck, "INC-1", "1772445600.000014"), `"channel_id":"C0000001"`, `"channel_id":7`, 1),
		// PROTOCOLS §2.5: slack-go's block_actions sample, with a user.
		`{"type":"block_actions","user":{"id":"U0ALICE"},"actions":[{"type":"multi_conversations_select","action_id":"multi_convos","block_id":"test123","selected_conversations":["G12345"]}],"container":{"type":"view","view_id":"V12345"},"state":{"values":{"section_block_id":{"multi_convos":{"type":"multi_conversations_select","selected_conversations":["G12345"]}},"other_block_id":{"other_action_id":{"type":"plain_text_input","value":"test123"}}}}}`,
		fzDeclare("V0001", "checkout returns 500s", "sev2", "since 10:02", "C0000001"),
		fzDeclare("V0002", "", "sev9", "", ""),
		fzDeclare("V0003", strings.Repeat("t", 300), "sev1", strings.Repeat("d", 5000), "../etc"),
		fzDeclare("", "no view id", "sev3", "", ""),
		fzDeclare(strings.Repeat("V", 40000), "huge view id", "sev3", "", ""),
		fzDeclare("V0004", "<!here> db \u202e down", "SEV1", "\\u0000", "C0000001"),
		strings.Replace(fzDeclare("V0005", "x", "sev2", "", ""), `"state":{`, `"state":null,"x":{`, 1),
		`{"type":"view_closed","user":{"id":"U0ALICE"},"view":{"id":"V0006","callback_id":"declare_incident"}}`,
		`{"type":"shortcut","user":{"id":"U0ALICE"},"callback_id":"declare_incident","trigger_id":"100003.4700003.abc003"}`,
		`{"type":"message_action","user":{"id":"U0ALICE"},"callback_id":"x"}`,
		fzMessageShortcut(slack.AddToTimelineCallbackID, "C0000001", "1772445600.000100", "rolled back"),
		fzMessageShortcut(slack.AddToTimelineCallbackID, "C0ELSEWHERE", "1772445600.000101", "<!channel> look"),
		fzMessageShortcut(slack.DeclareFromMessageCallbackID, "C0ELSEWHERE", "1772445600.000102", "checkout \u202e down\nsince 10:02"),
		fzMessageShortcut(slack.DeclareFromMessageCallbackID, "C0ELSEWHERE", "not-a-ts", "x"),
		fzMessageShortcut(slack.AddToTimelineCallbackID, "../etc", "1772445600.000103", "x"),
		fzForm("V0010", slack.UpdateCallbackID, `{\"n\":1,\"c\":\"C0000001\"}`, "update_text", "rolled back, watching"),
		fzForm("V0011", slack.UpdateCallbackID, `{\"n\":1}`, "update_text", "   "),
		fzForm("V0012", slack.ResolveCallbackID, `{\"n\":1}`, "resolution", "fixed <!here>"),
		fzForm("V0013", slack.ResolveCallbackID, `{\"n\":99}`, "resolution", "fixed"),
		fzForm("V0014", slack.UpdateCallbackID, `not json`, "update_text", "x"),
		fzForm("V0015", slack.PickIncidentCallbackID, `{\"c\":\"C0ELSEWHERE\",\"ts\":\"1772445600.000101\",\"t\":\"hi\"}`, "incident", "INC-1"),
		`{"type":"block_actions"}`,
		`{"user":{"id":"U0ALICE"}}`,
		`{"type":7,"user":"U0ALICE"}`,
		`[]`, `null`, `{`, "", "\xff",
	} {
		f.Add(s, false)
	}
	f.Add("payload=%7Bnot+json", true)
	f.Add("payload=%ZZ", true)
	f.Add("payload=", true)
	f.Add("", true)
	f.Add("payload="+url.QueryEscape(fzBlockAction(slack.ActionAck, "INC-1", "1772445600.000015"))+"&payload=%7B%7D", true)
	f.Add("payload=%7B%7D&payload="+url.QueryEscape(fzBlockAction(slack.ActionAck, "INC-1", "1772445600.000016")), true)
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, payload string, raw bool) {
		respURL := env.fake.NewResponseURL()
		payload = strings.ReplaceAll(payload, fzResponseURL, respURL)
		body := payload
		if !raw {
			body = url.Values{"payload": {payload}}.Encode()
		}
		before := env.state(t)
		rec := env.serve(t, (*slack.Handler).Interactions, "application/x-www-form-urlencoded", []byte(body), nil)
		after := env.state(t)

		// What a reader of the form could tell about the payload.
		form, formErr := url.ParseQuery(body)
		var probe struct {
			Type    string `json:"type"`
			Actions []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"actions"`
			View struct {
				ID              string `json:"id"`
				CallbackID      string `json:"callback_id"`
				PrivateMetadata string `json:"private_metadata"`
			} `json:"view"`
		}
		var minimal struct {
			Type string `json:"type"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		probeErr := formErr
		if probeErr == nil {
			probeErr = json.Unmarshal([]byte(form.Get("payload")), &minimal)
			// Best effort: a type error elsewhere still fills the rest.
			_ = json.Unmarshal([]byte(form.Get("payload")), &probe)
		}
		decodable := probeErr == nil && minimal.Type != "" && minimal.User.ID != ""

		switch rec.Code {
		case http.StatusBadRequest:
			if after != before {
				t.Fatalf("a 400 changed the store: %+v -> %+v", before, after)
			}
			if rec.Body.Len() > 64 {
				t.Fatalf("400 body echoes the input: %q", rec.Body)
			}
			return
		case http.StatusOK:
			if !decodable {
				t.Fatalf("200 for a payload without type or user (%v)", probeErr)
			}
		default:
			t.Fatalf("answered %d %q", rec.Code, rec.Body)
		}
		if rec.Body.Len() > 0 {
			var out struct {
				ResponseAction string            `json:"response_action"`
				Errors         map[string]string `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.ResponseAction != "errors" || len(out.Errors) == 0 {
				t.Fatalf("answer %q is not a form's errors", rec.Body)
			}
			for block, msg := range out.Errors {
				if !slices.Contains([]string{"title", "severity", "description", "update_text", "resolution", "summary", "impact", "incident"}, block) {
					t.Fatalf("error for unknown block %q", block)
				}
				assertInert(t, "form error", msg)
			}
		}
		for _, r := range env.fake.Responses(respURL) {
			if r.ResponseType == "in_channel" || r.Text == "" {
				t.Fatalf("reply %+v is not an ephemeral answer", r)
			}
			assertInert(t, "reply", r.Text)
		}

		button := probe.Type == "block_actions" && len(probe.Actions) > 0 &&
			slices.Contains([]string{slack.ActionAck, slack.ActionMitigate, slack.ActionResolve, slack.ActionLead, slack.ActionFollowupDone}, probe.Actions[0].ActionID)
		var target int64
		if button {
			id, _, _ := strings.Cut(probe.Actions[0].Value, "#") // followup_done: "INC-1#2"
			target, _ = incident.ParseID(id)
		}
		declare := probe.Type == "view_submission" && probe.View.CallbackID == slack.DeclareCallbackID && probe.View.ID != ""
		if probe.Type == "view_submission" && probe.View.ID != "" && (probe.View.CallbackID == slack.UpdateCallbackID || probe.View.CallbackID == slack.ResolveCallbackID) {
			var meta struct {
				N int64 `json:"n"`
			}
			if json.Unmarshal([]byte(probe.View.PrivateMetadata), &meta) == nil {
				button, target = true, meta.N // a form acts as a button on the incident it names
			}
		}
		switch {
		case after.inc1 != before.inc1 && target != 1:
			t.Fatalf("INC-1 changed through a %s payload aimed at incident %d", probe.Type, target)
		case after.stats.Incidents != before.stats.Incidents && !(declare && after.stats.Incidents == before.stats.Incidents+1):
			t.Fatalf("incidents %d -> %d through a %s payload", before.stats.Incidents, after.stats.Incidents, probe.Type)
		case after.stats.Events != before.stats.Events && !button && !declare:
			t.Fatalf("a %s payload changed a timeline", probe.Type)
		}
		if (button || declare) && after != before {
			// The same click or submission again: nothing more happens.
			rec = env.serve(t, (*slack.Handler).Interactions, "application/x-www-form-urlencoded", []byte(body), nil)
			if again := env.state(t); rec.Code != http.StatusOK || again.inc1 != after.inc1 || again.stats.Incidents != after.stats.Incidents || again.stats.Events != after.stats.Events {
				t.Fatalf("a replayed %s answered %d and changed the store: %+v -> %+v", probe.Type, rec.Code, after, again)
			}
		}
	})
}

// FuzzSlashCommand drives POST /slack/commands with signed, fuzzed form
// bodies. Invariants: 200 or 400 only; 400 exactly when the form does not
// parse or has no user_id, and it changes nothing; a 200 is empty (a modal
// opened) or an ephemeral reply; no reply, immediate or late, can notify a
// crowd or show an internal error.
func FuzzSlashCommand(f *testing.F) {
	form := func(user, channel, text string) string {
		return url.Values{
			"token": {"deprecated"}, "team_id": {"T0TEST"}, "team_domain": {"test"}, "channel_id": {channel},
			"channel_name": {"inc-1-db-down"}, "user_id": {user}, "user_name": {"alice"}, "command": {"/incident"},
			"text": {text}, "response_url": {fzResponseURL}, "trigger_id": {"100004.4700004.abc004"}, "api_app_id": {"A0TEST"},
		}.Encode()
	}
	for _, s := range []string{
		fzDocBody, // PROTOCOLS §1.2: another command, empty text
		form("U0ALICE", fzChannel, "help"),
		form("U0ALICE", fzChannel, "status"),
		form("U0ALICE", fzChannel, "note rolled back <!channel> &lt;b&gt;"),
		form("U0ALICE", fzChannel, "ack"),
		form("U0ALICE", "C9999999", "resolve INC-1 fixed"),
		form("U0ALICE", fzChannel, "declare sev2 checkout down"),
		form("U0ALICE", fzChannel, "declare"),
		form("U0ALICE", fzChannel, "sev INC-1 sev9"),
		form("U0ALICE", fzChannel, "role commander <@U0BOB|bob>"),
		form("U0ALICE", fzChannel, "run restart-deployment context=prod"),
		form("U0ALICE", fzChannel, "page"),
		form("U0ALICE", fzChannel, "list all"),
		form("U0ALICE", fzChannel, "\x00\xff"),
		form("", fzChannel, "help"),
		"user_id=U0ALICE&text=help&text=resolve",
		"user_id=U0ALICE;text=help",
		"user_id=U0ALICE&text=%ZZ",
		"user_id=%00&text=help",
		"user_id=U0ALICE&is_enterprise_install=maybe&enterprise_id=" + strings.Repeat("E", 5000),
		"&&&=&=",
		"",
		"\xff\xfe",
	} {
		f.Add(s)
	}
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		respURL := env.fake.NewResponseURL()
		body = strings.ReplaceAll(body, url.QueryEscape(fzResponseURL), url.QueryEscape(respURL))
		before := env.state(t)
		rec := env.serve(t, (*slack.Handler).Commands, "application/x-www-form-urlencoded", []byte(body), nil)
		after := env.state(t)

		v, formErr := url.ParseQuery(body)
		wantBad := formErr != nil || v.Get("user_id") == ""
		switch rec.Code {
		case http.StatusBadRequest:
			if !wantBad {
				t.Fatalf("400 %q for a form with a user", rec.Body)
			}
			if after != before {
				t.Fatalf("a 400 changed the store: %+v -> %+v", before, after)
			}
			return
		case http.StatusOK:
			if wantBad {
				t.Fatalf("200 for a form that does not parse or has no user_id (%v)", formErr)
			}
		default:
			t.Fatalf("answered %d %q", rec.Code, rec.Body)
		}
		if rec.Body.Len() > 0 {
			var ack struct {
				ResponseType string            `json:"response_type"`
				Text         string            `json:"text"`
				Blocks       []json.RawMessage `json:"blocks"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &ack); err != nil || ack.ResponseType != "ephemeral" || (ack.Text == "" && len(ack.Blocks) == 0) {
				t.Fatalf("acknowledgement %q is not an ephemeral reply", rec.Body)
			}
			assertInert(t, "acknowledgement", ack.Text)
		}
		for _, r := range env.fake.Responses(respURL) {
			if r.ResponseType == "in_channel" {
				t.Fatalf("late reply %+v is not ephemeral", r)
			}
			assertInert(t, "late reply", r.Text)
		}
	})
}
