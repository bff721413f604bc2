package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Request verification errors. Every one of them means the request is
// answered 401 and has no effect.
var (
	ErrMissingSignature = errors.New("missing X-Slack-Signature or X-Slack-Request-Timestamp")
	ErrMalformedHeader  = errors.New("malformed Slack signature headers")
	ErrStaleTimestamp   = errors.New("request timestamp outside the 5-minute window")
	ErrBadSignature     = errors.New("signature does not match")
	ErrNoSigningSecret  = errors.New("no signing secret configured")
)

// MaxSkew is how far a request's timestamp may be from now, either way.
const MaxSkew = 5 * time.Minute

// Verifier checks Slack's v0 request signatures: HMAC-SHA256 keyed with the
// signing secret over "v0:<timestamp>:<raw body>", compared in constant
// time, with the timestamp within MaxSkew of the clock (past or future).
type Verifier struct {
	Secret string
	Clock  incident.Clock // default incident.SystemClock
}

// Verify checks the signature headers of a request against its raw body.
func (v Verifier) Verify(h http.Header, body []byte) error {
	if v.Secret == "" {
		return ErrNoSigningSecret
	}
	sig, ts := h.Get("X-Slack-Signature"), h.Get("X-Slack-Request-Timestamp")
	if sig == "" || ts == "" {
		return ErrMissingSignature
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || secs <= 0 || len(ts) > 12 {
		return ErrMalformedHeader
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return ErrMalformedHeader
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrMalformedHeader
	}
	clock := v.Clock
	if clock == nil {
		clock = incident.SystemClock
	}
	if skew := clock.Now().Sub(time.Unix(secs, 0)); skew > MaxSkew || skew < -MaxSkew {
		return ErrStaleTimestamp
	}
	if !hmac.Equal(got, mac(v.Secret, ts, body)) {
		return ErrBadSignature
	}
	return nil
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the X-Slack-Signature value Slack would send for body at
// timestamp ts (unix seconds, as sent in X-Slack-Request-Timestamp).
func Sign(secret, ts string, body []byte) string {
	return "v0=" + hex.EncodeToString(mac(secret, ts, body))
}

// SignRequest sets the signature headers on r for body, signed at t. It is
// for tests and tools that play Slack.
func SignRequest(r *http.Request, secret string, t time.Time, body []byte) {
	ts := strconv.FormatInt(t.Unix(), 10)
	r.Header.Set("X-Slack-Request-Timestamp", ts)
	r.Header.Set("X-Slack-Signature", Sign(secret, ts, body))
}
