package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incidentbot/incident-bot/internal/alertmanager"
	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestEtcdModeAcceptsLargeWebhooks: in etcd mode the bot accepts an
// Alertmanager notification as large as the intake allows (here 3.5 MiB,
// over etcd's 1.5 MiB request limit), stores it before its 2xx and opens
// the incident from it.
func TestEtcdModeAcceptsLargeWebhooks(t *testing.T) {
	const token = "large-webhook-token-0123456789"
	c := etcdtest.Start(t, 1)
	w := newSlackWorld(t)
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{
		"BOT_STORE": "etcd", "BOT_ETCD_ENDPOINTS": strings.Join(c.Endpoints(), ","),
		"ALERTMANAGER_WEBHOOK_TOKEN": token,
	})
	var alerts []string
	pad := strings.Repeat("x", 1000)
	for i := 0; len(alerts)*1200 < 3500<<10; i++ {
		alerts = append(alerts, fmt.Sprintf(`{"status":"firing","labels":{"alertname":"DiskFull","instance":"node-%d:9100"},`+
			`"annotations":{"summary":"Disk full","detail":"%s"},"startsAt":"2026-11-16T03:00:00Z","endsAt":"0001-01-01T00:00:00Z",`+
			`"generatorURL":"http://prometheus.example:9090/graph","fingerprint":"%016x"}`, i, pad, i+1))
	}
	body := []byte(`{"version":"4","groupKey":"{}:{alertname=\"DiskFull\"}","status":"firing","receiver":"incident-bot",` +
		`"groupLabels":{"alertname":"DiskFull"},"commonLabels":{"alertname":"DiskFull","severity":"critical"},` +
		`"commonAnnotations":{"summary":"Disks are full"},"externalURL":"http://alertmanager.example:9093","truncatedAlerts":0,` +
		`"alerts":[` + strings.Join(alerts, ",") + `]}`)
	if len(body) <= 1536<<10 || len(body) > alertmanager.MaxBody {
		t.Fatalf("test body is %d bytes", len(body))
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, bot.URL()+"/webhooks/alertmanager", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a %d-byte notification answered %d, want 202", len(body), resp.StatusCode)
	}
	var inc *incident.Incident
	waitFor(t, 60*time.Second, "the incident opened from the large notification", func() bool {
		_ = bot.App.Service().Store().View(context.Background(), func(tx incident.Tx) error {
			all, _ := tx.Incidents(incident.Filter{})
			if len(all) == 1 {
				inc = all[0]
			}
			return nil
		})
		return inc != nil
	})
	if !strings.Contains(inc.Title, "Disk") {
		t.Fatalf("incident %s: %q", inc.ID(), inc.Title)
	}
	bot.noDeadJobs(t)
}

// TestEtcdRedeliveryKeysCarryLeases: in etcd mode every key that only
// guards against a redelivered Slack request (here a slash command's) is
// written with a lease, so etcd deletes it after the window and no pruning
// scan is needed; keys that carry state have none.
func TestEtcdRedeliveryKeysCarryLeases(t *testing.T) {
	c := etcdtest.Start(t, 1)
	w := newSlackWorld(t)
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{
		"BOT_STORE": "etcd", "BOT_ETCD_ENDPOINTS": strings.Join(c.Endpoints(), ","),
	})
	if r := bot.command(t, "U0ALICE", w.general, "declare sev2 Checkout is down"); !strings.Contains(r.Text(), "Declared *INC-1*") {
		t.Fatalf("declare: %s", r.Body)
	}
	cli := bot.App.Service().Store().(*etcdstore.Store).Client()
	resp, err := cli.Get(context.Background(), etcdstore.DefaultPrefix+"key/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	commands := 0
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), etcdstore.DefaultPrefix+"key/")
		if strings.HasPrefix(k, "slack-") {
			if strings.HasPrefix(k, "slack-command:") {
				commands++
			}
			if kv.Lease == 0 {
				t.Errorf("redelivery key %s has no lease", k)
			}
		}
	}
	if commands != 1 {
		t.Fatalf("%d slash-command keys, want 1", commands)
	}
}
