// Package slack is the Slack adapter: it verifies and parses what Slack
// sends (slash commands, interactions, Events API callbacks, over HTTP or
// Socket Mode), hands it to the command dispatcher and the incident use
// cases, and renders replies; and it implements the chat ports
// (incident.Chat, Bookmarker, Uploader) on a rate-limited Slack Web API
// client whose errors are mapped once, here, to the domain's error kinds
// and retry decisions.
//
// Only this package imports slack-go. The domain decides what happens; this
// package maps Slack to it and back.
package slack
