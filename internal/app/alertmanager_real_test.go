package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// The real Alertmanager: Debian's prometheus-alertmanager package (.ci/run
// installs it). ALERTMANAGER_BIN names another binary.
const alertmanagerInstall = "install it with `apt-get install prometheus-alertmanager` (Debian/Ubuntu), or set ALERTMANAGER_BIN to an alertmanager binary"

func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("ALERTMANAGER_BIN"); bin != "" {
		return bin
	}
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the Alertmanager binary is missing under CI: %s", alertmanagerInstall)
	}
	t.Skipf("Alertmanager binary not found; %s", alertmanagerInstall)
	return ""
}

// realAlertmanager is an Alertmanager process on loopback whose only
// receiver is the bot's webhook.
type realAlertmanager struct {
	url, config, botURL string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeConfig routes every alert, grouped by alertname, to the bot with
// token as the bearer token. The intervals are short so the test is fast:
// group_interval is how soon a changed group is sent again, and
// repeat_interval makes Alertmanager re-send an unchanged group, which
// the bot must ignore.
func (am *realAlertmanager) writeConfig(t *testing.T, token string) {
	t.Helper()
	cfg := fmt.Sprintf(`route:
  receiver: bot
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 300ms
  repeat_interval: 1s
receivers:
  - name: bot
    webhook_configs:
      - url: %s/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: %q
`, am.botURL, token)
	if err := os.WriteFile(am.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func startAlertmanager(t *testing.T, botURL, token string) *realAlertmanager {
	t.Helper()
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	port := freePort(t)
	am := &realAlertmanager{url: fmt.Sprintf("http://127.0.0.1:%d", port), config: filepath.Join(dir, "alertmanager.yml"), botURL: botURL}
	am.writeConfig(t, token)
	cmd := exec.Command(bin, "--config.file="+am.config, "--storage.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--web.external-url="+am.url,
		"--cluster.listen-address=", "--log.level=debug")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", logs.String())
		}
	})
	waitFor(t, 15*time.Second, "Alertmanager to be ready", func() bool {
		resp, err := http.Get(am.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return am
}

// post sends alerts to Alertmanager's API as Prometheus does.
func (am *realAlertmanager) post(t *testing.T, alerts ...map[string]any) {
	t.Helper()
	body, _ := json.Marshal(alerts)
	resp, err := http.Post(am.url+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting alerts to Alertmanager: HTTP %d", resp.StatusCode)
	}
}

func (am *realAlertmanager) reload(t *testing.T) {
	t.Helper()
	resp, err := http.Post(am.url+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reloading Alertmanager: HTTP %d", resp.StatusCode)
	}
}

// metric reads one counter of Alertmanager's /metrics (summed over the
// series whose labels contain match).
func (am *realAlertmanager) metric(t *testing.T, name, match string) float64 {
	t.Helper()
	resp, err := http.Get(am.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, match) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func promAlert(instance string, endsAt time.Time) map[string]any {
	a := map[string]any{
		"labels":       map[string]string{"alertname": "CheckoutErrors", "severity": "critical", "service": "checkout", "instance": instance},
		"annotations":  map[string]string{"summary": "Checkout is failing requests", "runbook_url": "https://runbooks.example/checkout"},
		"generatorURL": "http://prometheus.example/graph?g0.expr=errors",
	}
	if !endsAt.IsZero() {
		a["endsAt"] = endsAt.UTC().Format(time.RFC3339Nano)
	}
	return a
}

// TestRealAlertmanagerOpensAndResolvesOnce runs Debian's Alertmanager with
// its webhook receiver pointed at the bot and checks, over real
// deliveries: a wrong token is refused and the delivery succeeds once the
// token is fixed; one incident (and one channel) per alert group, however
// often Alertmanager re-sends it; an alert joining the group and the
// group's resolution reach the incident's channel.
func TestRealAlertmanagerOpensAndResolvesOnce(t *testing.T) {
	const token = "am-token-0123456789abcdef"
	w := newSlackWorld(t)
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{"ALERTMANAGER_WEBHOOK_TOKEN": "old-token-0123456789abcdef, " + token})
	am := startAlertmanager(t, bot.URL(), "wrong-token-0123456789abcd")
	list := func() []*incident.Incident {
		incs, err := bot.App.Service().List(context.Background(), incident.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return incs
	}

	// A wrong token: refused, so nothing opens.
	am.post(t, promAlert("web-1", time.Time{}))
	waitFor(t, 15*time.Second, "Alertmanager's refused delivery", func() bool {
		return am.metric(t, "alertmanager_notifications_failed_total", `integration="webhook"`) >= 1
	})
	if n := len(list()); n != 0 {
		t.Fatalf("a delivery with a wrong token opened %d incident(s)", n)
	}

	// The token is fixed (a rotation: the bot accepts both): Alertmanager's
	// next attempt is accepted and opens one incident with a channel.
	am.writeConfig(t, token)
	am.reload(t)
	var inc *incident.Incident
	waitFor(t, 20*time.Second, "the incident's channel", func() bool {
		incs := list()
		if len(incs) == 0 {
			return false
		}
		inc = bot.incident(t, incs[0].Number)
		return inc.Chat.ChannelID != "" && inc.Chat.SummaryID != ""
	})
	if inc.Title != "Checkout is failing requests" || inc.Severity != incident.SEV1 || inc.Status != incident.StatusTriggered || inc.Source != "alertmanager" {
		t.Fatalf("incident: %+v", inc)
	}

	// A second alert joins the group: on the timeline and in the channel,
	// not a second incident.
	am.post(t, promAlert("web-1", time.Time{}), promAlert("web-2", time.Time{}))
	waitFor(t, 20*time.Second, "the joining alert in the channel", func() bool {
		return anyText(w.fake, inc.Chat.ChannelID, "alert CheckoutErrors on web-2 is firing")
	})
	// Alertmanager re-sends the unchanged group every repeat_interval; let
	// it do so twice more.
	sent := am.metric(t, "alertmanager_notifications_total", `integration="webhook"`)
	waitFor(t, 20*time.Second, "two re-sends", func() bool {
		return am.metric(t, "alertmanager_notifications_total", `integration="webhook"`) >= sent+2
	})
	waitFor(t, 10*time.Second, "the bot to apply them", bot.idle)
	if n := len(list()); n != 1 {
		t.Fatalf("%d incidents for one alert group", n)
	}
	if n := countKind(bot.timeline(t, inc.Number), incident.EventAlert); n != 1 {
		t.Fatalf("%d alert events after re-sends, want 1 (the joining alert)", n)
	}

	// Both alerts resolve: the channel is told; the incident stays open.
	past := time.Now().Add(-time.Second)
	am.post(t, promAlert("web-1", past), promAlert("web-2", past))
	waitFor(t, 20*time.Second, "the group's resolution in the channel", func() bool {
		return anyText(w.fake, inc.Chat.ChannelID, "every alert of this group has resolved")
	})
	if got := bot.incident(t, inc.Number); got.Status != incident.StatusTriggered {
		t.Fatalf("the resolution moved the incident to %s without ALERT_AUTO_MITIGATE", got.Status)
	}
	// The message offers a one-click Mitigated; alice clicks it.
	var offer string
	for _, m := range w.fake.Messages(inc.Chat.ChannelID) {
		if strings.Contains(m.Text, "every alert of this group has resolved") && strings.Contains(string(m.Blocks), `"incident_mitigate"`) {
			offer = m.TS
		}
	}
	if offer == "" {
		t.Fatal("the group's resolution offers no Mitigated button")
	}
	if r, err := bot.send.Interaction(context.Background(), w.fake.BlockAction("U0ALICE", inc.Chat.ChannelID, offer, "incident_mitigate", inc.ID(), w.fake.NewResponseURL())); err != nil || r.Status != http.StatusOK {
		t.Fatalf("clicking Mitigated: %+v, %v", r, err)
	}
	waitFor(t, 10*time.Second, "the click to mitigate the incident", func() bool {
		return bot.incident(t, inc.Number).Status == incident.StatusMitigated
	})
	if n := len(list()); n != 1 {
		t.Fatalf("%d incidents at the end", n)
	}
	bot.noDeadJobs(t)
}
