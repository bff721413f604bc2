package app_test

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// An incident raised by an alert gets the hygiene of a page: the summary
// offers "Take commander", and when nobody acknowledges it within its
// severity's timeout the bot escalates and says so in the channel.
func TestAlertRaisedIncidentUntakenIsPromptedAndEscalated(t *testing.T) {
	const token = "alert-hygiene-token-0123456789"
	w := newPDWorld(t)
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{
		"ALERTMANAGER_WEBHOOK_TOKEN": token,
		"BOT_ANNOUNCE_CHANNEL":       w.general,
	})
	body := []byte(`{"version":"4","groupKey":"{}:{alertname=\"CheckoutErrors\"}","status":"firing","receiver":"incident-bot",
	"groupLabels":{"alertname":"CheckoutErrors"},"commonLabels":{"alertname":"CheckoutErrors","severity":"critical"},
	"commonAnnotations":{"summary":"Checkout is failing requests"},"externalURL":"http://alertmanager.example:9093","truncatedAlerts":0,
	"alerts":[{"status":"firing","labels":{"alertname":"CheckoutErrors","severity":"critical","instance":"web-1:9100"},
	"annotations":{"summary":"Checkout is failing requests"},"startsAt":"2026-11-16T03:00:00Z","endsAt":"0001-01-01T00:00:00Z",
	"generatorURL":"http://prometheus.example:9090/graph","fingerprint":"a1b2c3d4e5f60718"}]}`)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+bot.Addr+"/webhooks/alertmanager", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("Alertmanager notification answered %d, want 202", resp.StatusCode)
	}
	waitUntil(t, "the alert-raised incident and its channel", func() bool {
		list := bot.incidents(t)
		return len(list) == 1 && list[0].Chat.ChannelID != "" && bot.settled(w.clock.Now())
	})
	inc := bot.incidents(t)[0]
	if inc.Status != incident.StatusTriggered || inc.Severity != incident.SEV1 || inc.Roles[incident.RoleCommander] != "" {
		t.Fatalf("alert-raised incident %s is %s %s with commander %q, want a triggered SEV1 nobody leads",
			inc.ID(), inc.Status, inc.Severity, inc.Roles[incident.RoleCommander])
	}
	ch := inc.Chat.ChannelID
	if !slackSaid(w.slack, ch, "Take commander") {
		t.Fatalf("the summary in the incident's channel offers no Take commander button: %+v", w.slack.Messages(ch))
	}
	if !slackSaid(w.slack, w.general, "Checkout is failing requests") {
		t.Fatalf("the announce channel was not told of the alert-raised incident: %+v", w.slack.Messages(w.general))
	}

	// Nobody takes it: one SEV1 timeout (5 minutes by default) later the
	// bot escalates, once, and tells the channel.
	w.clock.Set(pdStart.Add(4 * time.Minute))
	waitUntil(t, "the queue before the timeout", func() bool { return bot.settled(w.clock.Now()) })
	if esc := ofKind(bot.timeline(t, inc.Number), incident.EventEscalated); len(esc) != 0 {
		t.Fatalf("escalated before the acknowledgement timeout: %+v", esc)
	}
	w.clock.Set(pdStart.Add(5*time.Minute + time.Second))
	waitUntil(t, "the automatic escalation", func() bool {
		return len(ofKind(bot.timeline(t, inc.Number), incident.EventEscalated)) == 1 && bot.settled(w.clock.Now())
	})
	waitUntil(t, "the escalation told in the channel", func() bool {
		return slackSaid(w.slack, ch, "still unacknowledged after 5m")
	})
	// Nobody is in an alert-raised incident's channel (an alert names no
	// one to invite), so the escalation is told in the announce channel too.
	waitUntil(t, "the escalation told in the announce channel", func() bool {
		return slackSaid(w.slack, w.general, "still unacknowledged after 5m")
	})
}
