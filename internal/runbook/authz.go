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

// denial is an authorization refusal that can name who lacks what. you
// is the sentence for the person acting ("you are not …"); them, when set,
// is the same fact about someone else ("is not …", after their mention),
// used when an approver's click finds the requester no longer allowed.
// Both are Slack-safe mrkdwn: the only mentions are IDs of validated shape.
type denial struct {
	you, them string
}

func (d *denial) Error() string { return d.you }

// about renders the refusal about who (a mention), or about the person
// acting when who is "".
func (d *denial) about(who string) string {
	switch {
	case who == "":
		return d.you
	case d.them == "":
		return who + ": " + d.you
	}
	return who + " " + d.them
}

// deny returns a refusal whose text does not depend on who is refused.
func deny(format string, args ...any) *denial { return &denial{you: fmt.Sprintf(format, args...)} }

// authorizer decides who may act (§4.4). It fails closed: a missing
// dependency, a lookup error or a timeout is a denial.
type authorizer struct {
	teamID, enterpriseID string
	userID               *regexp.Regexp // the shape a caller's user id must have
	local                bool           // the shell: local user names, every user in every group
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
func (a *authorizer) identity(c Caller) *denial {
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
func (a *authorizer) incident(ctx context.Context, channelID string) (IncidentInfo, bool, *denial) {
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
func (a *authorizer) channel(acc Access, isDM bool, inc IncidentInfo, hasIncident bool) *denial {
	switch {
	case isDM && !acc.AllowDirectMessage:
		return deny("this runbook cannot be run from a direct message; use the incident channel")
	case acc.IncidentChannelsOnly && (!hasIncident || !inc.Open):
		return deny("this runbook can only be run from the channel of an open incident")
	}
	return nil
}

// grants reports whether c may act as p describes, for verb ("run",
// "approve"). The set of people is fixed by configuration: c must be a
// listed user or a member of a listed user group. Incident roles only
// narrow it: when p lists any, c must also hold one of them in incidentID
// now. Nobody gains rights by taking a role in chat (anyone can
// `/incident lead`). A lookup error denies.
func (a *authorizer) grants(ctx context.Context, p Principals, c Caller, incidentID, verb string) *denial {
	member := slices.Contains(p.Users, c.UserID)
	for _, g := range p.UserGroups {
		if member {
			break
		}
		in, err := a.inGroup(ctx, g, c.UserID)
		if err != nil {
			return deny("could not check user-group membership, so access is denied")
		}
		member = in
	}
	if !member {
		who := DescribeMembers(p)
		if who == "" {
			who = "nobody is configured"
		}
		return &denial{
			you:  "you are not among the people allowed to " + verb + " it (" + who + ")",
			them: "is not among the people allowed to " + verb + " it (" + who + ")",
		}
	}
	if len(p.IncidentRoles) == 0 {
		return nil
	}
	roles := strings.Join(p.IncidentRoles, " or ")
	if incidentID == "" || a.incidents == nil {
		return deny("it needs the incident role %s, and this channel has no incident", roles)
	}
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	held, err := a.incidents.Roles(rctx, incidentID, c.UserID)
	cancel()
	if err != nil {
		return deny("could not look up incident roles, so access is denied")
	}
	for _, r := range held {
		if slices.Contains(p.IncidentRoles, r) {
			return nil
		}
	}
	return &denial{
		you:  "you are not this incident's " + roles + ", which is also needed to " + verb + " it",
		them: "is not this incident's " + roles + " any more, which is also needed to " + verb + " it",
	}
}

// DescribeMembers renders who p admits, for cards and refusals, as Slack
// mrkdwn: listed users and user groups as mentions (their IDs are
// validated at load), then the incident roles that narrow them. It is ""
// when p lists no user and no group.
func DescribeMembers(p Principals) string {
	var who []string
	for _, u := range p.Users {
		who = append(who, "<@"+u+">")
	}
	for _, g := range p.UserGroups {
		who = append(who, "members of <!subteam^"+g+"|@"+g+">")
	}
	if len(who) == 0 {
		return ""
	}
	s := joinOr(who)
	if len(p.IncidentRoles) > 0 {
		s += ", and only while they are this incident's " + strings.Join(p.IncidentRoles, " or ")
	}
	return s
}

// joinOr joins items as "a, b or c".
func joinOr(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// otherMembers counts the people other than c that p's users and user
// groups name: those who could ever act (incident roles aside, which
// anyone among them could take). In local mode groups admit everyone, so
// the answer is unbounded (-1).
func (a *authorizer) otherMembers(ctx context.Context, p Principals, c Caller) (int, error) {
	if a.local && len(p.UserGroups) > 0 {
		return -1, nil
	}
	people := map[string]bool{}
	for _, u := range p.Users {
		people[u] = true
	}
	for _, g := range p.UserGroups {
		ids, err := a.groupMembers(ctx, g)
		if err != nil {
			return 0, err
		}
		for id := range ids {
			people[id] = true
		}
	}
	delete(people, c.UserID)
	return len(people), nil
}

// inGroup answers from a cache no older than cacheTTL, then asks Slack.
// Only successful lookups are cached. In local mode (the shell, which has
// no Slack to ask) every local user is a member of every group.
func (a *authorizer) inGroup(ctx context.Context, groupID, userID string) (bool, error) {
	if a.local {
		return true, nil
	}
	set, err := a.groupMembers(ctx, groupID)
	if err != nil {
		return false, err
	}
	return set[userID], nil
}

func (a *authorizer) groupMembers(ctx context.Context, groupID string) (map[string]bool, error) {
	now := a.clock.Now()
	a.mu.Lock()
	e, ok := a.cache[groupID]
	a.mu.Unlock()
	if ok && now.Sub(e.fetched) < a.cacheTTL && !now.Before(e.fetched) {
		return e.members, nil
	}
	if a.members == nil {
		return nil, errors.New("no user-group lookup configured")
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	ids, err := a.members(ctx, groupID)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err() // a lookup that ignored its deadline still counts as timed out
	}
	if err != nil {
		return nil, fmt.Errorf("looking up user group %s: %w", groupID, err)
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	a.mu.Lock()
	a.cache[groupID] = groupEntry{members: set, fetched: now}
	a.mu.Unlock()
	return set, nil
}

// requester runs the full request-time check for c on rb from a channel.
// It returns the incident bound to the channel (zero if none).
func (a *authorizer) requester(ctx context.Context, rb *Runbook, c Caller, channelID string, isDM bool) (IncidentInfo, *denial) {
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
	if err := a.grants(ctx, rb.Access.Requesters, c, inc.ID, "run"); err != nil {
		return IncidentInfo{}, err
	}
	return inc, nil
}
