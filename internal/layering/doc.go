// Package layering holds no code: its tests enforce the import rules of
// STYLE.md across the module. The domain (internal/incident) imports only
// the standard library; each outside SDK (slack-go, go-pagerduty, bbolt,
// etcd, cron) is imported only by its own adapter; adapters import the core
// packages (the domain, the command language, the configuration, the
// templates) but never each other; only the composition root (internal/app)
// and the binaries under cmd/ import everything.
package layering
