package alertmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Source is Alertmanager as the domain names it; Name is how people do.
const (
	Source incident.Source = "alertmanager"
	Name                   = "Alertmanager"
)

// Message is the webhook payload, version 4: notify/webhook's Message (a
// template.Data plus version, groupKey and truncatedAlerts) in
// prometheus/alertmanager (notify/webhook/webhook.go, template/template.go).
// Only the fields the bot reads are declared.
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
	Status            string            `json:"status"` // "firing" or "resolved": the group's
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is template.Alert.
type Alert struct {
	Status       string            `json:"status"` // "firing" or "resolved"
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// ErrMalformed marks a body that is not a notification the bot can use
// (answered 400: Alertmanager does not retry it, and retrying would not
// help).
var ErrMalformed = errors.New("malformed Alertmanager notification")

// Decode parses a webhook body. It accepts payload version 4; it refuses a body without a group
// key or with an alert that has no fingerprint or status.
func Decode(body []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("%w: not JSON (syntax error at byte %d)", ErrMalformed, syn.Offset)
		}
		return nil, fmt.Errorf("%w: not a version 4 payload", ErrMalformed)
	}
	switch {
	case m.Version != "4":
		return nil, fmt.Errorf("%w: payload version %q; the bot reads version 4 (Alertmanager 0.16 and later)", ErrMalformed, incident.Clip(m.Version, 16))
	}
	if err := incident.CheckAlertGroup(m.GroupKey, m.Alerts, func(a Alert) (string, string) { return a.Fingerprint, a.Status }); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, incident.ErrorMessage(err))
	}
	return &m, nil
}

// Notification converts the message to the domain's alert notification.
func (m *Message) Notification() incident.AlertNotification {
	n := incident.AlertNotification{
		Source: Source, SourceName: Name, GroupKey: m.GroupKey, GroupLabels: m.GroupLabels,
		Truncated: int(min(m.TruncatedAlerts, 1<<20)), ExternalURL: m.ExternalURL,
	}
	for _, a := range m.Alerts {
		n.Alerts = append(n.Alerts, incident.Alert{
			Fingerprint: a.Fingerprint, Firing: a.Status == "firing", Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL, SilenceURL: silenceURL(m.ExternalURL, a.Labels),
		})
	}
	return n
}

// silenceURL opens Alertmanager's "new silence" form for the alert's
// labels, or "" without an external URL.
func silenceURL(external string, labels map[string]string) string {
	u, err := url.Parse(strings.TrimSpace(external))
	if external == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	var matchers []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		matchers = append(matchers, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return strings.TrimRight(u.String(), "/") + "/#/silences/new?filter=" + url.QueryEscape("{"+strings.Join(matchers, ",")+"}")
}
