package shell_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/shell"
)

func TestTerminalWriterEscapesControlCharacters(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain R&D <b>\n\ttab", "plain R&D <b>\n\ttab"},
		{"\x1b[2Jcleared", `\u001b[2Jcleared`},
		{"nul\x00 bell\x07 cr\r del\x7f", `nul\u0000 bell\u0007 cr\u000d del\u007f`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"admin\u202egnp.exe \u2066x\u2069", `admin\u202egnp.exe \u2066x\u2069`},
		{"bad \xff byte, fine ünïcödé 👩‍🚒", `bad \xff byte, fine ünïcödé 👩‍🚒`},
	} {
		var b bytes.Buffer
		w := shell.NewTerminalWriter(&b)
		// One byte at a time: characters split across writes still come
		// out whole.
		for i := range len(c.in) {
			if _, err := w.Write([]byte{c.in[i]}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%q printed as %q, want %q", c.in, b.String(), c.want)
		}
	}
}

// JSON through the writer is still valid JSON with the same strings.
func TestTerminalWriterKeepsJSONValid(t *testing.T) {
	title := "x\x1b[2J\u202e\u0085\u2028 R&D <b> \"q\""
	raw, err := json.Marshal(map[string]string{"title": title})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := shell.NewTerminalWriter(&b).Write(raw); err != nil {
		t.Fatal(err)
	}
	var back map[string]string
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["title"] != title {
		t.Fatalf("%s decodes to %q (%v), want %q", b.String(), back["title"], err, title)
	}
	if strings.ContainsAny(b.String(), "\x1b\u202e\u0085\u2028") {
		t.Fatalf("raw control character printed: %q", b.String())
	}
}

// A title with a line break (written before titles were cleaned) stays on
// its row of the table.
func TestIncidentTableOneRowPerIncident(t *testing.T) {
	inc := &incident.Incident{Number: 7, Title: "db down\nINC-8  SEV1  resolved\tforged", Severity: incident.SEV2, Status: incident.StatusTriggered,
		DeclaredAt: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	var b bytes.Buffer
	if err := shell.IncidentTable(&b, []*incident.Incident{inc}, time.UTC); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "INC-7") || !strings.HasSuffix(lines[1], "db down INC-8  SEV1  resolved forged") {
		t.Fatalf("table:\n%s", b.String())
	}
}
