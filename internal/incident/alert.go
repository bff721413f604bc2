package incident

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// This file is the alert-group side of the domain: how notifications from
// an alert router (Prometheus Alertmanager, Grafana alerting, a generic
// JSON webhook) open and move incidents. Such a router has no incidents of
// its own: it groups alerts and notifies about a group whenever it changes
// and again at intervals. Each router's adapter verifies and decodes its
// webhook into an AlertNotification; everything below is the same for all
// of them. The unit is the group: one incident per group while it is open.

// Alert is one alert of a group, in the domain's terms.
type Alert struct {
	// Fingerprint identifies the alert within its group (the router's
	// hash of its labels).
	Fingerprint string
	Firing      bool // false: resolved
	Labels      map[string]string
	Annotations map[string]string
	StartsAt    time.Time
	// GeneratorURL links to what raised it (a Prometheus graph, a Grafana
	// panel); SilenceURL to silencing it. Either may be empty.
	GeneratorURL string
	SilenceURL   string
}

// Name is the alert's alertname label, else its fingerprint.
func (a Alert) Name() string {
	if n := a.Labels["alertname"]; n != "" {
		return n
	}
	return a.Fingerprint
}

// describe names the alert for the timeline: its name and, since the
// alerts of a group usually share it, where it fires (the instance label).
func (a Alert) describe() string {
	if in := a.Labels["instance"]; in != "" {
		return a.Name() + " on " + in
	}
	return a.Name()
}

// AlertNotification is one notification about one group of alerts.
type AlertNotification struct {
	// Source is the router ("alertmanager"); SourceName is how people name
	// it ("Alertmanager").
	Source     Source
	SourceName string
	// GroupKey identifies the group within the source.
	GroupKey string
	// GroupLabels are the labels the group is made by.
	GroupLabels map[string]string
	// Alerts as the router sends them: the firing ones and the resolved
	// ones it still reports. Truncated counts those it left out.
	Alerts    []Alert
	Truncated int
	// ExternalURL links back to the router.
	ExternalURL string
}

// MaxGroupKey bounds an alert group's key. Routers' keys are label
// matchers of a route and the group's labels, far shorter.
const MaxGroupKey = 4096

// CheckAlertGroup is the check every alert router's decoder makes before a
// notification is stored, so that what is acknowledged can be applied: a
// group key of at most MaxGroupKey bytes, and for each alert a fingerprint
// and a status of "firing" or "resolved" (the words of Alertmanager's
// payload, which Grafana's extends). alert returns them for one alert of
// the router's own type. The error is EINVALID and says what is wrong.
func CheckAlertGroup[A any](groupKey string, alerts []A, alert func(A) (fingerprint, status string)) error {
	switch {
	case strings.TrimSpace(groupKey) == "":
		return Errorf(EINVALID, "groupKey missing")
	case len(groupKey) > MaxGroupKey:
		return Errorf(EINVALID, "groupKey longer than %d bytes", MaxGroupKey)
	}
	for i, a := range alerts {
		if fp, status := alert(a); fp == "" || (status != "firing" && status != "resolved") {
			return Errorf(EINVALID, "alert %d has no fingerprint or no firing/resolved status", i)
		}
	}
	return nil
}

// AlertJobKey is the job key that orders the stored notifications of one
// alert group: one at a time, in the order they arrived.
func AlertJobKey(src Source, groupKey string) string {
	sum := sha256.Sum256([]byte(groupKey))
	return string(src) + ":" + hex.EncodeToString(sum[:12])
}

// AlertPolicy maps alert groups onto incidents. It is the same for every
// alert source.
type AlertPolicy struct {
	// TitleFrom lists the annotation or label names tried in order for an
	// incident's title (annotations first, then labels, of the first firing
	// alert). Default: summary, then alertname.
	TitleFrom []string
	// Severities maps the "severity" label's value (lower case) to a
	// severity; the worst one among the firing alerts applies. Unmapped or
	// missing: DefaultSeverity.
	Severities map[string]Severity
	// AutoMitigate marks an incident mitigated when its whole group
	// resolves. Off: the channel is told and people decide. Alerts never
	// resolve an incident.
	AutoMitigate bool
	// ReopenWindow: a group that fires again within this time after its
	// incident was resolved reopens that incident; later (or when zero) it
	// opens a new incident that names the old one.
	ReopenWindow time.Duration
	// StormThreshold and StormWindow are the storm guard: once
	// StormThreshold alert groups opened incidents within StormWindow,
	// further groups attach to one storm incident (their alerts on its
	// timeline, the groups listed on its summary) instead of opening an
	// incident and a channel each. Zero threshold: off.
	StormThreshold int
	StormWindow    time.Duration
}

// alertStorm is the storm guard's state: when recent alert groups opened
// incidents, and the open storm incident, if any.
type alertStorm struct {
	Opened   []time.Time `json:"opened,omitempty"`
	Incident int64       `json:"incident,omitempty"`
}

const alertStormKey = "alert-storm"

// maxStormGroups bounds the groups listed on a storm incident's summary.
const maxStormGroups = 30

// stormIncident returns the storm incident a new group must attach to, or
// nil when the guard is off or the threshold is not reached (then the new
// group's opening is counted).
func stormIncident(tx Tx, n AlertNotification, p AlertPolicy, by Actor, now time.Time) (*Incident, []Event, error) {
	if p.StormThreshold <= 0 {
		return nil, nil, nil
	}
	window := p.StormWindow
	if window <= 0 {
		window = 10 * time.Minute
	}
	var st alertStorm
	if raw, ok, err := tx.Key(alertStormKey); err != nil {
		return nil, nil, err
	} else if ok {
		_ = json.Unmarshal(raw, &st) // a damaged record only resets the count
	}
	st.Opened = slices.DeleteFunc(st.Opened, func(t time.Time) bool { return now.Sub(t) > window })
	var storm *Incident
	var events []Event
	if len(st.Opened) >= p.StormThreshold {
		if st.Incident != 0 {
			inc, err := tx.Incident(st.Incident)
			if err != nil && ErrorCode(err) != ENOTFOUND {
				return nil, nil, err
			}
			if inc != nil && inc.Status.Open() {
				storm = inc
			}
		}
		if storm == nil {
			num, err := tx.NextIncidentNumber()
			if err != nil {
				return nil, nil, err
			}
			storm = &Incident{
				Number: num, Title: fmt.Sprintf("Alert storm: more than %d alert groups fired within %s", p.StormThreshold, FormatWait(window)),
				Description: "Further alert groups are attached here instead of opening an incident each (BOT_ALERT_STORM). Groups:",
				Severity:    SEV2, Status: StatusTriggered, Source: n.Source, DeclaredBy: by,
				DetectedAt: now, DeclaredAt: now, Roles: map[Role]string{},
			}
			events = append(events, storm.newEvent(EventDeclared, by, now, storm.Title, map[string]string{
				"severity": storm.Severity.String(), "status": string(storm.Status), "storm": "true",
			}))
			st.Incident = num
		}
	} else {
		st.Opened = append(st.Opened, now)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, nil, err
	}
	return storm, events, tx.PutKey(alertStormKey, raw, now)
}

// DefaultAlertSeverities is ALERT_SEVERITY_MAP's default.
var DefaultAlertSeverities = map[string]Severity{"critical": SEV1, "error": SEV2, "warning": SEV3, "info": SEV4}

// alertGroup is what the bot remembers of a group between notifications:
// its incident and the state of each alert it has seen. Comparing a
// notification with it is what makes the router's re-sends (at every
// group_interval and repeat_interval) change nothing.
type alertGroup struct {
	Incident int64                 `json:"incident,omitempty"`
	Alerts   map[string]alertState `json:"alerts,omitempty"`
	// Cleared: the whole group resolved and the channel was told.
	Cleared bool `json:"cleared,omitempty"`
}

type alertState struct {
	Firing bool   `json:"firing"`
	Name   string `json:"name,omitempty"`
}

// alertGroupKey is the store key of a group's state. Router group keys
// are long label matchers; their hash keeps the key short and safe.
func alertGroupKey(src Source, groupKey string) string {
	sum := sha256.Sum256([]byte(groupKey))
	return "alert-group:" + string(src) + ":" + hex.EncodeToString(sum[:16])
}

// ApplyAlerts applies one alert-group notification in one transaction and
// returns the group's incident (nil when the notification changed nothing
// that needs one: a resolved group the bot never saw fire).
//
//   - A group with firing alerts and no open incident opens one
//     (triggered, so the usual acknowledgement timers and escalation
//     apply), titled and rated by the policy, with the alerts' labels,
//     annotations and links. A group whose incident was resolved within
//     ReopenWindow reopens it instead.
//   - Alerts that join the group, resolve, or fire again go on the
//     timeline, once each: a re-sent notification that changes nothing
//     records nothing.
//   - When every alert of the group has resolved the channel is told
//     once; with AutoMitigate the incident is marked mitigated.
func (s *Service) ApplyAlerts(ctx context.Context, n AlertNotification, p AlertPolicy) (*Incident, error) {
	if n.GroupKey == "" || !n.Source.External() {
		return nil, Errorf(EINVALID, "alert notification without a group or an outside source")
	}
	var out *Incident
	err := s.write(ctx, func(tx Tx) error {
		out = nil
		now := s.clock.Now()
		key := alertGroupKey(n.Source, n.GroupKey)
		var g alertGroup
		if raw, ok, err := tx.Key(key); err != nil {
			return err
		} else if ok {
			if err := json.Unmarshal(raw, &g); err != nil {
				return fmt.Errorf("decoding alert group state: %w", err)
			}
		}
		if g.Alerts == nil {
			g.Alerts = map[string]alertState{}
		}
		var inc *Incident
		if g.Incident != 0 {
			var err error
			if inc, err = tx.Incident(g.Incident); err != nil && ErrorCode(err) != ENOTFOUND {
				return err
			}
		}
		events, inc, changed, err := applyAlerts(tx, inc, &g, n, p, now)
		if err != nil || !changed {
			out = inc
			return err
		}
		raw, err := json.Marshal(g)
		if err != nil {
			return err
		}
		if err := tx.PutKey(key, raw, now); err != nil {
			return err
		}
		out = inc
		if inc == nil {
			return nil
		}
		return s.commit(tx, inc, events, now)
	})
	if err != nil {
		return nil, fmt.Errorf("applying %s alerts of group %q: %w", n.SourceName, Clip(n.GroupKey, 80), err)
	}
	return out, nil
}

// applyAlerts compares n with the group's state g, updates both g and the
// incident (opening one if needed) and returns the timeline events, the
// incident and whether anything changed.
func applyAlerts(tx Tx, inc *Incident, g *alertGroup, n AlertNotification, p AlertPolicy, now time.Time) ([]Event, *Incident, bool, error) {
	by := Actor{Name: cmp.Or(n.SourceName, string(n.Source)), Source: n.Source}
	var fired, resolved []Alert
	changed := false
	for _, a := range n.Alerts {
		if a.Fingerprint == "" {
			continue
		}
		prev, known := g.Alerts[a.Fingerprint]
		switch {
		case a.Firing && (!known || !prev.Firing):
			fired = append(fired, a)
		case !a.Firing && known && prev.Firing:
			resolved = append(resolved, a)
		case known:
			continue
		}
		g.Alerts[a.Fingerprint] = alertState{Firing: a.Firing, Name: a.Name()}
		changed = true
	}
	if !changed {
		return nil, inc, false, nil
	}
	var events []Event
	firing := slices.ContainsFunc(slices.Collect(maps.Values(g.Alerts)), func(a alertState) bool { return a.Firing })
	switch {
	case len(fired) > 0 && (inc == nil || (!inc.Status.Open() && (p.ReopenWindow <= 0 || now.Sub(inc.ResolvedAt) > p.ReopenWindow))):
		// A new episode: only the alerts of this notification belong to it.
		prev := inc
		for fp, st := range g.Alerts {
			if !st.Firing {
				delete(g.Alerts, fp)
			}
		}
		storm, stormEvents, err := stormIncident(tx, n, p, by, now)
		if err != nil {
			return nil, nil, false, err
		}
		if storm != nil {
			// Attach the group to the storm incident: its alerts go on the
			// storm's timeline and the group is listed on its summary.
			g.Incident, g.Cleared = storm.Number, false
			title := alertTitle(fired[0], p.TitleFrom)
			if strings.Count(storm.Description, "\n- ") < maxStormGroups {
				storm.Description = truncate(storm.Description+"\n- "+title, MaxTextLength)
			}
			events = append(stormEvents, alertEvent(storm, by, n, fired[0], now, "attached",
				fmt.Sprintf("%s: alert group %s attached to this storm: %d alert(s) firing: %s", sourceLabel(n), title, len(fired), alertNames(fired))))
			return events, storm, true, nil
		}
		if inc, err = openFromAlerts(tx, n, fired, p, by, now); err != nil {
			return nil, nil, false, err
		}
		text := inc.Title
		if prev != nil {
			text += fmt.Sprintf(" (the same alert group as %s, which was resolved)", prev.ID())
		}
		d := inc.newEvent(EventDeclared, by, inc.DetectedAt, text, map[string]string{
			"severity": inc.Severity.String(), "status": string(inc.Status), "alert_group": n.GroupKey,
		})
		if prev != nil {
			d.Data["follows"] = prev.ID()
		}
		g.Incident, g.Cleared = inc.Number, false
		return append(events, d), inc, true, nil
	case inc == nil:
		return nil, nil, true, nil // resolved alerts of a group without an incident
	case len(fired) > 0 && !inc.Status.Open():
		e, err := inc.Reopen(by, now, "its alerts fired again")
		if err != nil {
			return nil, nil, false, err
		}
		events = append(events, e)
		g.Cleared = false
	}
	name := sourceLabel(n)
	for _, a := range fired {
		events = append(events, alertEvent(inc, by, n, a, now, "firing", fmt.Sprintf("%s: alert %s is firing%s", name, a.describe(), alertDetail(a))))
	}
	for _, a := range resolved {
		events = append(events, alertEvent(inc, by, n, a, now, "resolved", fmt.Sprintf("%s: alert %s resolved", name, a.describe())))
	}
	if len(fired) > 0 {
		g.Cleared = false
	}
	if !firing && !g.Cleared && inc.Status.Open() {
		g.Cleared = true
		text := fmt.Sprintf("%s: every alert of this group has resolved. If the problem is gone, mark %s mitigated (the button, or `mitigate`).", name, inc.ID())
		if p.AutoMitigate && inc.Status != StatusMitigated {
			text = fmt.Sprintf("%s: every alert of this group has resolved, so %s is marked mitigated (ALERT_AUTO_MITIGATE). Resolve it when you are done.", name, inc.ID())
		}
		cleared := alertEvent(inc, by, n, Alert{}, now, "cleared", text)
		if !p.AutoMitigate && inc.Status != StatusMitigated {
			cleared.Data["offer"] = "mitigate" // the chat shows a one-click Mitigated
		}
		events = append(events, cleared)
		if p.AutoMitigate && inc.Status != StatusMitigated {
			e, err := inc.Mitigate(by, now, "all alerts resolved")
			if err != nil {
				return nil, nil, false, err
			}
			events = append(events, e)
		}
	}
	return events, inc, true, nil
}

func sourceLabel(n AlertNotification) string { return cmp.Or(n.SourceName, string(n.Source)) }

func alertNames(as []Alert) string {
	names := make([]string, 0, len(as))
	for _, a := range as {
		names = append(names, a.Name())
	}
	return strings.Join(names, ", ")
}

func alertEvent(inc *Incident, by Actor, n AlertNotification, a Alert, at time.Time, change, text string) Event {
	data := map[string]string{"source": string(n.Source), "group": n.GroupKey, "change": change}
	if a.Fingerprint != "" {
		data["fingerprint"], data["alertname"] = a.Fingerprint, a.Name()
	}
	if a.GeneratorURL != "" {
		data["url"] = a.GeneratorURL
	}
	return inc.newEvent(EventAlert, by, at, truncate(text, MaxTextLength), data)
}

// alertDetail is an alert's summary and links for the timeline.
func alertDetail(a Alert) string {
	var b strings.Builder
	if s := strings.TrimSpace(a.Annotations["summary"]); s != "" {
		b.WriteString(": " + s)
	}
	for _, l := range alertLinks(a) {
		b.WriteString(" · " + l)
	}
	return b.String()
}

// alertLinks are the links of an alert worth a click.
func alertLinks(a Alert) []string {
	var out []string
	if a.GeneratorURL != "" {
		out = append(out, "source: "+a.GeneratorURL)
	}
	if u := strings.TrimSpace(a.Annotations["runbook_url"]); u != "" {
		out = append(out, "runbook: "+u)
	}
	if a.SilenceURL != "" {
		out = append(out, "silence: "+a.SilenceURL)
	}
	return out
}

// openFromAlerts builds a new triggered incident for the group's firing
// alerts; the caller stores it.
func openFromAlerts(tx Tx, n AlertNotification, firing []Alert, p AlertPolicy, by Actor, now time.Time) (*Incident, error) {
	num, err := tx.NextIncidentNumber()
	if err != nil {
		return nil, err
	}
	first := firing[0]
	title := alertTitle(first, p.TitleFrom)
	if title == "" {
		title = cmp.Or(n.SourceName, string(n.Source)) + " alert"
	}
	sev := Severity(0)
	sevs := p.Severities
	if sevs == nil {
		sevs = DefaultAlertSeverities
	}
	detected := now
	for _, a := range firing {
		if s, ok := sevs[strings.ToLower(strings.TrimSpace(a.Labels["severity"]))]; ok && (sev == 0 || s < sev) {
			sev = s
		}
		if !a.StartsAt.IsZero() && a.StartsAt.Before(detected) {
			detected = a.StartsAt
		}
	}
	if !sev.Valid() {
		sev = DefaultSeverity
	}
	// Labels every firing alert shares describe the incident (the group's
	// labels at least); the rest are per alert, on the timeline.
	labels := map[string]string{}
	maps.Copy(labels, n.GroupLabels)
	for k, v := range first.Labels {
		if !slices.ContainsFunc(firing, func(a Alert) bool { return a.Labels[k] != v }) {
			labels[k] = v
		}
	}
	var desc strings.Builder
	if d := strings.TrimSpace(first.Annotations["description"]); d != "" {
		desc.WriteString(d)
	}
	fmt.Fprintf(&desc, "\n%d alert(s) firing: %s", len(firing), alertNames(firing))
	if n.Truncated > 0 {
		fmt.Fprintf(&desc, " (and %d more not sent)", n.Truncated)
	}
	if len(labels) > 0 {
		pairs := make([]string, 0, len(labels))
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			pairs = append(pairs, k+"="+labels[k])
		}
		desc.WriteString("\nlabels: " + strings.Join(pairs, ", "))
	}
	for _, l := range alertLinks(first) {
		desc.WriteString("\n" + l)
	}
	inc := &Incident{
		Number:      num,
		Title:       truncate(title, MaxTitleLength),
		Description: truncate(strings.TrimSpace(desc.String()), MaxTextLength),
		Severity:    sev,
		Status:      StatusTriggered,
		Source:      n.Source,
		DeclaredBy:  by,
		DetectedAt:  detected,
		DeclaredAt:  now,
		Roles:       map[Role]string{},
		Labels:      labels,
	}
	if svc := labels["service"]; svc != "" {
		inc.Services = []string{svc}
	}
	return inc, nil
}

// alertTitle is the first non-empty annotation or label of a named by from
// (default: summary, then alertname).
func alertTitle(a Alert, from []string) string {
	if len(from) == 0 {
		from = []string{"summary", "alertname"}
	}
	for _, k := range from {
		if v := strings.TrimSpace(a.Annotations[k]); v != "" {
			return v
		}
		if v := strings.TrimSpace(a.Labels[k]); v != "" {
			return v
		}
	}
	return ""
}
