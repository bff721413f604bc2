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

// digestVars check the digest's variables while the environment is read,
// so that config.Load reports a bad schedule with every other problem.
//
// The values themselves are read by LoadDigest: Config has no field for
// them yet (adding `Digest Digest` to Config, in config.go, is the change
// that lets these bind to c.Digest like every other variable).
var digestVars = []envVar{
	parseVar("BOT_DIGEST_SCHEDULE", func(_ *Config, v string) error { return checkDigestSchedule(v) }),
	parseVar("BOT_DIGEST_CHANNEL", func(c *Config, v string) error { return checkDigestChannel(c, v) }),
}

func validateDigest(*Config) []string { return nil } // the variables are checked as they are read

// LoadDigest returns the digest's configuration from src with its
// defaults, for a c that Load returned. Its problems are the ones Load
// reports for the same source.
func LoadDigest(c Config, src Source) (Digest, error) {
	d := Digest{
		Schedule: strings.TrimSpace(src.Getenv("BOT_DIGEST_SCHEDULE")),
		Channel:  strings.TrimSpace(src.Getenv("BOT_DIGEST_CHANNEL")),
	}
	if d.Schedule == "" {
		d.Schedule = digest.DefaultSchedule
	}
	if d.Channel == "" {
		d.Channel = c.AnnounceChannel
	}
	var p Problems
	if err := checkDigestSchedule(d.Schedule); err != nil {
		p = append(p, "BOT_DIGEST_SCHEDULE: "+err.Error())
	}
	if err := checkDigestChannel(&c, d.Channel); err != nil {
		p = append(p, "BOT_DIGEST_CHANNEL: "+err.Error())
	}
	if len(p) > 0 {
		return d, p
	}
	return d, nil
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
