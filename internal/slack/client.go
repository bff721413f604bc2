package slack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	slackapi "github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// DefaultAPIURL is Slack's Web API base URL.
const DefaultAPIURL = "https://slack.com/api/"

// ClientConfig configures a Client.
type ClientConfig struct {
	// Token is the bot token (xoxb-…).
	Token string
	// AppToken is the app-level token (xapp-…) for Socket Mode; optional.
	AppToken string
	// APIURL is the Web API base URL (default DefaultAPIURL); a missing
	// trailing slash is added.
	APIURL string
	// HTTPClient makes the calls (default: a client with no overall
	// timeout; every call has CallTimeout).
	HTTPClient *http.Client
	Logger     *zap.Logger
	Clock      incident.Clock // default incident.SystemClock
	// Registerer receives the API metrics; nil: no metrics.
	Registerer prometheus.Registerer
	// CallTimeout bounds one Web API call (default 15s).
	CallTimeout time.Duration
	// MaxWait is the longest a call waits for rate-limit capacity before it
	// gives up with a retryable error (default 5s).
	MaxWait time.Duration
	// Rates overrides MethodRates (tests).
	Rates map[string]Rate
	// UserTTL and UserMissTTL bound how long users.lookupByEmail answers are
	// cached (defaults 1h and 5m).
	UserTTL, UserMissTTL time.Duration
	// Sleep waits for rate-limit capacity (default: a timer); tests that
	// drive a manual clock replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client is the Slack Web API client the bot uses: it implements the chat
// ports, paces calls to Slack's rate limits, and maps every error once:
// 429 → retryable after Retry-After; 5xx, network errors and timeouts →
// retryable; name_taken → incident.ErrNameTaken; not-found kinds →
// ENOTFOUND; already-done answers (already_in_channel, cant_invite_self,
// already_pinned…) → success; auth and scope problems → retryable after a
// minute (a fixed token or scope lets the work resume, nothing is lost);
// anything else → a permanent EINVALID error with a plain message.
type Client struct {
	cfg     ClientConfig
	api     *slackapi.Client
	log     *zap.Logger
	clock   incident.Clock
	limits  *limiter
	metrics *apiMetrics
	http    *http.Client

	mu       sync.Mutex
	scopes   []string // from the last auth.test
	identity *Identity
	users    map[string]userEntry
}

var (
	_ incident.Chat       = (*Client)(nil)
	_ incident.Bookmarker = (*Client)(nil)
	_ incident.Uploader   = (*Client)(nil)
	_ incident.Finder     = (*Client)(nil)
)

// NewClient returns a client for the bot token in cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Token == "" {
		return nil, errors.New("slack client: no bot token")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if u, err := url.Parse(cfg.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("slack client: API URL %q is not an http(s) URL", cfg.APIURL)
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/" // slack-go appends method names directly
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = incident.SystemClock
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 15 * time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Second
	}
	if cfg.Rates == nil {
		cfg.Rates = MethodRates
	}
	if cfg.UserTTL <= 0 {
		cfg.UserTTL = time.Hour
	}
	if cfg.UserMissTTL <= 0 {
		cfg.UserMissTTL = 5 * time.Minute
	}
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger.Named("slack"),
		clock:   cfg.Clock,
		metrics: newAPIMetrics(cfg.Registerer),
		http:    cfg.HTTPClient,
		users:   map[string]userEntry{},
	}
	c.limits = newLimiter(cfg.Clock, cfg.MaxWait, cfg.Rates, cfg.Sleep)
	opts := []slackapi.Option{
		slackapi.OptionAPIURL(cfg.APIURL),
		slackapi.OptionHTTPClient(cfg.HTTPClient),
		slackapi.OptionOnResponseHeaders(c.onHeaders),
	}
	if cfg.AppToken != "" {
		opts = append(opts, slackapi.OptionAppLevelToken(cfg.AppToken))
	}
	c.api = slackapi.New(cfg.Token, opts...)
	return c, nil
}

// onHeaders keeps the granted scopes Slack reports on auth.test.
func (c *Client) onHeaders(path string, h http.Header) {
	if path != "auth.test" || h == nil {
		return
	}
	scopes := parseScopes(h.Get("X-OAuth-Scopes"))
	c.mu.Lock()
	c.scopes = scopes
	c.mu.Unlock()
}

func parseScopes(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// call runs one Web API call: it waits for rate-limit capacity, bounds the
// call with CallTimeout, records metrics and maps the error.
func (c *Client) call(ctx context.Context, method, channel string, fn func(ctx context.Context) error) error {
	if err := c.limits.wait(ctx, method, channel); err != nil {
		if _, ok := incident.IsRetryable(err); ok {
			return fmt.Errorf("slack %s: %w", method, err)
		}
		return incident.Retryable(fmt.Errorf("slack %s: %w", method, err), 0)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	start := c.clock.Now()
	err := fn(cctx)
	outcome, mapped := c.classify(method, err)
	c.metrics.observe(method, outcome, c.clock.Now().Sub(start))
	if mapped != nil && outcome != outcomeClientError {
		c.log.Warn("slack call failed", zap.String("method", method), zap.String("outcome", outcome), zap.Error(err))
	}
	return mapped
}

// Error codes that mean the thing asked for is already so.
var alreadyDone = map[string]bool{
	"already_in_channel": true,
	"cant_invite_self":   true,
	"already_pinned":     true,
	"already_reacted":    true,
}

// Error codes that mean something named in the call does not exist.
var notFound = map[string]string{
	"channel_not_found": "channel",
	"user_not_found":    "user",
	"users_not_found":   "user",
	"message_not_found": "message",
	"thread_not_found":  "thread",
	"no_such_subteam":   "user group",
	"file_not_found":    "file",
	"not_found":         "item",
}

// Error codes that mean Slack had a problem of its own.
var serverSide = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
}

// Error codes that mean the app's installation is wrong. They are retried
// slowly: fixing the token or the scopes lets the waiting work go through.
var authProblems = map[string]string{
	"invalid_auth":              "the bot token is not valid; check SLACK_BOT_TOKEN",
	"not_authed":                "no bot token was sent; check SLACK_BOT_TOKEN",
	"account_inactive":          "the bot token belongs to a deleted user or workspace",
	"token_revoked":             "the bot token was revoked; reinstall the app",
	"token_expired":             "the bot token expired; reinstall the app",
	"no_permission":             "the app lacks permission for this call",
	"missing_scope":             "the app lacks a scope; reinstall it from deploy/slack/manifest.yaml",
	"not_allowed_token_type":    "the token is not a bot token",
	"team_access_not_granted":   "the app is not installed in this workspace",
	"ekm_access_denied":         "an administrator suspended the app's access",
	"access_denied":             "access denied",
	"org_login_required":        "the workspace requires re-authorising the app",
	"two_factor_setup_required": "the workspace requires two-factor setup",
}

// authRetry is how long work waits after an installation problem.
const authRetry = time.Minute

// APIError is an error answer from the Slack Web API.
type APIError struct {
	Method string
	Code   string // Slack's error code, e.g. "channel_not_found"
	Needed string // the scope missing, for missing_scope
}

func (e *APIError) Error() string {
	if e.Needed != "" {
		return fmt.Sprintf("slack %s: %s (needs %s)", e.Method, e.Code, e.Needed)
	}
	return fmt.Sprintf("slack %s: %s", e.Method, e.Code)
}

// classify maps a slack-go error to a metric outcome and the error the rest
// of the bot sees.
func (c *Client) classify(method string, err error) (string, error) {
	if err == nil {
		return outcomeOK, nil
	}
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		c.limits.block(method, rl.RetryAfter)
		return outcomeRateLimited, incident.Deferred(fmt.Errorf("slack %s: rate limited (retry after %s): %w", method, rl.RetryAfter, err), rl.RetryAfter)
	}
	var sc slackapi.StatusCodeError
	if errors.As(err, &sc) {
		switch {
		case sc.Code == http.StatusTooManyRequests:
			c.limits.block(method, time.Second)
			return outcomeRateLimited, incident.Retryable(fmt.Errorf("slack %s: %w", method, err), 0)
		case sc.Code >= 500:
			// Slack may have carried the call out before it failed.
			return outcomeServerError, incident.Retryable(incident.OutcomeUnknown(fmt.Errorf("slack %s: %w", method, err)), 0)
		}
		// A 404 means the API URL is wrong, not that something is missing.
		return outcomeClientError, fmt.Errorf("slack %s: %w (check SLACK_API_URL)", method, err)
	}
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) {
		code := se.Err
		api := &APIError{Method: method, Code: code, Needed: se.Needed}
		switch {
		case alreadyDone[code]:
			return outcomeOK, nil
		case code == "ratelimited" || code == "rate_limited":
			c.limits.block(method, time.Second)
			return outcomeRateLimited, incident.Retryable(api, time.Second)
		case serverSide[code]:
			return outcomeServerError, incident.Retryable(api, 0)
		case code == "name_taken":
			return outcomeClientError, fmt.Errorf("%w: %w", incident.ErrNameTaken, api)
		case notFound[code] != "":
			return outcomeClientError, fmt.Errorf("%w: %w", incident.Errorf(incident.ENOTFOUND, "Slack could not find that %s.", notFound[code]), api)
		case authProblems[code] != "":
			c.log.Error("slack rejected the app's credentials", zap.String("method", method), zap.String("code", code), zap.String("needed", se.Needed), zap.String("fix", authProblems[code]))
			return outcomeClientError, incident.Retryable(fmt.Errorf("%s: %w", authProblems[code], api), authRetry)
		}
		return outcomeClientError, fmt.Errorf("%w: %w", incident.Errorf(incident.EINVALID, "Slack refused %s: %s.", method, code), api)
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// The request may have reached Slack, and been carried out,
		// before the connection broke or the time ran out.
		return outcomeNetwork, incident.Retryable(incident.OutcomeUnknown(fmt.Errorf("slack %s: %w", method, err)), 0)
	}
	// A body that is not JSON and other surprises (a proxy's error page):
	// retried a bounded number of times by the queue; what Slack did is
	// unknown.
	return outcomeServerError, incident.OutcomeUnknown(fmt.Errorf("slack %s: %w", method, err))
}

// SlackCode returns the Slack error code in err's chain, or "".
func SlackCode(err error) string {
	var api *APIError
	if errors.As(err, &api) {
		return api.Code
	}
	return ""
}
