// Package admin is the bot's admin API: the routes `bot serve` answers on
// its Unix socket (BOT_ADMIN_SOCKET), the client the command line uses, and
// the one rule every read command follows: read the database file when no
// bot holds it, otherwise ask the running bot.
//
// The socket is reachable only from this host by the bot's user: it is
// created mode 0600 (never briefly wider, see Listen), and Listen only ever
// replaces a stale socket, never another kind of file.
//
// The package is a transport: what the API reads comes from a Backend,
// which the composition root (internal/app) builds over the store, the
// digest and the postmortem renderer.
package admin

import (
	"context"
	"errors"
	"io"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Backend answers the admin API's reads. The running bot serves one over
// its open store; the CLI opens one over the file read-only when no bot
// holds it, and otherwise uses the Client, which is a Backend too.
type Backend interface {
	Incidents(ctx context.Context, f incident.Filter) ([]*incident.Incident, error)
	// Check verifies the database and counts what it holds.
	Check(ctx context.Context) (Stats, error)
	// WriteBackup writes a consistent copy of the database to w.
	WriteBackup(ctx context.Context, w io.Writer) (int64, error)
	// Digest renders the digest of a resolved period (Week, or From and
	// To) without posting it.
	Digest(ctx context.Context, req DigestRequest) (DigestReply, error)
	// Postmortem renders incident n's postmortem draft without storing it.
	Postmortem(ctx context.Context, n int64) (PostmortemDraft, error)
	// Handover renders the on-call handover of the current shift.
	Handover(ctx context.Context) (HandoverReply, error)
}

// ErrHeld is wrapped by a CLI opener's error when a running bot holds the
// database: the CLI then asks that bot.
var ErrHeld = errors.New("database is held by a running bot")

// errNoBot is returned by the client when nothing answers on the socket.
var errNoBot = errors.New("no running bot answers on the admin socket")

// Stats summarises a database for operators (the answer of GET /admin/check).
type Stats struct {
	Incidents, Events, Jobs, DeadJobs int
	SizeBytes                         int64
	SchemaVersion                     int
}

// DigestRequest names the period of a digest as `bot digest` takes it:
// Week ("2026-W47"), or From and To (dates, To included), or nothing for
// the previous week.
type DigestRequest struct {
	Week string `json:"week,omitempty"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Chart asks for the digest chart too (DigestReply.Chart).
	Chart bool `json:"chart,omitempty"`
}

// DigestReply is a rendered digest, or the answer to a post request.
type DigestReply struct {
	Period  string `json:"period"`
	Text    string `json:"text,omitempty"`
	Warning string `json:"warning,omitempty"` // why a custom template was not used
	Queued  bool   `json:"queued,omitempty"`
	Channel string `json:"channel,omitempty"`
	Message string `json:"message,omitempty"`
	Chart   []byte `json:"chart,omitempty"` // the PNG chart, when asked for
}

// PostmortemDraft is an incident's postmortem draft as `bot postmortem`
// prints it.
type PostmortemDraft struct {
	Incident string `json:"incident"`
	Draft    string `json:"draft"`
	// Warning says why a custom template was not used (file and line).
	Warning string `json:"warning,omitempty"`
}

// HandoverReply is the on-call handover as `bot handover` prints it.
type HandoverReply struct {
	Text string `json:"text"`
}
