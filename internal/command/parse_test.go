package command

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/incidentbot/incident-bot/internal/incident"
)

func TestParse(t *testing.T) {
	slack := Options{}
	shell := Options{PlainMentions: true}
	tests := []struct {
		text string
		opts Options
		want Command
	}{
		{"", slack, Command{Verb: VerbHelp}},
		{"  help ", slack, Command{Verb: VerbHelp}},
		{"declare sev1 Database is down", slack, Command{Verb: VerbDeclare, Severity: incident.SEV1, Text: "Database is down"}},
		{"DECLARE SEV2  payments  5xx", slack, Command{Verb: VerbDeclare, Severity: incident.SEV2, Text: "payments  5xx"}},
		{"declare Database is down", slack, Command{Verb: VerbDeclare, Text: "Database is down"}},
		{"declare 2 nodes down", slack, Command{Verb: VerbDeclare, Text: "2 nodes down"}},
		{"declare SEV-1 db down", slack, Command{Verb: VerbDeclare, Severity: incident.SEV1, Text: "db down"}},
		{"declare sev-2 db down", slack, Command{Verb: VerbDeclare, Severity: incident.SEV2, Text: "db down"}},
		{"declare P1 db down", slack, Command{Verb: VerbDeclare, Severity: incident.SEV1, Text: "db down"}},
		{"declare Critical path broken", slack, Command{Verb: VerbDeclare, Text: "Critical path broken",
			Note: "The title starts with “Critical”, which I did not take as a severity; change the severity with `sev <1-4>` if you meant one."}},
		{"sev critical", slack, Command{Verb: VerbSev, Severity: incident.SEV1}},
		{"sev P3", slack, Command{Verb: VerbSev, Severity: incident.SEV3}},
		{"help followup", slack, Command{Verb: VerbHelp, Text: "followup"}},
		{"declare", slack, Command{Verb: VerbDeclare}},
		{"declare sev3", slack, Command{Verb: VerbDeclare, Severity: incident.SEV3}},
		{"list", slack, Command{Verb: VerbList}},
		{"list all", slack, Command{Verb: VerbList, All: true, Text: "all"}},
		{"list sev1 mine service=checkout since=7d page=2", slack, Command{Verb: VerbList, Text: "sev1 mine service=checkout since=7d page=2"}},
		{"status", slack, Command{Verb: VerbStatus}},
		{"status INC-7", slack, Command{Verb: VerbStatus, Incident: 7}},
		{"update we are failing over", slack, Command{Verb: VerbUpdate, Text: "we are failing over"}},
		{"update inc-3 rollback done", slack, Command{Verb: VerbUpdate, Incident: 3, Text: "rollback done"}},
		{"ack", slack, Command{Verb: VerbAck}},
		{"acknowledge INC-12", slack, Command{Verb: VerbAck, Incident: 12}},
		{"mitigate", slack, Command{Verb: VerbMitigate}},
		{"mitigate feature flag off", slack, Command{Verb: VerbMitigate, Text: "feature flag off"}},
		{"resolve INC-7 rolled back", slack, Command{Verb: VerbResolve, Incident: 7, Text: "rolled back"}},
		{"reopen INC-7 errors are back", slack, Command{Verb: VerbReopen, Incident: 7, Text: "errors are back"}},
		{"sev 1", slack, Command{Verb: VerbSev, Severity: incident.SEV1}},
		{"sev INC-2 sev4", slack, Command{Verb: VerbSev, Incident: 2, Severity: incident.SEV4}},
		{"role commander <@U012AB3CD>", slack, Command{Verb: VerbRole, Role: incident.RoleCommander, User: "U012AB3CD"}},
		{"role comms <@U012AB3CD|alice>", slack, Command{Verb: VerbRole, Role: incident.RoleComms, User: "U012AB3CD"}},
		{"role <@W0ABC|bob> scribe", slack, Command{Verb: VerbRole, Role: incident.RoleScribe, User: "W0ABC"}},
		{"role INC-4 ic <@U1>", slack, Command{Verb: VerbRole, Incident: 4, Role: incident.RoleCommander, User: "U1"}},
		{"role scribe @bob", shell, Command{Verb: VerbRole, Role: incident.RoleScribe, User: "bob"}},
		{"role scribe <@bob>", shell, Command{Verb: VerbRole, Role: incident.RoleScribe, User: "bob"}},
		{"lead", slack, Command{Verb: VerbLead}},
		{"note INC-7 primary at 100% disk", slack, Command{Verb: VerbNote, Incident: 7, Text: "primary at 100% disk"}},
		{"note\u00a0nbsp separated", slack, Command{Verb: VerbNote, Text: "nbsp separated"}},
		{"timeline", slack, Command{Verb: VerbTimeline}},
		{"followup add an alert on lag", slack, Command{Verb: VerbFollowup, Text: "add an alert on lag"}},
		{"followup due diligence on the vendor", slack, Command{Verb: VerbFollowup, Text: "due diligence on the vendor"}},
		{"followup done 2", slack, Command{Verb: VerbFollowup, FollowupOp: incident.FollowupDone, Followup: 2}},
		{"followup INC-4 done #2", slack, Command{Verb: VerbFollowup, Incident: 4, FollowupOp: incident.FollowupDone, Followup: 2}},
		{"followup reopen 1", slack, Command{Verb: VerbFollowup, FollowupOp: incident.FollowupReopen, Followup: 1}},
		{"followup assign 3 <@U012AB3CD|bob>", slack, Command{Verb: VerbFollowup, FollowupOp: incident.FollowupAssign, Followup: 3, User: "U012AB3CD"}},
		{"followup assign 3 @bob", shell, Command{Verb: VerbFollowup, FollowupOp: incident.FollowupAssign, Followup: 3, User: "bob"}},
		{"followup due 3 in 2 weeks", slack, Command{Verb: VerbFollowup, FollowupOp: incident.FollowupDue, Followup: 3, Text: "in 2 weeks"}},
		{"followups", slack, Command{Verb: VerbFollowups}},
		{"followups INC-3", slack, Command{Verb: VerbFollowups, Incident: 3}},
		{"page payments-api please join", slack, Command{Verb: VerbPage, Text: "payments-api please join"}},
		{"escalate INC-9", slack, Command{Verb: VerbEscalate, Incident: 9}},
		{"runbooks", slack, Command{Verb: VerbRunbooks}},
		{"run check-dns host=example.com --dry-run", slack, Command{Verb: VerbRun, Text: "check-dns host=example.com --dry-run"}},
		{"postmortem", slack, Command{Verb: VerbPostmortem}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.text, tt.opts)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.text, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) =\n %+v, want\n %+v", tt.text, got, tt.want)
		}
	}
}

func TestParseErrorsSayWhatIsWrongAndHowToUseIt(t *testing.T) {
	tests := []struct {
		text  string
		want  []string // substrings of the message
		usage string   // expected usage line, "" for none
	}{
		{"frobnicate", []string{"don't know the command `frobnicate`", "`help`"}, ""},
		{"resolv", []string{"Did you mean `resolve`?"}, ""},
		{"decalre sev1 db", []string{"Did you mean `declare`?"}, ""},
		{"declare sev5 db down", []string{"`sev5` is not a severity"}, "declare [sev1|sev2|sev3|sev4] <title>"},
		{"declare P5 db down", []string{"`P5` is not a severity", "P1 to P4"}, "declare [sev1|sev2|sev3|sev4] <title>"},
		{"sev", []string{"Give the new severity"}, "sev [INC-n] <1-4>"},
		{"sev 0", []string{"is not a severity"}, "sev [INC-n] <1-4>"},
		{"sev 2 now", []string{"only the severity"}, "sev [INC-n] <1-4>"},
		{"role", []string{"Name the role and the person"}, "role [INC-n] <commander|comms|scribe> <@user>"},
		{"role janitor <@U1>", []string{"is not a role"}, "role [INC-n] <commander|comms|scribe> <@user>"},
		{"role commander alice", []string{"is not a person", "mention them with @"}, "role [INC-n] <commander|comms|scribe> <@user>"},
		{"role commander @alice", []string{"is not a person"}, "role [INC-n] <commander|comms|scribe> <@user>"}, // Slack must send an id
		{"note", []string{"Write the note"}, "note [INC-n] <text>"},
		{"update INC-3", []string{"Write the update"}, "update [INC-n] <text>"},
		{"ack now please", []string{"takes no text"}, "ack [INC-n]"},
		{"resolve INC7 done", []string{"`INC7` is not an incident id", "INC-7"}, "resolve [INC-n] [text]"},
		{"status #12", []string{"not an incident id"}, "status [INC-n]"},
		{"list everything", []string{"`list` does not know \"everything\""}, "list [all] [sev1-4] [mine] [service=NAME] [since=7d|DATE] [page=N]"},
		{"list since=soon", []string{"not a time to list since"}, "list [all] [sev1-4] [mine] [service=NAME] [since=7d|DATE] [page=N]"},
		{"followup", []string{"Describe the follow-up"}, "followup [INC-n] <text> | done <n> | reopen <n> | assign <n> <@user> | due <n> <date>"},
		{"followup done", []string{"Which follow-up?", "`followup done <n>`"}, "followup [INC-n] <text> | done <n> | reopen <n> | assign <n> <@user> | due <n> <date>"},
		{"followup done 2 now", []string{"takes only the number"}, "followup [INC-n] <text> | done <n> | reopen <n> | assign <n> <@user> | due <n> <date>"},
		{"followup assign 2 bob", []string{"Name one owner"}, "followup [INC-n] <text> | done <n> | reopen <n> | assign <n> <@user> | due <n> <date>"},
		{"followup due 2", []string{"Give the due date"}, "followup [INC-n] <text> | done <n> | reopen <n> | assign <n> <@user> | due <n> <date>"},
		{"run", []string{"Name the runbook"}, "run <runbook> [name=value ...] [--dry-run]"},
		{strings.Repeat("x", MaxCommandLength+1), []string{"too long"}, ""},
	}
	for _, tt := range tests {
		_, err := Parse(tt.text, Options{})
		if err == nil {
			t.Errorf("Parse(%q) succeeded", clip(tt.text, 40))
			continue
		}
		msg := err.Error()
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("Parse(%q) error %q lacks %q", clip(tt.text, 40), msg, w)
			}
		}
		hasUsage := strings.Contains(msg, "Usage: `"+tt.usage+"`")
		if tt.usage != "" && !hasUsage {
			t.Errorf("Parse(%q) error %q lacks usage %q", clip(tt.text, 40), msg, tt.usage)
		}
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	help := HelpText()
	for _, s := range specs {
		if !strings.Contains(help, "`"+s.usage+"`") {
			t.Errorf("help lacks %q", s.usage)
		}
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts is
// well formed: a known verb, an explicit incident only where allowed,
// valid severities and roles, a user for role; errors are short and valid
// UTF-8 however hostile the input.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", "help", "declare sev1 db down", "declare", "resolve INC-7 rolled back", "role commander <@U1|a>",
		"role <@U1> ic", "sev 3", "sev INC-1 sev2", "note INC-0 x", "status INC-99999999999999999999",
		"run check-dns host=a --dry-run", "list all", "ack INC-1 x", "declare sev9 x", "\x00\xff", "role scribe @x",
		"note \u202e\u200b bidi", "<!here> resolve", "resolve\tINC-3\ttabs",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, text string, plain bool) {
		cmd, err := Parse(text, Options{PlainMentions: plain})
		if err != nil {
			msg := err.Error()
			if msg == "" || len(msg) > 600 {
				t.Fatalf("bad error message length %d for %q", len(msg), text)
			}
			if utf8.ValidString(text) && !utf8.ValidString(msg) {
				t.Fatalf("error message is not valid UTF-8: %q", msg)
			}
			return
		}
		s, ok := byName[string(cmd.Verb)]
		if !ok {
			t.Fatalf("unknown verb %q accepted", cmd.Verb)
		}
		if cmd.Incident < 0 || (cmd.Incident != 0 && !s.incident) {
			t.Fatalf("verb %s got incident %d", cmd.Verb, cmd.Incident)
		}
		switch cmd.Verb {
		case VerbSev:
			if !cmd.Severity.Valid() {
				t.Fatalf("sev accepted severity %d", cmd.Severity)
			}
		case VerbDeclare:
			if cmd.Severity != 0 && !cmd.Severity.Valid() {
				t.Fatalf("declare accepted severity %d", cmd.Severity)
			}
		case VerbRole:
			if _, err := incident.ParseRole(string(cmd.Role)); err != nil || cmd.User == "" || strings.ContainsAny(cmd.User, "<>|@ ") {
				t.Fatalf("role accepted %q for %q", cmd.Role, cmd.User)
			}
		case VerbNote, VerbUpdate, VerbFollowup, VerbRun, VerbPage:
			if strings.TrimSpace(cmd.Text) == "" {
				t.Fatalf("%s accepted without text", cmd.Verb)
			}
		}
	})
}
