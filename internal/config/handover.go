package config

import (
	"strings"
)

// Handover configures the scheduled on-call handover.
type Handover struct {
	// Schedule is the cron schedule of the post, at the end of each shift
	// (BOT_HANDOVER_SCHEDULE, same syntax as BOT_DIGEST_SCHEDULE). Empty
	// or "off": no scheduled post.
	Schedule string `yaml:"schedule"`
	// Channel is where it goes (BOT_HANDOVER_CHANNEL, default
	// BOT_ANNOUNCE_CHANNEL).
	Channel string `yaml:"channel"`
}

// Enabled reports whether the handover is posted on a schedule.
func (h Handover) Enabled() bool {
	return h.Schedule != "" && !strings.EqualFold(h.Schedule, DigestOff) && h.Channel != ""
}

var handoverVars = []envVar{
	strVar("BOT_HANDOVER_SCHEDULE", func(c *Config) *string { return &c.Handover.Schedule }),
	strVar("BOT_HANDOVER_CHANNEL", func(c *Config) *string { return &c.Handover.Channel }),
}

// validateHandover fills the handover's channel (BOT_ANNOUNCE_CHANNEL by
// default) and checks the schedule and the channel as the digest's are
// checked.
func validateHandover(c *Config) []string {
	var p problemList
	h := &c.Handover
	h.Schedule, h.Channel = strings.TrimSpace(h.Schedule), strings.TrimSpace(h.Channel)
	if h.Channel == "" {
		h.Channel = c.AnnounceChannel
	}
	if h.Schedule != "" {
		if err := checkDigestSchedule(h.Schedule); err != nil {
			p.add("BOT_HANDOVER_SCHEDULE: %v", err)
		} else if h.Channel == "" && !strings.EqualFold(h.Schedule, DigestOff) {
			p.add("BOT_HANDOVER_SCHEDULE is set but there is no channel to post to: set BOT_HANDOVER_CHANNEL or BOT_ANNOUNCE_CHANNEL")
		}
	}
	if err := checkDigestChannel(c, h.Channel); err != nil {
		p.add("BOT_HANDOVER_CHANNEL: %v", err)
	}
	return p
}
