package pagerduty_test

import (
	"strings"
	"testing"

	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

func TestVerifySignatureGoPagerDutyVector(t *testing.T) {
	body := []byte(pdtest.VectorBody)
	if len(body) != 1655 {
		t.Fatalf("vector body is %d bytes, want 1655", len(body))
	}
	secrets := []string{pdtest.VectorSecret}
	if !pagerduty.VerifySignature(body, pdtest.VectorSignature, secrets) {
		t.Fatal("the go-pagerduty valid vector does not verify")
	}
	if pagerduty.VerifySignature(body, pdtest.VectorMismatch, secrets) {
		t.Fatal("the go-pagerduty mismatch vector verifies")
	}
	if got := pagerduty.Sign(body, pdtest.VectorSecret); got != pdtest.VectorSignature {
		t.Fatalf("Sign = %s", got)
	}
}

func TestVerifySignatureCases(t *testing.T) {
	body := []byte(pdtest.DocsPriorityUpdated)
	const old, cur = "old-secret", "new-secret"
	sigOld, sigNew := pagerduty.Sign(body, old), pagerduty.Sign(body, cur)
	tampered := []byte(strings.Replace(pdtest.DocsPriorityUpdated, "P1", "P5", 1))
	for _, tc := range []struct {
		name    string
		body    []byte
		header  string
		secrets []string
		want    bool
	}{
		{"docs sample", body, sigNew, []string{cur}, true},
		{"rotation: both signatures, either secret", body, sigOld + "," + sigNew, []string{cur}, true},
		{"rotation: both secrets configured", body, sigOld, []string{cur, old}, true},
		{"space after the comma", body, sigOld + ", " + sigNew, []string{cur}, true},
		{"upper-case hex", body, "v1=" + strings.ToUpper(strings.TrimPrefix(sigNew, "v1=")), []string{cur}, true},
		{"other secret", body, sigOld, []string{cur}, false},
		{"tampered body", tampered, sigNew, []string{cur}, false},
		{"v2 only", body, "v2=" + strings.TrimPrefix(sigNew, "v1="), []string{cur}, false},
		{"missing header", body, "", []string{cur}, false},
		{"garbage", body, "v1=zz,v1=", []string{cur}, false},
		{"truncated signature", body, sigNew[:20], []string{cur}, false},
		{"empty body", nil, pagerduty.Sign(nil, cur), []string{cur}, false},
		{"no secret configured", body, pagerduty.Sign(body, ""), nil, false},
	} {
		if got := pagerduty.VerifySignature(tc.body, tc.header, tc.secrets); got != tc.want {
			t.Errorf("%s: verified %v, want %v", tc.name, got, tc.want)
		}
	}
}
