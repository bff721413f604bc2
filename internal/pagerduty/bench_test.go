package pagerduty_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// benchConcurrency is how many deliveries are in flight at once.
const benchConcurrency = 32

type delivery struct {
	body []byte
	sig  string
	id   string
}

// deliveries builds n distinct signed deliveries spread over 50 PagerDuty
// incidents, each about as large as the documented sample.
func deliveries(n int, offset int) []delivery {
	out := make([]delivery, n)
	for i := range out {
		body := bytes.Replace(pdtest.WithEvent(fmt.Sprintf("bench-%d", offset+i), "incident.acknowledged"),
			[]byte(`"PGR0VU2"`), []byte(fmt.Sprintf(`"PB%05d"`, (offset+i)%50)), 1)
		out[i] = delivery{body: body, sig: pdtest.Sign(body, webhookSecret), id: fmt.Sprintf("wh-bench-%d", offset+i)}
	}
	return out
}

// blast sends ds to url from benchConcurrency clients and returns each
// request's latency.
func blast(b *testing.B, client *http.Client, url string, ds []delivery) []time.Duration {
	lat := make([]time.Duration, len(ds))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchConcurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ds) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(ds[i].body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(pagerduty.SignatureHeader, ds[i].sig)
				req.Header.Set(pagerduty.WebhookIDHeader, ds[i].id)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(start)
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	return lat
}

func p99(lat []time.Duration) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

// BenchmarkWebhookIntake measures POST /webhooks/pagerduty with durable
// storage (signature check, decode, one bbolt transaction with fsync per
// batch, on a real file) against a bare handler that only reads the body,
// in the same run and interleaved in rounds so that both see the same
// machine noise. It reports each one's throughput and p99 latency and the
// ratios durable/bare.
func BenchmarkWebhookIntake(b *testing.B) {
	store := bolttest.Open(b)
	durable := httptest.NewServer(pagerduty.NewIntake(pagerduty.IntakeConfig{Store: store, Secrets: []string{webhookSecret}, Logger: zap.NewNop()}))
	defer durable.Close()
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, pagerduty.MaxBody+1))
		w.WriteHeader(http.StatusAccepted)
	}))
	defer bare.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency, MaxConnsPerHost: benchConcurrency}}
	defer client.CloseIdleConnections()

	const round = 500
	all := deliveries(b.N, 0)
	// Warm up connections and the store.
	blast(b, client, bare.URL, deliveries(benchConcurrency, 0))
	blast(b, client, durable.URL, deliveries(benchConcurrency, 1<<30))

	var latD, latB []time.Duration
	var tookD, tookB time.Duration
	b.ResetTimer()
	for start := 0; start < len(all); start += round {
		ds := all[start:min(start+round, len(all))]
		t := time.Now()
		latB = append(latB, blast(b, client, bare.URL, ds)...)
		tookB += time.Since(t)
		t = time.Now()
		latD = append(latD, blast(b, client, durable.URL, ds)...)
		tookD += time.Since(t)
	}
	b.StopTimer()
	if n, _, _, _ := store.JobStats(); n != b.N+benchConcurrency {
		b.Fatalf("%d jobs stored, want %d", n, b.N+benchConcurrency)
	}
	rateD, rateB := float64(b.N)/tookD.Seconds(), float64(b.N)/tookB.Seconds()
	p99D, p99B := p99(latD), p99(latB)
	b.ReportMetric(rateD, "durable_req/s")
	b.ReportMetric(rateB, "bare_req/s")
	b.ReportMetric(rateD/rateB, "throughput_ratio")
	b.ReportMetric(float64(p99D.Microseconds())/1000, "durable_p99_ms")
	b.ReportMetric(float64(p99B.Microseconds())/1000, "bare_p99_ms")
	b.ReportMetric(float64(p99D)/float64(p99B), "p99_ratio")
}
