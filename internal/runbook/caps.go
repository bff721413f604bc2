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
	// RequestsPerUserPerMinute limits /incident run requests (dry runs and
	// refused requests included) per user in any 60 s window. Default 10.
	RequestsPerUserPerMinute int
}

// DefaultCaps returns the documented defaults.
func DefaultCaps() Caps {
	return Caps{
		MaxTimeout:               15 * time.Minute,
		MaxCaptureBytes:          4 << 20,
		MaxConcurrentRuns:        8,
		RequestsPerUserPerMinute: 10,
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
	return c
}
