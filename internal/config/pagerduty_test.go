package config

import (
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

func TestPagerDutyDefaults(t *testing.T) {
	cfg, err := Load("", fakeSource(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	pd := cfg.PagerDuty
	if pd.Enabled() || !pd.StatusSync() || pd.MirrorNotes || pd.Escalations() != 3 || pd.DefaultService != "" {
		t.Errorf("switches: %+v", pd)
	}
	prio, urg := pd.Priorities(), pd.Urgencies()
	if prio["P1"] != incident.SEV1 || prio["P2"] != incident.SEV2 || prio["P3"] != incident.SEV3 || prio["P4"] != incident.SEV4 || prio["P5"] != incident.SEV4 ||
		urg["HIGH"] != incident.SEV2 || urg["LOW"] != incident.SEV4 {
		t.Errorf("maps: %v %v", prio, urg)
	}
	ack, upd := pd.AckTimeoutsBySeverity(), pd.UpdateRemindersBySeverity()
	if ack[incident.SEV1] != 5*time.Minute || ack[incident.SEV2] != 10*time.Minute || ack[incident.SEV3] != 30*time.Minute || ack[incident.SEV4] != 0 {
		t.Errorf("ack timeouts: %v", ack)
	}
	if upd[incident.SEV1] != 30*time.Minute || upd[incident.SEV2] != time.Hour || upd[incident.SEV3] != 4*time.Hour || upd[incident.SEV4] != 0 {
		t.Errorf("update reminders: %v", upd)
	}
}

func TestPagerDutySettingsFromTheEnvironment(t *testing.T) {
	env := map[string]string{
		"PAGERDUTY_API_TOKEN":       "u+token",
		"PAGERDUTY_FROM_EMAIL":      "bot@example.com",
		"PAGERDUTY_WEBHOOK_SECRET":  " old-secret , new-secret ,",
		"PAGERDUTY_API_URL":         "http://127.0.0.1:9000/pd/",
		"PAGERDUTY_DEFAULT_SERVICE": " PWIXJZS ",
		"PAGERDUTY_PRIORITY_MAP":    "P1=SEV2, critical=sev1 ,Major=2",
		"PAGERDUTY_URGENCY_MAP":     "high=SEV1",
		"PAGERDUTY_SYNC_STATUS":     "false",
		"PAGERDUTY_MIRROR_NOTES":    "true",
		"BOT_ACK_TIMEOUTS":          "SEV1=2m, sev4=45m, SEV3=off",
		"BOT_MAX_ESCALATIONS":       "5",
		"BOT_UPDATE_REMINDERS":      "SEV2=1h30m",
	}
	cfg, err := Load("", fakeSource(env, nil))
	if err != nil {
		t.Fatal(err)
	}
	pd := cfg.PagerDuty
	if got := pd.WebhookSecrets(); strings.Join(got, "|") != "old-secret|new-secret" {
		t.Errorf("secrets %q", got)
	}
	if pd.APIURL != "http://127.0.0.1:9000/pd" || pd.DefaultService != "PWIXJZS" || pd.StatusSync() || !pd.MirrorNotes || pd.Escalations() != 5 {
		t.Errorf("settings: %+v", pd)
	}
	prio := pd.Priorities()
	if prio["P1"] != incident.SEV2 || prio["CRITICAL"] != incident.SEV1 || prio["MAJOR"] != incident.SEV2 || prio["P3"] != incident.SEV3 {
		t.Errorf("priorities merged over the defaults: %v", prio)
	}
	if u := pd.Urgencies(); u["HIGH"] != incident.SEV1 || u["LOW"] != incident.SEV4 {
		t.Errorf("urgencies: %v", u)
	}
	ack := pd.AckTimeoutsBySeverity()
	if ack[incident.SEV1] != 2*time.Minute || ack[incident.SEV2] != 10*time.Minute || ack[incident.SEV3] != 0 || ack[incident.SEV4] != 45*time.Minute {
		t.Errorf("ack timeouts: %v", ack)
	}
	if upd := pd.UpdateRemindersBySeverity(); upd[incident.SEV2] != 90*time.Minute || upd[incident.SEV1] != 30*time.Minute {
		t.Errorf("reminders: %v", upd)
	}
	zero, err := Load("", fakeSource(map[string]string{"BOT_MAX_ESCALATIONS": "0"}, nil))
	if err != nil || zero.PagerDuty.Escalations() != 0 {
		t.Errorf("zero escalations: %d %v", zero.PagerDuty.Escalations(), err)
	}
}

func TestPagerDutySettingsFromTheFile(t *testing.T) {
	files := map[string]string{"bot.yaml": `
pagerduty:
  from_email: bot@example.com
  api_token: u+token
  priority_map: {P1: SEV2, Critical: SEV1}
  ack_timeouts: "SEV1=1m,SEV2=off"
  update_reminders: {SEV1: 15m}
  max_escalations: 2
  sync_status: false
  mirror_notes: true
  default_service: PDEFAULT
`, "secret": "from-a-file\n"}
	cfg, err := Load("bot.yaml", fakeSource(map[string]string{"PAGERDUTY_WEBHOOK_SECRET_FILE": "secret"}, files))
	if err != nil {
		t.Fatal(err)
	}
	pd := cfg.PagerDuty
	if pd.Priorities()["CRITICAL"] != incident.SEV1 || pd.Priorities()["P1"] != incident.SEV2 ||
		pd.AckTimeoutsBySeverity()[incident.SEV1] != time.Minute || pd.AckTimeoutsBySeverity()[incident.SEV2] != 0 ||
		pd.UpdateRemindersBySeverity()[incident.SEV1] != 15*time.Minute || pd.Escalations() != 2 || pd.StatusSync() || !pd.MirrorNotes ||
		pd.DefaultService != "PDEFAULT" || pd.WebhookSecret.Value() != "from-a-file" {
		t.Errorf("from the file: %+v", pd)
	}
}

func TestPagerDutyProblemsAreReportedTogether(t *testing.T) {
	env := map[string]string{
		"PAGERDUTY_API_URL":         "ftp://pd",
		"PAGERDUTY_WEBHOOK_SECRET":  " , ",
		"PAGERDUTY_DEFAULT_SERVICE": "checkout api",
		"PAGERDUTY_MIRROR_NOTES":    "yes please",
		"PAGERDUTY_SYNC_STATUS":     "sometimes",
		"PAGERDUTY_PRIORITY_MAP":    "P1=SEV9",
		"PAGERDUTY_URGENCY_MAP":     "high",
		"BOT_ACK_TIMEOUTS":          "SEV1=5 minutes",
		"BOT_UPDATE_REMINDERS":      "SEV7=1h",
		"BOT_MAX_ESCALATIONS":       "-1",
	}
	_, err := Load("", fakeSource(env, nil))
	var problems Problems
	if err == nil {
		t.Fatal("no problems")
	}
	problems = err.(Problems)
	text := err.Error()
	for _, want := range []string{
		"PAGERDUTY_API_URL", "PAGERDUTY_WEBHOOK_SECRET holds no secret", "PAGERDUTY_DEFAULT_SERVICE \"checkout api\" must be a PagerDuty service id",
		"PAGERDUTY_DEFAULT_SERVICE is set but PAGERDUTY_API_TOKEN is not", "PAGERDUTY_MIRROR_NOTES: \"yes please\" is not true or false",
		"PAGERDUTY_SYNC_STATUS", "PAGERDUTY_PRIORITY_MAP: P1: \"SEV9\" is not a severity", "PAGERDUTY_URGENCY_MAP: \"high\" is not NAME=SEVERITY",
		"BOT_ACK_TIMEOUTS: SEV1: \"5 minutes\" is not a positive duration", "BOT_UPDATE_REMINDERS: \"SEV7\" is not a severity",
		"BOT_MAX_ESCALATIONS -1 must be between 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
	if len(problems) < 11 {
		t.Errorf("%d problems, want every one:\n%s", len(problems), text)
	}
	_, err = Load("", fakeSource(map[string]string{"PAGERDUTY_MIRROR_NOTES": "true"}, nil))
	if err == nil || !strings.Contains(err.Error(), "PAGERDUTY_MIRROR_NOTES is on but PAGERDUTY_API_TOKEN is not set") {
		t.Errorf("notes without a token: %v", err)
	}
}
