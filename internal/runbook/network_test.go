package runbook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDNS answers lookups from a table; a name with several answers gives
// the next one on each lookup (DNS rebinding).
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]string
}

func (d *fakeDNS) resolve(_ context.Context, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.answers[host]
	if len(a) == 0 {
		return nil, errors.New("no such host")
	}
	if len(a) > 1 {
		d.answers[host] = a[1:]
	}
	return []netip.Addr{netip.MustParseAddr(a[0])}, nil
}

func (h *harness) urlSpec(id string) spec {
	s := h.baseSpec(id, script("record.sh"), "{{url}}", "{{url.resolve}}")
	s["params"] = []any{map[string]any{"name": "url", "type": "url", "required": true}}
	at(s, "limits")["concurrency_key"] = "{{url}}"
	return s
}

// A URL or host parameter refuses loopback, link-local (cloud metadata)
// and private addresses: written literally, behind a name, and when the
// name resolves elsewhere by the time the run starts.
func TestNetworkTargetsRefused(t *testing.T) {
	dns := &fakeDNS{answers: map[string][]string{
		"public.test":   {"93.184.216.34"},
		"metadata.test": {"169.254.169.254"},
		"rebind.test":   {"93.184.216.34", "127.0.0.1"},
	}}
	h := newHarness(t, func(c *Config) { c.Resolve = dns.resolve })
	h.write(h.urlSpec("probe"))
	for _, tc := range []struct{ url, want string }{
		{"http://127.0.0.1:9090/metrics", "points to 127.0.0.1, a loopback address"},
		{"http://localhost/", "a loopback address"},
		{"http://0.0.0.0:8080/", "a loopback address"},
		{"http://[::1]/", "a loopback address"},
		{"http://[::ffff:127.0.0.1]/", "points to 127.0.0.1"},
		{"http://[64:ff9b::a9fe:a9fe]/", "a link-local address"},
		{"http://169.254.169.254/latest/meta-data/", "a link-local address (such as the cloud metadata service)"},
		{"http://10.1.2.3/", "a private-network address"},
		{"http://192.168.0.1/", "a private-network address"},
		{"http://metadata.test/", "points to 169.254.169.254"},
		{"http://nowhere.test/", "does not resolve"},
		{"ftp://public.test/", "must start with http:// or https://"},
		{"http://user:pw@public.test/", "must not contain a user name or password"},
	} {
		_, err := h.submit(requester, chanInc, "probe url="+tc.url)
		ue, ok := AsUserError(err)
		if !ok || !strings.Contains(ue.Message, tc.want) || !strings.Contains(ue.Message, "Nothing was run") {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
	}
	h.assertNothingRan()

	// Public: runs, with curl-style pinning to the address checked.
	if _, err := h.submit(requester, chanInc, "probe url=https://public.test/healthz"); err != nil {
		t.Fatal(err)
	}
	if res := h.result(); !strings.Contains(res.Output, "arg=[public.test:443:93.184.216.34]") {
		t.Fatalf("output %q", res.Output)
	}

	// The name is public when asked and loopback when the run starts: the
	// run is refused after the new lookup.
	s := h.urlSpec("probe2").with("risk", "medium").with("confirm", true)
	h.write(s)
	sub, err := h.submit(requester, chanInc, "probe2 url=http://rebind.test/")
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.eng.Confirm(context.Background(), sub.RunID, requester)
	if msg := mustUserError(t, err, KindDenied); !strings.Contains(msg, "points to 127.0.0.1, a loopback address") {
		t.Fatalf("refusal %q", msg)
	}
	h.assertExecutions(1)

	// allow_addresses opens exactly the listed classes.
	s = h.urlSpec("internal")
	at(s, "params", 0)["allow_addresses"] = []any{"loopback"}
	h.write(s)
	if _, err := h.submit(requester, chanInc, "internal url=http://127.0.0.1:8080/"); err != nil {
		t.Fatal(err)
	}
	if res := h.result(); !strings.Contains(res.Output, "arg=[127.0.0.1:8080:127.0.0.1]") {
		t.Fatalf("output %q", res.Output)
	}
	_, err = h.submit(requester, chanInc, "internal url=http://169.254.169.254/")
	mustUserError(t, err, KindInvalid)
	h.assertExecutions(2)
}

// The shipped check-http runbook, run for real with curl against a local
// server (its file allowing loopback for the test): it fails unless the
// status is the expected one (default 2xx-3xx).
func TestShippedCheckHTTPExpectsStatus(t *testing.T) {
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		t.Skip("curl is not installed")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		case "/moved":
			http.Redirect(w, r, "/", http.StatusMovedPermanently)
		default:
			fmt.Fprintln(w, "ok")
		}
	}))
	defer srv.Close()
	body, err := os.ReadFile("../../runbooks/check-http.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(body), "S0ONCALLPLACEHOLDER", "SREQUESTERS", 1)
	doc = strings.Replace(doc, "    type: url\n", "    type: url\n    allow_addresses: [loopback]\n", 1)
	h := newHarness(t)
	h.writeRaw("check-http", doc)
	for _, tc := range []struct {
		args   string
		status Status
		out    string
	}{
		{"url=" + srv.URL + "/healthz", StatusSucceeded, "HTTP 200"},
		{"url=" + srv.URL + "/missing", StatusFailed, "unexpected status 404"},
		{"url=" + srv.URL + "/moved", StatusSucceeded, "HTTP 301"},
		{"url=" + srv.URL + "/missing expect=404", StatusSucceeded, "HTTP 404"},
		{"url=" + srv.URL + "/healthz expect=5xx", StatusFailed, "unexpected status 200"},
		{"url=" + srv.URL + "/healthz expect=200-204", StatusSucceeded, "HTTP 200"},
	} {
		h.clock.Advance(time.Minute)
		if _, err := h.submit(requester, chanInc, "check-http "+tc.args); err != nil {
			t.Fatalf("%s: %v", tc.args, err)
		}
		if res := h.result(); res.Status != tc.status || !strings.Contains(res.Output, tc.out) {
			t.Errorf("%s: %s %q", tc.args, res.Status, res.Output)
		}
	}
	// The shipped file itself refuses the bot's own address.
	h2 := newHarness(t)
	h2.writeRaw("check-http", strings.Replace(string(body), "S0ONCALLPLACEHOLDER", "SREQUESTERS", 1))
	_, err = h2.submit(requester, chanInc, "check-http "+srv.URL+"/metrics")
	if msg := mustUserError(t, err, KindInvalid); !strings.Contains(msg, "a loopback address") {
		t.Fatalf("refusal %q", msg)
	}
}
