// Package incident is the domain of the bot: incidents, their timelines and
// follow-ups, the legal moves between statuses, the error kinds shown to
// users, and the use cases (Service) that every adapter calls.
//
// The package imports only the standard library. Adapters (Slack, PagerDuty,
// the bbolt store, the local shell) depend on it, never the other way round:
// what the use cases need from the outside world is declared here as small
// ports (Store, Tx, Chat, Pager, OnCallDirectory) and implemented elsewhere.
//
// Text produced here (event descriptions, topics) uses a light markup that
// Slack renders natively and the shell strips: *bold*, `code` and user
// mentions written as <@USERID>.
package incident
