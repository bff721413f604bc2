package runbook

import (
	"fmt"
	"sync"

	"go.uber.org/zap"
)

// Registry is the allowlist: the runbooks loaded from one directory, keyed
// by ID. A name typed in chat is only ever a key into it, never a path.
// It is safe for concurrent use; Reload swaps the whole set atomically.
type Registry struct {
	dir  string
	opts LoadOptions
	log  *zap.Logger

	reloadMu sync.Mutex // serialises Reload

	mu       sync.RWMutex
	byID     map[string]*Runbook
	ordered  []*Runbook
	rejected map[string]bool
}

// NewRegistry returns an empty registry for dir. Call Reload to load it (at
// start-up, and on SIGHUP or an admin command).
func NewRegistry(dir string, opts LoadOptions, log *zap.Logger) *Registry {
	if log == nil {
		log = zap.NewNop()
	}
	return &Registry{dir: dir, opts: opts, log: log.Named("runbooks"), byID: map[string]*Runbook{}, rejected: map[string]bool{}}
}

// Reload loads the directory again and atomically replaces the set. Runbooks
// with errors are excluded and reported; the rest load. If the directory
// cannot be read at all the previous set is kept and an error returned.
// Requests created before a reload carry the version they were validated
// against, and abort before exec if their runbook changed or disappeared.
func (r *Registry) Reload() (*LoadReport, error) {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	report, err := LoadDir(r.dir, r.opts)
	if err != nil {
		r.log.Error("runbook reload failed; keeping previous set", zap.Error(err))
		return nil, fmt.Errorf("reloading runbooks: %w", err)
	}
	byID := make(map[string]*Runbook, len(report.Runbooks))
	for _, rb := range report.Runbooks {
		byID[rb.ID] = rb
	}
	rejected := make(map[string]bool, len(report.Rejected))
	for _, id := range report.Rejected {
		rejected[id] = true
	}
	r.mu.Lock()
	r.byID, r.ordered, r.rejected = byID, report.Runbooks, rejected
	r.mu.Unlock()
	for _, p := range report.Errors {
		r.log.Warn("runbook rejected", zap.String("file", p.File), zap.String("field", p.Field), zap.String("reason", p.Reason))
	}
	for _, p := range report.Warnings {
		r.log.Info("runbook warning", zap.String("file", p.File), zap.String("field", p.Field), zap.String("reason", p.Reason))
	}
	r.log.Info("runbooks loaded", zap.Int("valid", len(report.Runbooks)), zap.Int("rejected", len(report.Rejected)))
	return report, nil
}

// Lookup returns the current runbook with this exact ID.
func (r *Registry) Lookup(id string) (*Runbook, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rb, ok := r.byID[id]
	return rb, ok
}

// List returns every loaded runbook (enabled or not), sorted by ID.
func (r *Registry) List() []*Runbook {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]*Runbook(nil), r.ordered...)
}

// Rejected reports whether a file named id.yaml failed validation at the
// last reload.
func (r *Registry) Rejected(id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rejected[id]
}
