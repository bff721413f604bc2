package slacktest

import (
	"math"
	"sync"
	"time"
)

// tierPerMinute are Slack's published tiers (docs.slack.dev rate limits;
// java-slack-sdk MethodsRateLimits) for the methods the fake implements.
var tierPerMinute = map[string]float64{
	"auth.test":                    100,
	"conversations.create":         20,
	"conversations.list":           20,
	"conversations.setTopic":       20,
	"bookmarks.add":                20,
	"usergroups.users.list":        20,
	"conversations.invite":         50,
	"conversations.history":        50,
	"conversations.replies":        50,
	"conversations.info":           50,
	"conversations.join":           50,
	"users.lookupByEmail":          50,
	"chat.update":                  50,
	"chat.postEphemeral":           100,
	"chat.getPermalink":            100, // "hundreds of requests per minute"
	"views.open":                   100,
	"views.publish":                100,
	"files.getUploadURLExternal":   100,
	"files.completeUploadExternal": 100,
	// chat.postMessage is special: about one a second per channel (see
	// perChannel) and several hundred a minute across the workspace.
	"chat.postMessage": 300,
}

// perChannel is chat.postMessage's per-channel bucket: one a second with a
// short burst.
// defaultChannelBurst is the per-channel burst of chat.postMessage
// (Config.ChannelBurst).
const defaultChannelBurst = 4

type bucket struct {
	tokens float64
	last   time.Time
}

// rateLimits are token buckets on Slack's (scaled) clock: capacity is a
// minute's allowance, refilled continuously.
type rateLimits struct {
	mu           sync.Mutex
	scale        float64
	channelBurst float64
	buckets      map[string]*bucket
}

func newRateLimits(scale float64, channelBurst int) *rateLimits {
	if channelBurst <= 0 {
		channelBurst = defaultChannelBurst
	}
	return &rateLimits{scale: scale, channelBurst: float64(channelBurst), buckets: map[string]*bucket{}}
}

// take spends one call; if none is left it reports the Retry-After seconds.
func (l *rateLimits) take(method, channel string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	perMin, ok := tierPerMinute[method]
	if !ok {
		return 0, false
	}
	wait := l.spend(method, perMin, perMin, now)
	if method == "chat.postMessage" && channel != "" && wait == 0 {
		wait = l.spend(method+":"+channel, 60, l.channelBurst, now)
		if wait > 0 {
			l.buckets[method].tokens++ // refund the workspace token
		}
	}
	if wait == 0 {
		return 0, false
	}
	return int(math.Ceil(wait)), true
}

// spend takes a token from a bucket (refilled at perMin a Slack minute,
// holding at most capacity) and returns 0, or the real seconds to wait.
func (l *rateLimits) spend(key string, perMin, capacity float64, now time.Time) float64 {
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: capacity, last: now}
		l.buckets[key] = b
	}
	slackSeconds := now.Sub(b.last).Seconds() * l.scale
	b.tokens = math.Min(capacity, b.tokens+slackSeconds*perMin/60)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	need := (1 - b.tokens) * 60 / perMin // Slack seconds
	return math.Max(need/l.scale, 1)
}
