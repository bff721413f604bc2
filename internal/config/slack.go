package config

import (
	"regexp"
	"strings"
)

// Slack configures the Slack adapter.
type Slack struct {
	BotToken      Secret `yaml:"bot_token"`
	SigningSecret Secret `yaml:"signing_secret"`
	AppToken      Secret `yaml:"app_token"`
	APIURL        string `yaml:"api_url"`
	// PinReaction is the reaction (emoji name, no colons) that adds a
	// message to the incident's timeline; default "pushpin".
	PinReaction string `yaml:"pin_reaction"`
}

// Enabled reports whether Slack is configured at all.
func (s Slack) Enabled() bool { return s.BotToken.Set() }

// SocketMode reports whether events arrive over Socket Mode.
func (s Slack) SocketMode() bool { return s.AppToken.Set() }

var slackVars = []envVar{
	secretVar("SLACK_BOT_TOKEN", func(c *Config) *Secret { return &c.Slack.BotToken }),
	secretVar("SLACK_SIGNING_SECRET", func(c *Config) *Secret { return &c.Slack.SigningSecret }),
	secretVar("SLACK_APP_TOKEN", func(c *Config) *Secret { return &c.Slack.AppToken }),
	strVar("SLACK_API_URL", func(c *Config) *string { return &c.Slack.APIURL }),
	strVar("SLACK_PIN_REACTION", func(c *Config) *string { return &c.Slack.PinReaction }),
}

// emojiName is a Slack emoji name: lowercase letters, digits, '_', '-',
// '+' and "'" (custom emoji names follow the same rules).
var emojiName = regexp.MustCompile(`^[a-z0-9_+'-]{1,100}$`)

var channelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

func validateSlack(c *Config) []string {
	var p problemList
	add := p.add
	if c.Slack.BotToken.Set() && !strings.HasPrefix(c.Slack.BotToken.Value(), "xoxb-") {
		add("SLACK_BOT_TOKEN must be a bot token (it starts with xoxb-)")
	}
	if c.Slack.AppToken.Set() && !strings.HasPrefix(c.Slack.AppToken.Value(), "xapp-") {
		add("SLACK_APP_TOKEN must be an app-level token (it starts with xapp-)")
	}
	if c.Slack.AppToken.Set() && !c.Slack.BotToken.Set() {
		add("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not; Socket Mode needs both")
	}
	if c.Slack.BotToken.Set() && !c.Slack.AppToken.Set() && !c.Slack.SigningSecret.Set() {
		add("SLACK_SIGNING_SECRET is required to verify requests from Slack (or set SLACK_APP_TOKEN for Socket Mode)")
	}
	if u, ok := checkURL(c.Slack.APIURL); !ok {
		add("SLACK_API_URL %q is not an http(s) URL", c.Slack.APIURL)
	} else {
		if !strings.HasSuffix(u, "/") {
			u += "/" // slack-go appends method names directly
		}
		c.Slack.APIURL = u
	}
	c.Slack.PinReaction = strings.Trim(strings.TrimSpace(c.Slack.PinReaction), ":")
	if c.Slack.PinReaction == "" {
		c.Slack.PinReaction = "pushpin"
	}
	if !emojiName.MatchString(c.Slack.PinReaction) {
		add("SLACK_PIN_REACTION %q is not an emoji name like pushpin or round_pushpin (lowercase, no spaces)", c.Slack.PinReaction)
	}
	if c.Slack.Enabled() && c.AnnounceChannel != "" && !channelID.MatchString(c.AnnounceChannel) {
		add("BOT_ANNOUNCE_CHANNEL %q must be a Slack channel id like C0123ABCDEF, not a name (open the channel's details in Slack to copy it)", c.AnnounceChannel)
	}
	return p
}
