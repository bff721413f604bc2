package slack

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// The Home tab. It is published with views.publish when someone opens it
// (app_home_opened, tab "home"), never on a change: views.publish is Tier 4
// ("100+ per minute" per workspace: docs.slack.dev/reference/methods/views.publish,
// Rate limits) and a change to a busy incident would otherwise publish to
// everyone who ever opened the tab. Opens by one person within
// HandlerConfig.HomeWindow of the last publish to them are coalesced: the
// tab already shows what is at most that old, and a person clicking the
// tab again and again cannot spend the workspace's allowance. Publishes of
// different people share the client's Tier 4 pacing (MethodRates).

// DefaultHomeWindow is the default HandlerConfig.HomeWindow.
const DefaultHomeWindow = 10 * time.Second

// MaxHomeBlocks is Slack's limit of blocks in a view.
const MaxHomeBlocks = 100

// Home view text limits: a follow-up's text and a title are cut to these
// many characters, so even 100 blocks stay far below the 250 kB of a view.
const (
	homeTitleChars    = 200
	homeFollowupChars = 300
)

// reqCoalesced is the inbound outcome of a Home tab opening that was
// coalesced with an earlier one.
const reqCoalesced = "coalesced"

// userIDShape is a Slack user id; only those key the coalescing record.
var userIDShape = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// homeGate remembers when each person's Home tab was last published (or a
// publish began), to coalesce opens, and bounds how many Home views are
// built at once: each reads every incident, and a crowd opening the tab
// together (everyone at the start of a big outage) must not all read the
// store at once only to queue for views.publish's Tier 4.
type homeGate struct {
	mu    sync.Mutex
	last  map[string]time.Time
	slots chan struct{}
}

// maxHomeBuilds is how many Home views are built and published at once.
const maxHomeBuilds = 2

// acquire waits for a build slot; release gives it back.
func (g *homeGate) acquire(ctx context.Context) (release func(), err error) {
	g.mu.Lock()
	if g.slots == nil {
		g.slots = make(chan struct{}, maxHomeBuilds)
	}
	slots := g.slots
	g.mu.Unlock()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// maxHomeGate bounds the gate: past it, records older than the window go.
const maxHomeGate = 4096

// claim reports whether user's Home tab should be published now, and if so
// records now as its last publish.
func (g *homeGate) claim(user string, now time.Time, window time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[string]time.Time{}
	}
	if at, ok := g.last[user]; ok && now.Sub(at) < window && !now.Before(at) {
		return false
	}
	if len(g.last) >= maxHomeGate {
		for u, at := range g.last {
			if now.Sub(at) >= window {
				delete(g.last, u)
			}
		}
	}
	g.last[user] = now
	return true
}

// release forgets a claim whose publish failed, so the next open retries.
func (g *homeGate) release(user string, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last[user] == at {
		delete(g.last, user)
	}
}

// homeOpened takes an app_home_opened event and returns its outcome. The
// Messages tab needs nothing. The view is built and published in the
// background, after the acknowledgement; a lost event only means the tab
// shows what it showed before until the next open.
func (h *Handler) homeOpened(user, tab string) string {
	if tab != "home" {
		return reqOK
	}
	if !userIDShape.MatchString(user) || len(user) > maxIDLength {
		return reqMalformed
	}
	now := h.cfg.Clock.Now()
	if !h.home.claim(user, now, h.cfg.HomeWindow) {
		h.log.Debug("home tab opened again within the window; not published", zap.String("user", user))
		return reqCoalesced
	}
	started := h.goBackground(func(ctx context.Context) {
		if err := h.publishHome(ctx, user); err != nil {
			h.home.release(user, now)
			if SlackCode(err) == "not_enabled" {
				h.log.Error("slack refused the home tab: it is not enabled for the app",
					zap.String("fix", "Turn on App Home → Home Tab in the app's settings, or update the app from deploy/slack/manifest.yaml."))
				return
			}
			h.log.Warn("cannot publish the home tab", zap.String("user", user), zap.Error(err))
		}
	})
	if !started {
		h.home.release(user, now)
	}
	return reqOK
}

// publishHome builds user's Home view from the incidents now and publishes it.
func (h *Handler) publishHome(ctx context.Context, user string) error {
	release, err := h.home.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	ov, err := h.svc.Overview(ctx, user)
	if err != nil {
		return fmt.Errorf("reading the overview: %w", err)
	}
	return h.client.PublishHome(ctx, user, HomeView(ov, user, h.cfg.Clock.Now(), h.cfg.Location))
}

// PublishHome publishes view as user's Home tab (views.publish). It needs
// no scope, only the Home tab turned on in the app's settings.
func (c *Client) PublishHome(ctx context.Context, user string, view slackapi.HomeTabViewRequest) error {
	return c.call(ctx, "views.publish", "", func(ctx context.Context) error {
		_, err := c.api.PublishViewContext(ctx, slackapi.PublishViewContextRequest{UserID: user, View: view})
		return err
	})
}

// HomeView renders user's overview as their Home tab: a heading with the
// Declare button, one block per open incident (theirs first), one per open
// follow-up they own, and a footer; at most MaxHomeBlocks, with a count of
// what did not fit. Everything people wrote (titles, follow-ups) is escaped
// so it cannot mention anyone or link deceptively.
func HomeView(ov incident.Overview, user string, now time.Time, loc *time.Location) slackapi.HomeTabViewRequest {
	if loc == nil {
		loc = time.UTC
	}
	heading := "*Open incidents*: none. :tada:"
	switch n := len(ov.Incidents); {
	case n > 0 && ov.Mine > 0:
		heading = fmt.Sprintf("*Open incidents*: %d, you hold a role in %d (listed first).", n, ov.Mine)
	case n > 0:
		heading = fmt.Sprintf("*Open incidents*: %d.", n)
	}
	declare := button(ActionHomeDeclare, "declare", "Declare an incident", slackapi.StylePrimary)
	head := slackapi.NewSectionBlock(mrkdwn(heading), nil, slackapi.NewAccessory(declare))
	head.BlockID = "home_heading"

	followHeading := "*Your open follow-ups*: none."
	if n := len(ov.Followups); n > 0 {
		followHeading = fmt.Sprintf("*Your open follow-ups*: %d.", n)
	}
	footer := slackapi.NewContextBlock("home_footer", mrkdwn(fmt.Sprintf(
		"As of %s. This tab is refreshed each time you open it. `/incident` opens the menu, `/incident list` lists every open incident.",
		slackDate(now, "{date_short_pretty} {time}"))))

	// Fixed: heading, divider, follow-ups heading, footer, and room for a
	// "more" line under each list. Follow-ups keep up to 20 places; the
	// incidents get the rest, and the follow-ups whatever is left then.
	const fixed = 6
	room := MaxHomeBlocks - fixed
	showInc := min(len(ov.Incidents), room-min(len(ov.Followups), 20))
	showFollow := min(len(ov.Followups), room-showInc)

	blocks := []slackapi.Block{head}
	for i, inc := range ov.Incidents[:showInc] {
		b := section(homeIncidentText(inc, user, now))
		b.(*slackapi.SectionBlock).BlockID = fmt.Sprintf("home_incident_%d", i)
		blocks = append(blocks, b)
	}
	if more := len(ov.Incidents) - showInc; more > 0 {
		blocks = append(blocks, slackapi.NewContextBlock("home_more_incidents",
			mrkdwn(fmt.Sprintf("…and %d more open incidents not shown: `/incident list` lists them.", more))))
	}
	blocks = append(blocks, slackapi.NewDividerBlock(), section(followHeading))
	for _, f := range ov.Followups[:showFollow] {
		blocks = append(blocks, section(homeFollowupText(f, now, loc)))
	}
	if more := len(ov.Followups) - showFollow; more > 0 {
		blocks = append(blocks, slackapi.NewContextBlock("home_more_followups",
			mrkdwn(fmt.Sprintf("…and %d more of your follow-ups not shown: `/incident followups INC-n` lists an incident's.", more))))
	}
	blocks = append(blocks, footer)
	return slackapi.HomeTabViewRequest{Type: slackapi.VTHomeTab, Blocks: slackapi.Blocks{BlockSet: blocks}}
}

// homeIncidentText is one incident of the Home tab:
//
//	*INC-7* SEV1 · investigating · #inc-7-db-down
//	Database is down
//	Commander @alice · open 2h5m · you are the scribe
func homeIncidentText(inc *incident.Incident, user string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* %s · %s", inc.ID(), inc.Severity, inc.Status)
	if channelIDShape.MatchString(inc.Chat.ChannelID) {
		fmt.Fprintf(&b, " · <#%s>", inc.Chat.ChannelID)
	}
	b.WriteString("\n" + cut(EscapeText(inc.Title), homeTitleChars))
	if c := inc.Commander(); c != "" {
		b.WriteString("\nCommander " + homePerson(c))
	} else {
		b.WriteString("\nNo commander yet")
	}
	b.WriteString(" · open " + incident.SinceText(now, inc.DetectedAt))
	var roles []string
	for _, r := range incident.Roles {
		if user != "" && inc.Roles[r] == user {
			roles = append(roles, string(r))
		}
	}
	if len(roles) > 0 {
		b.WriteString(" · *you are the " + strings.Join(roles, " and ") + "*")
	}
	return b.String()
}

// homeFollowupText is one follow-up of the Home tab:
// "*INC-3* #2 Add a canary stage · due 2026-12-15 *(overdue)*".
func homeFollowupText(f incident.OwnedFollowup, now time.Time, loc *time.Location) string {
	s := fmt.Sprintf("*%s* #%d %s", f.Incident.ID(), f.Followup.ID, cut(EscapeText(f.Followup.Text), homeFollowupChars))
	switch {
	case f.Followup.Due == "":
		s += " · no due date"
	case f.Followup.Overdue(now, loc):
		s += " · due " + f.Followup.Due + " *(overdue)*"
	default:
		s += " · due " + f.Followup.Due
	}
	return s
}

// homePerson mentions a Slack user, or shows anything else as text.
func homePerson(id string) string {
	if userIDShape.MatchString(id) {
		return "<@" + id + ">"
	}
	return EscapeText(id)
}

// homeTabCheck is bot doctor's check of the Home tab. A bot token cannot
// read the app's settings, so it publishes a one-line Home view to the bot
// user itself, which nobody sees: Slack answers not_enabled when the Home
// tab is off (docs.slack.dev/reference/methods/views.publish, Errors). Any
// other refusal is reported as not checked, never as a problem.
func homeTabCheck(ctx context.Context, c *Client, botUser string) Check {
	ch := Check{Name: "Home tab (views.publish)"}
	view := slackapi.HomeTabViewRequest{Type: slackapi.VTHomeTab, Blocks: slackapi.Blocks{BlockSet: []slackapi.Block{
		section("This is incident-bot's own Home tab; yours lists the open incidents."),
	}}}
	err := c.PublishHome(ctx, botUser, view)
	switch code := SlackCode(err); {
	case err == nil:
		ch.OK, ch.Detail = true, "enabled: people see open incidents and their follow-ups when they open the app's Home tab"
	case code == "not_enabled":
		ch.Detail = "the app's Home tab is off, so nobody can see it"
		ch.Fix = "Turn on App Home → Show Tabs → Home Tab in the app's settings (or update the app from deploy/slack/manifest.yaml), and subscribe to the app_home_opened bot event."
	default:
		ch.OK, ch.Detail = true, "could not check ("+errDetail(err)+"); opening the Home tab will tell"
	}
	return ch
}
