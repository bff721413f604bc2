package incident

import (
	"context"
	"fmt"
	"time"
)

// Record is one item of a store's contents, as an Exporter yields it and an
// Importer takes it: exactly one field is set. Records carry what the Tx
// methods cannot set (event sequence numbers, job ids, document versions,
// the counters), so that `bot migrate` copies a store without renumbering
// anything.
type Record struct {
	Incident *Incident    `json:"incident,omitempty"`
	Event    *Event       `json:"event,omitempty"` // Seq as recorded
	Key      *KeyRecord   `json:"key,omitempty"`
	Job      *Job         `json:"job,omitempty"` // a pending job, ID as recorded
	Dead     *DeadLetter  `json:"dead,omitempty"`
	Doc      *DocRecord   `json:"doc,omitempty"`
	Counter  *CounterMark `json:"counter,omitempty"`
}

// KeyRecord is a global idempotency key.
type KeyRecord struct {
	Key   string    `json:"key"`
	Value []byte    `json:"value,omitempty"`
	At    time.Time `json:"at"`
}

// DeadLetter is a job that failed for good, and when.
type DeadLetter struct {
	Job    Job       `json:"job"`
	Failed time.Time `json:"failed"`
}

// DocRecord is one version of a document.
type DocRecord struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Version int    `json:"version"`
	Body    []byte `json:"body"`
}

// Counters a store keeps; Value is the last number handed out.
const (
	CounterIncident = "incident" // NextIncidentNumber
	CounterJob      = "job"      // job ids
)

// CounterMark is the last number a counter handed out.
type CounterMark struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// Exporter is implemented by stores whose whole contents can be read out,
// one consistent snapshot, record by record (counters last).
type Exporter interface {
	Export(ctx context.Context, fn func(Record) error) error
}

// Importer is implemented by stores that can take another store's records.
// Import replaces the store's contents with the records src yields. A store
// that cannot apply them in one commit marks itself as incomplete until the
// last one, and refuses to be opened for service while so marked.
type Importer interface {
	Import(ctx context.Context, src func(fn func(Record) error) error) error
}

// Check reports what makes r impossible to import into any store: no
// field set, an event without its incident or sequence number, a document
// version 0, a counter no store keeps. Importers call it first.
func (r Record) Check() error {
	switch {
	case r.Event != nil && (r.Event.Incident <= 0 || r.Event.Seq <= 0):
		return fmt.Errorf("importing an event without incident or sequence number")
	case r.Doc != nil && r.Doc.Version <= 0:
		return fmt.Errorf("importing %s %s without a version", r.Doc.Kind, r.Doc.Name)
	case r.Counter != nil && r.Counter.Name != CounterIncident && r.Counter.Name != CounterJob:
		return fmt.Errorf("importing unknown counter %q", r.Counter.Name)
	case r.Incident == nil && r.Event == nil && r.Key == nil && r.Job == nil && r.Dead == nil && r.Doc == nil && r.Counter == nil:
		return fmt.Errorf("importing an empty record")
	}
	return nil
}
