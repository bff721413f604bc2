package runbook

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrorKind classifies a UserError so adapters and audit can map it once.
type ErrorKind string

// Error kinds.
const (
	KindInvalid       ErrorKind = "invalid"        // bad syntax or parameter values
	KindUnknown       ErrorKind = "unknown"        // no such runbook or request
	KindDisabled      ErrorKind = "disabled"       // runbook or whole feature switched off
	KindUnavailable   ErrorKind = "unavailable"    // program missing on this host
	KindDenied        ErrorKind = "denied"         // authorization failed
	KindRateLimited   ErrorKind = "rate_limited"   // per-user request rate exceeded
	KindBusy          ErrorKind = "busy"           // concurrency lock, global cap or cooldown
	KindExpired       ErrorKind = "expired"        // confirmation or approval too late
	KindConflict      ErrorKind = "conflict"       // request already handled (double click, replay)
	KindChanged       ErrorKind = "changed"        // runbook version changed or removed
	KindShuttingDown  ErrorKind = "shutting_down"  // engine closed
	KindSecretFailure ErrorKind = "secret_failure" // a secret could not be resolved
)

// UserError is an error whose Message is safe to show the person who caused
// it in Slack as mrkdwn: every echoed value is escaped, cut to 64 characters
// and quoted, secret values are never included, and where a runbook is known
// the message ends with its usage. Any other error from this package is an
// internal failure: show a generic apology and log it.
type UserError struct {
	Kind    ErrorKind
	Message string
}

func (e *UserError) Error() string { return e.Message }

// AsUserError returns the UserError in err's chain, if any.
func AsUserError(err error) (*UserError, bool) {
	var ue *UserError
	ok := errors.As(err, &ue)
	return ue, ok
}

// userErrorf builds a UserError whose format string is trusted text. Every
// user-controlled argument must already have gone through echo.
func userError(kind ErrorKind, lines ...string) *UserError {
	return &UserError{Kind: kind, Message: strings.Join(lines, "\n")}
}

// maxEcho is how many characters of a user-supplied value an error repeats.
const maxEcho = 64

// echo renders a user-supplied value for an error message: cut to 64
// characters, Go-quoted with non-ASCII and invisible characters spelled as
// \uXXXX escapes (so a Cyrillic "а" or a U+200B is visible), and shown in a
// code span (see InlineCode) so mrkdwn neither formats it (* _ ~ survive) nor turns
// it into a mention or link.
func echo(v string) string {
	cut := false
	if utf8.RuneCountInString(v) > maxEcho {
		v = string([]rune(v)[:maxEcho])
		cut = true
	}
	q := strconv.QuoteToASCII(v)
	if cut {
		q += "…"
	}
	return InlineCode(q)
}

// backtickStandIn replaces a backtick in text shown in a code span: Slack's
// inline code cannot contain a backtick (it would end the span and let
// mrkdwn format the rest), so a visible look-alike, U+02CB MODIFIER LETTER
// GRAVE ACCENT, stands in for it. echo's values are ASCII-quoted first, so a
// ˋ the user really typed shows as \u02cb and the two cannot be confused.
const backtickStandIn = "\u02cb"

// InlineCode shows s on one line in inline code, where mrkdwn applies no bold,
// italic or strike (so *, _ and ~ show as written), with &, < and > escaped
// and any backtick replaced by backtickStandIn. Refusals use it for every
// user-supplied value and for the rule (pattern) that was broken.
func InlineCode(s string) string {
	return "`" + EscapeSlack(strings.ReplaceAll(s, "`", backtickStandIn)) + "`"
}
