package slack_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// concurrentCommands is how many signed slash commands arrive at once.
const concurrentCommands = 50

// wave sends n signed slash commands at once and returns how long each
// took to be acknowledged. Requests are built and signed before the clock
// starts.
func wave(b *testing.B, client *http.Client, env *handlerEnv, url string, n int, text string) []time.Duration {
	b.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		body := []byte(env.send.CommandForm(slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: text}).Encode())
		r, _ := http.NewRequest(http.MethodPost, url+"/slack/commands", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		slack.SignRequest(r, secret, time.Now(), body)
		reqs[i] = r
	}
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			resp, err := client.Do(r)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			lat[i] = time.Since(t0)
			if resp.StatusCode != http.StatusOK {
				b.Errorf("HTTP %d", resp.StatusCode)
			}
		})
	}
	close(start)
	wg.Wait()
	return lat
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkSlashCommandAck measures how long Slack waits for the
// acknowledgement of a slash command when 50 signed commands arrive at
// once, through the real handler (verification, parsing, the dispatcher,
// the bbolt store) over HTTP, against a trivial handler on the same HTTP
// stack measured in the same run. Each iteration is one wave against each,
// interleaved so that machine noise hits both.
func BenchmarkSlashCommandAck(b *testing.B) {
	for _, tc := range []struct{ name, text string }{
		{"status", "status"},            // reads the store
		{"note", "note benchmark note"}, // a durable write (fsync) per command
	} {
		b.Run(tc.name, func(b *testing.B) {
			env := newHandlerEnv(b, slack.HandlerConfig{Logger: zap.NewNop()})
			trivial := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"response_type":"ephemeral","text":"ok"}`)
			}))
			defer trivial.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrentCommands * 2, MaxConnsPerHost: 0}}
			defer client.CloseIdleConnections()
			// Warm both up: connections, the store's pages.
			wave(b, client, env, trivial.URL, concurrentCommands, tc.text)
			wave(b, client, env, env.server.URL, concurrentCommands, tc.text)
			var base, real []time.Duration
			b.ResetTimer()
			for b.Loop() {
				base = append(base, wave(b, client, env, trivial.URL, concurrentCommands, tc.text)...)
				real = append(real, wave(b, client, env, env.server.URL, concurrentCommands, tc.text)...)
			}
			b.StopTimer()
			p50, p99 := percentile(real, 0.50), percentile(real, 0.99)
			b50, b99 := percentile(base, 0.50), percentile(base, 0.99)
			b.ReportMetric(ms(p50), "p50-ms")
			b.ReportMetric(ms(p99), "p99-ms")
			b.ReportMetric(ms(b50), "trivial-p50-ms")
			b.ReportMetric(ms(b99), "trivial-p99-ms")
			b.ReportMetric(float64(p50)/float64(b50), "p50-ratio")
			b.ReportMetric(float64(p99)/float64(b99), "p99-ratio")
			if p99 > 3*time.Second {
				b.Errorf("p99 acknowledgement %s is past Slack's 3 s", p99)
			}
		})
	}
}
