package pagerduty

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SignatureHeader is the header PagerDuty signs V3 webhooks in.
const SignatureHeader = "X-PagerDuty-Signature"

// VerifySignature reports whether header (the X-PagerDuty-Signature value)
// carries a valid signature of body under any of secrets.
//
// The header holds one or more comma-separated "v1=<hex>" entries (several
// while a secret is being rotated); each is an HMAC-SHA256 of the raw body
// keyed with a subscription secret as-is. Entries are trimmed (go-pagerduty's
// verifier does not trim, but PagerDuty's docs show the list wrapped, and
// trimming cannot make a wrong signature right); other versions are
// ignored. Every comparison is constant-time.
func VerifySignature(body []byte, header string, secrets []string) bool {
	if len(body) == 0 || len(secrets) == 0 {
		return false
	}
	var sigs [][]byte
	for _, entry := range strings.Split(header, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(entry), "v1=")
		if !ok {
			continue
		}
		sig, err := hex.DecodeString(strings.TrimSpace(hexSig))
		if err != nil || len(sig) != sha256.Size {
			continue
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return false
	}
	ok := false
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		want := mac.Sum(nil)
		for _, sig := range sigs {
			// No early return: the time taken does not say which matched.
			if hmac.Equal(sig, want) {
				ok = true
			}
		}
	}
	return ok
}

// Sign returns the X-PagerDuty-Signature entry for body under secret:
// "v1=<hex>". Tests and the fake PagerDuty use it to sign deliveries.
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}
