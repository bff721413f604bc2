// Package pagerduty connects the bot to PagerDuty.
//
// Inbound: Intake receives V3 webhooks on POST /webhooks/pagerduty. It
// verifies the signature over the raw body, decodes the event leniently,
// and in one durable store transaction deduplicates it (on X-Webhook-Id and
// event.id) and enqueues a job keyed by the PagerDuty incident, so events of
// one incident are applied one at a time, in order; only then does it
// answer 2xx. Worker.HandleEvent applies the stored event to the domain
// (incident.Service.ApplyPagerEvent) later, off the request path.
//
// Outbound: Client calls the REST API v2 and the Events API v2 through
// go-pagerduty, with metrics and an error classification that the job
// queue understands (rate limits and 5xx are retried, honouring
// ratelimit-reset and Retry-After; anything else fails for good and is told
// in the incident's channel). Worker runs the domain's pager jobs (pages,
// escalations, acknowledgements, resolutions, notes, and resolving PagerDuty
// users to chat users) and implements the `page` and `escalate` commands.
// OnCall answers the `oncall` command (incident.OnCallDirectory) from GET
// /oncalls, cached briefly.
//
// go-pagerduty is imported here and nowhere else.
package pagerduty
