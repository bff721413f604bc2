package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Check is one result of the PagerDuty setup checks (`bot doctor`).
type Check = incident.SetupCheck

// DoctorConfig says what to check.
type DoctorConfig struct {
	Client *Client
	// WebhookSecret says whether PAGERDUTY_WEBHOOK_SECRET is set.
	WebhookSecret bool
}

// User is a PagerDuty user as the setup checks see it.
type User struct {
	ID, Name, Email string
}

// FindUserByEmail returns the user with exactly this email (any letter
// case), through List users (GET /users?query=EMAIL; the query matches
// names and emails in part, so the answer is filtered here). See
// https://developer.pagerduty.com/api-reference/c96e889522dd6-list-users
// — the same lookup PagerDuty's Terraform provider uses for its
// pagerduty_user data source by email.
func (c *Client) FindUserByEmail(ctx context.Context, email string) (User, bool, error) {
	cctx, info := withCall(ctx)
	resp, err := c.pd.ListUsersWithContext(cctx, pagerduty.ListUsersOptions{Query: email, Limit: 100})
	if err := classify("GET /users", info, err); err != nil {
		return User{}, false, err
	}
	for _, u := range resp.Users {
		if strings.EqualFold(u.Email, email) {
			return User{ID: u.ID, Name: u.Name, Email: u.Email}, true, nil
		}
	}
	return User{}, false, nil
}

// Doctor runs the PagerDuty setup checks and returns every result: the
// REST API token (a read call with it), the From user (PAGERDUTY_FROM_EMAIL
// is a PagerDuty user's email), whether the token may read on-calls, and
// the webhook secret.
func Doctor(ctx context.Context, cfg DoctorConfig) []Check {
	var checks []Check
	c := cfg.Client
	switch {
	case !c.REST():
		detail := "not set: the bot cannot open, acknowledge, resolve or escalate PagerDuty incidents"
		if c.Events() {
			detail = "not set: pages go through the Events API (PAGERDUTY_ROUTING_KEY); acknowledging, resolving and escalating from Slack do not change PagerDuty"
		}
		checks = append(checks, Check{Name: "API token (PAGERDUTY_API_TOKEN)", OK: true, Detail: detail})
	default:
		checks = append(checks, restChecks(ctx, c)...)
	}
	checks = append(checks, webhookCheck(cfg.WebhookSecret))
	return checks
}

func restChecks(ctx context.Context, c *Client) []Check {
	token := Check{Name: "API token (PAGERDUTY_API_TOKEN)"}
	from := Check{Name: "From user (PAGERDUTY_FROM_EMAIL)"}
	u, found, err := c.FindUserByEmail(ctx, c.cfg.From)
	var apiErr *APIError
	switch {
	case err == nil:
		token.OK, token.Detail = true, "valid: PagerDuty answered GET /users at "+c.cfg.APIURL
	case errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Code == 2006):
		token.Detail = "PagerDuty rejected the token (" + apiErr.Error() + ")"
		token.Fix = "Create a REST API key (Integrations → API Access Keys; a general access key, not read-only, as the bot changes incidents) and put it in PAGERDUTY_API_TOKEN."
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusForbidden:
		token.Detail = "the token may not list users (" + apiErr.Error() + ")"
		token.Fix = "Use a general access REST API key, or a user token of a user who can see the account's users."
	case !errors.As(err, &apiErr):
		token.Detail = "PagerDuty could not be reached: " + err.Error()
		token.Fix = "Check that PAGERDUTY_API_URL (default https://api.pagerduty.com) is reachable from this host, then run bot doctor again."
	default:
		token.Detail = "cannot check: " + err.Error()
		token.Fix = "Run bot doctor again; if it persists, check PAGERDUTY_API_URL and the token."
	}
	if !token.OK {
		from.Detail = "not checked: the API token check failed"
		from.Fix = "Fix the API token (above) first."
		return []Check{token, from}
	}
	if !found {
		from.Detail = fmt.Sprintf("no PagerDuty user has the email %s", c.cfg.From)
		from.Fix = "Set PAGERDUTY_FROM_EMAIL to the login email of a PagerDuty user (the person or service user changes are made as); PagerDuty refuses every change without one (error 1008)."
		return []Check{token, from, onCallCheck(ctx, c)}
	}
	from.OK, from.Detail = true, fmt.Sprintf("%s is %s (%s)", u.Email, u.Name, u.ID)
	return []Check{token, from, onCallCheck(ctx, c)}
}

// onCallCheck says whether the token may read on-calls (`oncall`): one
// GET /oncalls?limit=1.
func onCallCheck(ctx context.Context, c *Client) Check {
	ch := Check{Name: "on-call (`/incident oncall`)"}
	cctx, info := withCall(ctx)
	_, err := c.pd.ListOnCallsWithContext(cctx, pagerduty.ListOnCallOptions{Limit: 1})
	err = classify("GET /oncalls", info, err)
	var apiErr *APIError
	switch {
	case err == nil:
		ch.OK, ch.Detail = true, "the token can read who is on call (GET /oncalls)"
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusForbidden:
		ch.Detail = "the token may not read on-calls (" + apiErr.Error() + "): `/incident oncall` answers with PagerDuty's refusal"
		ch.Fix = "Use a REST API key that can read schedules and on-calls (a general access key; with scoped OAuth, oncalls.read, schedules.read and escalation_policies.read)."
	default:
		ch.Detail = "cannot check: " + err.Error()
		ch.Fix = "Run bot doctor again; if it persists, check PAGERDUTY_API_URL and the token."
	}
	return ch
}

func webhookCheck(set bool) Check {
	ch := Check{Name: "webhooks (PAGERDUTY_WEBHOOK_SECRET)"}
	if !set {
		ch.Detail = "not set: PagerDuty's webhooks are refused, so acknowledgements, resolutions and escalations made in PagerDuty never reach Slack"
		ch.Fix = "Add a Generic Webhook (v3) subscription in PagerDuty (Integrations → Generic Webhooks) to https://<your bot>/webhooks/pagerduty and put its secret in PAGERDUTY_WEBHOOK_SECRET."
		return ch
	}
	ch.OK, ch.Detail = true, "set: PagerDuty's webhooks are verified and received on POST /webhooks/pagerduty"
	return ch
}
