package runbook

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Caller is the Slack identity behind an action, as verified by the chat
// adapter. Only IDs decide; DisplayName is an audit snapshot.
type Caller struct {
	TeamID       string
	EnterpriseID string
	UserID       string
	DisplayName  string
	// IsGuest is Slack's is_restricted or is_ultra_restricted. Guests are
	// always denied.
	IsGuest bool
	// IsBot marks bot users and messages with a bot_id. Always denied.
	IsBot bool
}

func (c Caller) actor() Actor {
	return Actor{TeamID: c.TeamID, EnterpriseID: c.EnterpriseID, UserID: c.UserID, DisplayName: c.DisplayName}
}

// same reports whether two callers are the same person (team + user ID).
func (c Caller) same(o Caller) bool {
	return c.TeamID == o.TeamID && c.EnterpriseID == o.EnterpriseID && c.UserID == o.UserID
}

// IncidentInfo is what the engine needs to know about the incident bound to
// a channel.
type IncidentInfo struct {
	ID   string
	Open bool
}

// Incidents answers questions about incidents for authorization. The app
// backs it with the incident store. Any error means deny.
type Incidents interface {
	// IncidentForChannel returns the incident bound to channelID; ok is
	// false when the channel has none.
	IncidentForChannel(ctx context.Context, channelID string) (inc IncidentInfo, ok bool, err error)
	// Roles returns userID's current roles in incidentID (commander, comms,
	// scribe).
	Roles(ctx context.Context, incidentID, userID string) ([]string, error)
}

// GroupMembersFunc returns the user IDs in a Slack user group (the app backs
// it with usergroups.users.list). Any error or timeout means deny.
type GroupMembersFunc func(ctx context.Context, groupID string) ([]string, error)

// deny returns an authorization refusal; its text is shown to the user.
func deny(format string, args ...any) error { return fmt.Errorf(format, args...) }

// authorizer decides who may act (§4.4). It fails closed: a missing
// dependency, a lookup error or a timeout is a denial.
type authorizer struct {
	teamID, enterpriseID string
	userID               *regexp.Regexp // the shape a caller's user id must have
	incidents            Incidents
	members              GroupMembersFunc
	clock                Clock
	cacheTTL, timeout    time.Duration

	mu    sync.Mutex
	cache map[string]groupEntry
}

type groupEntry struct {
	members map[string]bool
	fetched time.Time
}

// identity checks the caller belongs to our workspace and is a full member.
func (a *authorizer) identity(c Caller) error {
	switch {
	case c.IsBot:
		return deny("bots cannot run runbooks")
	case c.TeamID != a.teamID || c.EnterpriseID != a.enterpriseID:
		return deny("runbooks can only be used by members of this workspace")
	case c.IsGuest:
		return deny("guest accounts cannot run runbooks")
	case !a.userID.MatchString(c.UserID):
		return deny("unrecognised user")
	}
	return nil
}

// incident returns the incident bound to the channel, if any.
func (a *authorizer) incident(ctx context.Context, channelID string) (IncidentInfo, bool, error) {
	if a.incidents == nil || channelID == "" {
		return IncidentInfo{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	inc, ok, err := a.incidents.IncidentForChannel(ctx, channelID)
	if err != nil {
		return IncidentInfo{}, false, deny("could not look up the incident for this channel, so access is denied")
	}
	return inc, ok && inc.ID != "", nil
}

// channel applies the runbook's channel constraints (ANDed on top of the
// principals).
func (a *authorizer) channel(acc Access, isDM bool, inc IncidentInfo, hasIncident bool) error {
	switch {
	case isDM && !acc.AllowDirectMessage:
		return deny("this runbook cannot be run from a direct message; use the incident channel")
	case acc.IncidentChannelsOnly && (!hasIncident || !inc.Open):
		return deny("this runbook can only be run from the channel of an open incident")
	}
	return nil
}

// grants reports whether c matches any principal. Users are exact ID
// matches; roles are c's current roles in incidentID; groups are looked up
// (cached). A lookup error denies, even if a later principal might match.
func (a *authorizer) grants(ctx context.Context, p Principals, c Caller, incidentID string) error {
	if slices.Contains(p.Users, c.UserID) {
		return nil
	}
	if len(p.IncidentRoles) > 0 && incidentID != "" && a.incidents != nil {
		rctx, cancel := context.WithTimeout(ctx, a.timeout)
		roles, err := a.incidents.Roles(rctx, incidentID, c.UserID)
		cancel()
		if err != nil {
			return deny("could not look up your incident role, so access is denied")
		}
		for _, r := range roles {
			if slices.Contains(p.IncidentRoles, r) {
				return nil
			}
		}
	}
	for _, g := range p.UserGroups {
		in, err := a.inGroup(ctx, g, c.UserID)
		if err != nil {
			return deny("could not check user-group membership, so access is denied")
		}
		if in {
			return nil
		}
	}
	return deny("you are not allowed (requires %s)", describePrincipals(p))
}

func describePrincipals(p Principals) string {
	var parts []string
	if len(p.UserGroups) > 0 {
		parts = append(parts, "membership of an allowed user group")
	}
	if len(p.IncidentRoles) > 0 {
		parts = append(parts, "incident role "+strings.Join(p.IncidentRoles, " or "))
	}
	if len(p.Users) > 0 {
		parts = append(parts, "being a listed user")
	}
	return strings.Join(parts, ", or ")
}

// inGroup answers from a cache no older than cacheTTL, then asks Slack.
// Only successful lookups are cached.
func (a *authorizer) inGroup(ctx context.Context, groupID, userID string) (bool, error) {
	now := a.clock.Now()
	a.mu.Lock()
	e, ok := a.cache[groupID]
	a.mu.Unlock()
	if ok && now.Sub(e.fetched) < a.cacheTTL && !now.Before(e.fetched) {
		return e.members[userID], nil
	}
	if a.members == nil {
		return false, errors.New("no user-group lookup configured")
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	ids, err := a.members(ctx, groupID)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err() // a lookup that ignored its deadline still counts as timed out
	}
	if err != nil {
		return false, fmt.Errorf("looking up user group %s: %w", groupID, err)
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	a.mu.Lock()
	a.cache[groupID] = groupEntry{members: set, fetched: now}
	a.mu.Unlock()
	return set[userID], nil
}

// requester runs the full request-time check for c on rb from a channel.
// It returns the incident bound to the channel (zero if none).
func (a *authorizer) requester(ctx context.Context, rb *Runbook, c Caller, channelID string, isDM bool) (IncidentInfo, error) {
	if err := a.identity(c); err != nil {
		return IncidentInfo{}, err
	}
	inc, hasIncident, err := a.incident(ctx, channelID)
	if err != nil {
		return IncidentInfo{}, err
	}
	if err := a.channel(rb.Access, isDM, inc, hasIncident); err != nil {
		return IncidentInfo{}, err
	}
	if err := a.grants(ctx, rb.Access.Requesters, c, inc.ID); err != nil {
		return IncidentInfo{}, err
	}
	return inc, nil
}
