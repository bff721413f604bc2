package incident

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are mapped once at each edge: to an ephemeral chat reply,
// an HTTP status, or a retry decision for a job.
const (
	EINVALID   = "invalid"   // the request is malformed or names something unknown
	ENOTFOUND  = "not_found" // the incident (or other thing) does not exist
	ECONFLICT  = "conflict"  // an illegal move for the incident's current state
	EFORBIDDEN = "forbidden" // the caller may not do this
	EINTERNAL  = "internal"  // a bug or an outside failure; details are logged, not shown
)

// ErrPanicked marks work that panicked: a bug, so it is failed for good
// (dead-lettered), never retried. Whoever recovers a panic on behalf of a
// caller wraps it.
var ErrPanicked = errors.New("panicked")

// Error is a domain error whose Message is fit to show to a user.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns a domain error with the given code and a user-facing message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first domain error in err's chain, or
// EINTERNAL for any other non-nil error.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of the first domain error in
// err's chain. Other errors get a generic message so that internal details
// (paths, tokens, stack traces) never reach a user.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "Something went wrong on our side; the details are in the bot's log."
	}
}

// RetryableError marks a failure of an outside system that is worth retrying
// (a rate limit, a 5xx, a network error). After is the wait the remote side
// asked for, or zero to let the caller choose a backoff.
type RetryableError struct {
	Err   error
	After time.Duration
	// Deferral: nothing failed, the work must only wait (for rate-limit
	// capacity, or the Retry-After a remote side asked for). The queue
	// runs it again after After without counting an attempt.
	Deferral bool
}

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable wraps err as retryable after the given wait (zero: caller's backoff).
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err, After: after}
}

// Deferred marks work that must wait before it can go on, without having
// failed: the queue reschedules it after the wait and does not count an
// attempt, so a long wait for capacity never turns into backoff or a
// failure. Waiting in a job instead would hold a worker.
func Deferred(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err, After: after, Deferral: true}
}

// IsDeferred reports whether err is a deferral, and for how long.
func IsDeferred(err error) (time.Duration, bool) {
	var r *RetryableError
	if errors.As(err, &r) && r.Deferral {
		return r.After, true
	}
	return 0, false
}

// IsRetryable reports whether err (or an error it wraps) is retryable, and the
// wait the remote side asked for.
func IsRetryable(err error) (time.Duration, bool) {
	var r *RetryableError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}
