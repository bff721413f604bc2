package incident

import (
	"strings"
	"testing"
)

// TestRecordCheck: what `bot migrate` and restore refuse, with the same
// words whichever store is the target.
func TestRecordCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Record
		want string // "" accepted
	}{
		{"empty", Record{}, "empty record"},
		{"event without incident", Record{Event: &Event{Seq: 3}}, "without incident or sequence number"},
		{"event without seq", Record{Event: &Event{Incident: 1}}, "without incident or sequence number"},
		{"event", Record{Event: &Event{Incident: 1, Seq: 3}}, ""},
		{"doc version 0", Record{Doc: &DocRecord{Kind: "postmortem", Name: "INC-1"}}, "postmortem INC-1 without a version"},
		{"doc", Record{Doc: &DocRecord{Kind: "postmortem", Name: "INC-1", Version: 2}}, ""},
		{"unknown counter", Record{Counter: &CounterMark{Name: "widgets", Value: 3}}, `unknown counter "widgets"`},
		{"incident counter", Record{Counter: &CounterMark{Name: CounterIncident, Value: 3}}, ""},
		{"job counter", Record{Counter: &CounterMark{Name: CounterJob, Value: 3}}, ""},
		{"key", Record{Key: &KeyRecord{Key: "slack:cmd:x"}}, ""},
	} {
		err := tc.r.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
