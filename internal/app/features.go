package app

// Wiring steps of integrations that are not built yet. Each moves to its
// integration's own file when the integration lands.

func (a *App) initSlackClient() error { return nil }
func (a *App) mountSlack() error      { return nil }
func (a *App) initPagerDuty() error   { return nil }
func (a *App) mountPagerDuty() error  { return nil }
func (a *App) initRunbooks() error    { return nil }
func (a *App) initPostmortems() error { return nil }
func (a *App) initDigest() error      { return nil }
