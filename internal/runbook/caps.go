package runbook

import "time"

// Caps are the bot-wide hard limits (§4.6). They belong to the bot config,
// not to runbooks: the linter rejects a runbook that exceeds them and the
// engine enforces the run and rate caps. Zero fields take the defaults.
type Caps struct {
	// MaxTimeout bounds limits.timeout and every step timeout. Default 15m.
	MaxTimeout time.Duration
	// MaxCaptureBytes bounds output.capture_max_bytes. Default 4 MiB.
	MaxCaptureBytes int64
	// MaxConcurrentRuns is how many runs and dry-run probes may execute at
	// once across all runbooks. Default 8.
	MaxConcurrentRuns int
	// RequestsPerUserPerMinute limits the /incident run requests per user
	// that run or are queued for confirmation or approval (dry runs
	// included) in any 60 s window. Default 10.
	RequestsPerUserPerMinute int
	// RefusalsPerUserPerMinute separately bounds refused requests (typos,
	// denials) per user in any 60 s window, so probing stays bounded
	// without a few typos locking anyone out. Default 60.
	RefusalsPerUserPerMinute int
}

// DefaultCaps returns the documented defaults.
func DefaultCaps() Caps {
	return Caps{
		MaxTimeout:               15 * time.Minute,
		MaxCaptureBytes:          4 << 20,
		MaxConcurrentRuns:        8,
		RequestsPerUserPerMinute: 10,
		RefusalsPerUserPerMinute: 60,
	}
}

func (c Caps) withDefaults() Caps {
	d := DefaultCaps()
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = d.MaxTimeout
	}
	if c.MaxCaptureBytes <= 0 {
		c.MaxCaptureBytes = d.MaxCaptureBytes
	}
	if c.MaxConcurrentRuns <= 0 {
		c.MaxConcurrentRuns = d.MaxConcurrentRuns
	}
	if c.RequestsPerUserPerMinute <= 0 {
		c.RequestsPerUserPerMinute = d.RequestsPerUserPerMinute
	}
	if c.RefusalsPerUserPerMinute <= 0 {
		c.RefusalsPerUserPerMinute = d.RefusalsPerUserPerMinute
	}
	return c
}
