package resilience_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
)

// outageProxy stands between the bot and a fake Slack or PagerDuty. It
// forwards every request until it is taken down; then the service is
// unreachable: requests fail alternately with a 503 and with the connection
// dropped without an answer, as a load balancer in front of a dead service
// and a dead host would.
type outageProxy struct {
	URL     string
	srv     *httptest.Server
	down    atomic.Bool
	seq     atomic.Int64
	refused *progress // requests failed while down
	passed  atomic.Int64
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{refused: newProgress()}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = u.Host
	}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.down.Load() {
			p.passed.Add(1)
			rp.ServeHTTP(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		defer p.refused.add(1)
		if p.seq.Add(1)%2 == 0 {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "<html><body>503 Service Unavailable</body></html>")
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "cannot drop the connection", http.StatusBadGateway)
			return
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

func (p *outageProxy) setDown(down bool) { p.down.Store(down) }
