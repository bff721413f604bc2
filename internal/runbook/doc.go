// Package runbook loads, validates, authorizes and executes the team's
// approved runbook actions (`/incident run <id> [name=value ...]
// [--dry-run]`); the file format is docs/RUNBOOKS.md. It imports no other
// package of this repository; internal/runbookflow wires it to the
// incident store and the chat through the small interfaces below.
//
// # Trust model
//
// Who may run and who may approve a runbook is fixed by its file: Slack
// user IDs and user-group members (Principals). Incident roles only narrow
// that set, never widen it, because anyone can take a role in chat; the
// loader refuses requesters or approvers given by roles alone. Approval
// always comes from someone other than the requester, and a request that
// nobody else could ever approve is refused at once.
//
// # Loading
//
// LoadDir reads BOT_RUNBOOKS_DIR (not recursively) and lints every
// runbooks/<id>.yaml strictly: unknown keys, YAML anchors and aliases,
// files over 64 KiB and more than one document are errors; symlinks,
// dotfiles, *.yml, *~ and other names are ignored with a warning. Each bad
// file is excluded with a list of Problems (file, field path such as
// "params[2].pattern", reason) while the others load. A runbook whose
// program is missing on this host loads but is marked unavailable
// (Runbook.Unavailable): it can be listed and dry-run, not run. The version
// of a runbook is the SHA-256 of its file.
//
//	report, hasErrors := runbook.ValidateDir(dir, runbook.LoadOptions{}) // `bot runbooks validate`
//
// Registry holds the loaded set: NewRegistry(dir, opts, logger), then
// Reload at start-up and on SIGHUP (atomic swap; an unreadable directory
// keeps the old set). Lookup is by exact ID only: chat text is never a
// path.
//
// # Requests
//
// NewEngine(Config) builds the Engine. The app supplies:
//
//	Registry      *Registry
//	TeamID        this workspace (EnterpriseID too under Enterprise Grid)
//	Incidents     IncidentForChannel(ctx, channelID) (IncidentInfo, ok, error)
//	              Roles(ctx, incidentID, userID) ([]string, error)
//	GroupMembers  func(ctx, groupID) ([]userID, error)   // usergroups.users.list
//	Secrets       SecretResolver: Resolve(ctx, ref) (string, error); FileSecrets{Dir} reads <Dir>/<ref>
//	Notifier      RunFinished(ctx, Result); RequestClosed(ctx, Closed)
//	Audit         func(Event)
//	Resolve       func(ctx, host) ([]netip.Addr, error)   // url and host parameters; default the system resolver
//	Logger, Clock, Caps (DefaultCaps: 15m timeout, 4 MiB capture, 8 runs,
//	              10 runs or queued requests and 60 refusals per user per minute)
//
// Then, per chat action (Caller is the verified Slack team and user ID):
//
//	Submit(ctx, Invocation{Caller, ChannelID, IsDM, Text}) (*Submission, error)
//	Confirm(ctx, runID, caller) / Approve(ctx, runID, approver) / Deny(...) / Cancel(...)
//	Runbooks(ctx, Invocation) []*Runbook   // "/incident runbooks"; ListText renders it
//	Sweep()                                // expire stale requests (also runs in the background)
//	Close(ctx)                             // SIGTERM→SIGKILL running children and join them
//
// A Submission tells the adapter what to show now: a confirmation Card
// (ephemeral, buttons carrying only the RunID), an ApprovalRequest (posted
// in the incident thread; it mentions only configured approver IDs), or an
// acknowledgement that the run started. Results arrive later through
// Notifier.RunFinished with Result.Text ready to post. Every refusal is a
// *UserError whose Message is inert Slack mrkdwn that says nothing ran,
// echoes values escaped and cut to 64 characters (never secret ones) and
// shows the runbook's usage; any other error is internal.
//
// Requests follow: awaiting_confirmation (requester only, 2 minutes, once)
// → awaiting_approval (Count distinct approvers other than the requester,
// eligible at click time, bound to the request hash, before expires_after;
// a deny ends it) → running, through a compare-and-set so double clicks and
// replayed payloads never run twice. Authorization is checked on request,
// on confirm, on approve (for the approver) and immediately before exec,
// where the runbook version is also re-checked: a reloaded or removed
// runbook aborts the request. Pending requests live in Config.Requests
// (the bot's store), so they survive a restart and any replica sharing the
// store can take the click; every state change is a compare-and-set there.
// Secret parameter values are never stored: such a request can only run in
// the process that took it (elsewhere it fails closed). Low-risk runbooks with confirm: false and no
// approval start at once; --dry-run skips confirmation and approval, never
// runs steps, shows the rendered argv and runs declared dry_run probes.
//
// # Execution
//
// Steps run as argv (never a shell) in their own process group, with stdin
// on /dev/null, an explicit environment (PATH, HOME and TMPDIR set to a
// fresh 0700 directory removed afterwards, LANG, the runbook's env and
// secrets), per-step and whole-run timeouts, SIGTERM then SIGKILL to the
// group after Config.KillGrace, and a bounded drain of pipes held by
// escaped grandchildren. Output (stdout and stderr on one pipe) is
// sanitised (ANSI stripped, invalid UTF-8 replaced, controls dropped),
// redacted as a stream that holds back enough to catch secrets split across
// reads, then capped (first 64 KiB and the last part kept, the rest drained
// and counted). Redactor is exported so the app can mask its own logs with
// the same rules.
//
// # Audit
//
// Every decision, refusals included, is an Event (request_received,
// validation_failed, authz_denied, confirm_requested, confirmed,
// approval_requested, approved, denied, expired, started, step_finished,
// finished, canceled) with the runbook version, actor, channel, incident,
// masked parameters, redacted argv, exit code, duration and output stats.
// Events never carry raw secrets, unredacted output or the request text.
package runbook
