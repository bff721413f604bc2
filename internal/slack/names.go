package slack

import (
	"context"
	"strings"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Directory names Slack users for reports (postmortems, digests) with
// users.info (scope users:read), looking each person up once and caching
// the answer: a name for NameTTL, a failed look-up for a tenth of that, so
// a report never waits on the same person twice and a deleted user is not
// asked about on every draft. One call looks up at most MaxLookups people;
// the others keep their mention until the next report.
type Directory struct {
	client *Client
	mu     sync.Mutex
	cache  map[string]nameEntry
}

type nameEntry struct {
	name    string // "" when the look-up failed
	expires time.Time
}

// NameTTL is how long a looked-up name is kept.
const NameTTL = 24 * time.Hour

// MaxLookups bounds the users.info calls of one Names call.
const MaxLookups = 50

var _ incident.Directory = (*Directory)(nil)

// NewDirectory returns a directory that looks people up through c.
func NewDirectory(c *Client) *Directory {
	return &Directory{client: c, cache: map[string]nameEntry{}}
}

// Names implements incident.Directory: the display name (else the real
// name, else the user name) of each id it can look up.
func (d *Directory) Names(ctx context.Context, ids []string) map[string]string {
	out := map[string]string{}
	now := d.client.clock.Now()
	lookups := 0
	for _, id := range ids {
		if !validID(id) {
			continue
		}
		d.mu.Lock()
		e, ok := d.cache[id]
		d.mu.Unlock()
		if !ok || !now.Before(e.expires) {
			if lookups >= MaxLookups || ctx.Err() != nil {
				continue
			}
			lookups++
			e = d.lookup(ctx, id, now)
		}
		if e.name != "" {
			out[id] = e.name
		}
	}
	return out
}

func (d *Directory) lookup(ctx context.Context, id string, now time.Time) nameEntry {
	var u *slackapi.User
	err := d.client.call(ctx, "users.info", "", func(ctx context.Context) error {
		var err error
		u, err = d.client.api.GetUserInfoContext(ctx, id)
		return err
	})
	e := nameEntry{expires: now.Add(NameTTL / 10)}
	if err == nil && u != nil {
		e = nameEntry{name: firstNonBlank(u.Profile.DisplayName, u.RealName, u.Profile.RealName, u.Name), expires: now.Add(NameTTL)}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.cache) >= maxCachedUsers {
		clear(d.cache)
	}
	d.cache[id] = e
	return e
}

// validID accepts Slack user ids (U… or W…) only, so nothing else is sent
// to users.info.
func validID(id string) bool {
	if len(id) < 2 || len(id) > 24 || (id[0] != 'U' && id[0] != 'W') {
		return false
	}
	for _, c := range id[1:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func firstNonBlank(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
