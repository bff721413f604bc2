package slack

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// RequiredScopes are the bot token scopes the bot uses, exactly those that
// deploy/slack/manifest.yaml asks for.
var RequiredScopes = []string{
	"bookmarks:write",  // bookmarks.add (the PagerDuty link)
	"channels:history", // conversations.history/.replies (pinned messages)
	"channels:join",    // conversations.join (the announce channel)
	"channels:manage",  // conversations.create/.setTopic/.invite
	"channels:read",    // conversations.list/.info, member_joined_channel
	"chat:write",       // chat.postMessage/.update/.postEphemeral
	"commands",         // the /incident command and shortcut
	"files:write",      // postmortem drafts
	"groups:read",      // a private announce channel
	"pins:read",        // pin_added
	"reactions:read",   // reaction_added
	"usergroups:read",  // usergroups.users.list (runbook access)
	"users:read",       // required by users:read.email
	"users:read.email", // users.lookupByEmail (PagerDuty responders)
}

// Check is one result of the setup checks (`bot doctor`, and warnings at
// start-up).
type Check = incident.SetupCheck

// DoctorConfig says what to check.
type DoctorConfig struct {
	Client          *Client
	AnnounceChannel string
	AppToken        string // Socket Mode's app-level token, if set
	SigningSecret   bool   // whether SLACK_SIGNING_SECRET is set
	// OpenSocket also opens a Socket Mode connection URL to prove the app
	// token works (bot doctor; not at start-up, where the connection itself
	// will tell).
	OpenSocket bool
	// Manifests are app manifest files to check for the shortcuts, scopes
	// and interactivity the bot needs (bot doctor); nil checks none.
	Manifests []string
}

var appTokenShape = regexp.MustCompile(`^xapp-\d+-[A-Z0-9]+-\d+-[0-9a-f]+$`)

// authFixes explain auth.test failures in plain words.
var authFixes = map[string]string{
	"invalid_auth":     "Slack does not know this token. Copy the Bot User OAuth Token (xoxb-…) from your app's OAuth & Permissions page into SLACK_BOT_TOKEN.",
	"not_authed":       "No token reached Slack. Set SLACK_BOT_TOKEN.",
	"account_inactive": "The token belongs to a deactivated bot or workspace. Reinstall the app and use its new token.",
	"token_revoked":    "The token was revoked. Reinstall the app to your workspace and use its new token.",
	"token_expired":    "The token expired (token rotation is on). Reinstall the app or turn rotation off.",
}

// Doctor runs the setup checks and returns every result.
func Doctor(ctx context.Context, cfg DoctorConfig) []Check {
	var checks []Check
	c := cfg.Client
	id, scopes, err := c.AuthTest(ctx)
	if err != nil {
		code := SlackCode(err)
		fix := authFixes[code]
		if fix == "" {
			fix = "Check that SLACK_API_URL (default https://slack.com/api/) is reachable from this host and SLACK_BOT_TOKEN is the bot token."
		}
		detail := code
		if detail == "" {
			detail = incident.ErrorMessage(err)
			if incident.ErrorCode(err) == incident.EINTERNAL {
				detail = "Slack could not be reached: " + err.Error()
			}
		}
		checks = append(checks, Check{Name: "bot token (auth.test)", Detail: detail, Fix: fix})
		return checks
	}
	checks = append(checks, Check{Name: "bot token (auth.test)", OK: true,
		Detail: fmt.Sprintf("valid: workspace %s (%s), bot user @%s (%s)", id.Team, id.TeamID, id.User, id.UserID)})
	checks = append(checks, scopeCheck(scopes))
	checks = append(checks, announceCheck(ctx, c, cfg.AnnounceChannel, id.User))
	checks = append(checks, modeCheck(ctx, c, cfg))
	checks = append(checks, homeTabCheck(ctx, c, id.UserID))
	if cfg.Manifests != nil {
		checks = append(checks, manifestChecks(cfg.Manifests)...)
	}
	return checks
}

func scopeCheck(granted []string) Check {
	ch := Check{Name: "scopes"}
	if len(granted) == 0 {
		ch.Detail = "Slack did not report the token's scopes (no X-OAuth-Scopes header)"
		ch.Fix = "Make sure nothing between the bot and Slack strips response headers, then run bot doctor again."
		return ch
	}
	var missing []string
	for _, s := range RequiredScopes {
		if !slices.Contains(granted, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		ch.Detail = "missing " + strings.Join(missing, ", ")
		ch.Fix = "Add these Bot Token Scopes under OAuth & Permissions (or update the app from deploy/slack/manifest.yaml), then reinstall the app to the workspace."
		return ch
	}
	ch.OK, ch.Detail = true, fmt.Sprintf("all %d needed scopes granted", len(RequiredScopes))
	return ch
}

func announceCheck(ctx context.Context, c *Client, channel, botName string) Check {
	ch := Check{Name: "announce channel (BOT_ANNOUNCE_CHANNEL)"}
	if channel == "" {
		ch.OK, ch.Detail = true, "not set: new incidents are not announced anywhere but in their own channels"
		return ch
	}
	info, err := c.ChannelInfo(ctx, channel)
	switch {
	case incident.ErrorCode(err) == incident.ENOTFOUND:
		ch.Detail = fmt.Sprintf("the bot cannot see %s", channel)
		ch.Fix = fmt.Sprintf("Check the channel id (channel details → About, at the bottom). If the channel is private, invite the bot first: type /invite @%s in it.", botName)
	case err != nil:
		ch.Detail = "cannot check: " + errDetail(err)
		ch.Fix = "Run bot doctor again; if it persists, check the bot's scopes."
	case info.Archived:
		ch.Detail = fmt.Sprintf("#%s (%s) is archived", info.Name, channel)
		ch.Fix = "Unarchive it or set BOT_ANNOUNCE_CHANNEL to another channel's id."
	case !info.IsMember:
		ch.Detail = fmt.Sprintf("the bot is not a member of #%s (%s)", info.Name, channel)
		ch.Fix = fmt.Sprintf("Type /invite @%s in #%s.", botName, info.Name)
	default:
		ch.OK, ch.Detail = true, fmt.Sprintf("#%s (%s), the bot is a member", info.Name, channel)
	}
	return ch
}

func modeCheck(ctx context.Context, c *Client, cfg DoctorConfig) Check {
	if cfg.AppToken == "" {
		ch := Check{Name: "HTTP mode (SLACK_SIGNING_SECRET)"}
		if !cfg.SigningSecret {
			ch.Detail = "no signing secret: requests from Slack cannot be verified, so all are refused"
			ch.Fix = "Set SLACK_SIGNING_SECRET from your app's Basic Information page, or set SLACK_APP_TOKEN to use Socket Mode."
			return ch
		}
		ch.OK, ch.Detail = true, "signing secret set; Slack must reach POST /slack/commands, /slack/interactions and /slack/events"
		return ch
	}
	ch := Check{Name: "Socket Mode (SLACK_APP_TOKEN)"}
	if !appTokenShape.MatchString(cfg.AppToken) {
		ch.Detail = "the app token does not look like an app-level token (xapp-1-A…-…-…)"
		ch.Fix = "Create an app-level token with the connections:write scope (Basic Information → App-Level Tokens) and put it in SLACK_APP_TOKEN."
		return ch
	}
	if cfg.OpenSocket {
		if _, _, err := c.api.StartSocketModeContext(ctx); err != nil {
			ch.Detail = "Slack refused to open a Socket Mode connection: " + errDetail(err)
			ch.Fix = "Turn on Socket Mode in the app settings, and make sure SLACK_APP_TOKEN has the connections:write scope."
			return ch
		}
	}
	ch.OK, ch.Detail = true, "app-level token set; events arrive over Socket Mode, no public URL needed"
	return ch
}

func errDetail(err error) string {
	if code := SlackCode(err); code != "" {
		return code
	}
	return err.Error()
}
