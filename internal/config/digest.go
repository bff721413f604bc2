package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/digest"
)

// Digest configures the weekly incident digest.
type Digest struct {
	// Schedule is the cron schedule of the post (BOT_DIGEST_SCHEDULE,
	// default "CRON_TZ=UTC 0 9 * * MON"); "off" turns the post off.
	Schedule string `yaml:"schedule"`
	// Channel is where the digest goes (BOT_DIGEST_CHANNEL, default
	// BOT_ANNOUNCE_CHANNEL). Empty: the post is off.
	Channel string `yaml:"channel"`
}

// DigestOff is the BOT_DIGEST_SCHEDULE value that turns the weekly post off.
const DigestOff = "off"

// Enabled reports whether the weekly digest is posted.
func (d Digest) Enabled() bool {
	return !strings.EqualFold(d.Schedule, DigestOff) && d.Channel != ""
}

var digestVars = []envVar{
	strVar("BOT_DIGEST_SCHEDULE", func(c *Config) *string { return &c.Digest.Schedule }),
	strVar("BOT_DIGEST_CHANNEL", func(c *Config) *string { return &c.Digest.Channel }),
}

// validateDigest fills the digest's defaults (the schedule; the channel
// falls back to BOT_ANNOUNCE_CHANNEL) and checks them.
func validateDigest(c *Config) []string {
	var p problemList
	d := &c.Digest
	d.Schedule, d.Channel = strings.TrimSpace(d.Schedule), strings.TrimSpace(d.Channel)
	if d.Schedule == "" {
		d.Schedule = digest.DefaultSchedule
	}
	if d.Channel == "" {
		d.Channel = c.AnnounceChannel
	}
	if err := checkDigestSchedule(d.Schedule); err != nil {
		p.add("BOT_DIGEST_SCHEDULE: %v", err)
	}
	if err := checkDigestChannel(c, d.Channel); err != nil {
		p.add("BOT_DIGEST_CHANNEL: %v", err)
	}
	return p
}

func checkDigestSchedule(spec string) error {
	if strings.EqualFold(strings.TrimSpace(spec), DigestOff) {
		return nil
	}
	// The zone only matters for when it fires, not for whether it parses.
	_, err := digest.ParseSchedule(spec, time.UTC)
	return err
}

var digestChannelID = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)

func checkDigestChannel(c *Config, ch string) error {
	if ch != "" && c.Slack.Enabled() && !digestChannelID.MatchString(ch) {
		return fmt.Errorf("%q must be a Slack channel id like C0123ABCDEF, not a name (open the channel's details in Slack to copy it)", ch)
	}
	return nil
}
