package ari

import (
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: 404, e.g. "Recording not found" (stopped, never existed,
	// or a dialplan MixMonitor, which ARI cannot see).
	ErrNotFound = errors.New("ari: not found")
	// ErrConflict: 409, e.g. "Recording not in session" (queued) or
	// "Channel not in Stasis application".
	ErrConflict = errors.New("ari: conflict")
	// ErrNotInStasis: 422, "Channel not in Stasis application" (a channel
	// added to a bridge before its StasisStart) or another unprocessable
	// request.
	ErrNotInStasis = errors.New("ari: unprocessable (channel not in Stasis application)")
	// ErrNotConnected: the event socket is down.
	ErrNotConnected = errors.New("ari: event socket not connected")
	// ErrAuth: 401, wrong user or password.
	ErrAuth = errors.New("ari: authentication failed")
	// ErrStatus: any other non-2xx answer.
	ErrStatus = errors.New("ari: request failed")
	// ErrNotConfigured: no ARI URL was given.
	ErrNotConfigured = errors.New("ari: not configured")
)

// StatusError is a non-2xx answer: the request, the status and Asterisk's
// {"message": …} text. It unwraps to ErrNotFound, ErrConflict, ErrNotInStasis,
// ErrAuth or ErrStatus.
type StatusError struct {
	Method, Path string
	Code         int
	Message      string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%v: %s %s: %d %s", e.Unwrap(), e.Method, e.Path, e.Code, e.Message)
}

func (e *StatusError) Unwrap() error {
	switch e.Code {
	case 404:
		return ErrNotFound
	case 409:
		return ErrConflict
	case 422:
		return ErrNotInStasis
	case 401:
		return ErrAuth
	}
	return ErrStatus
}
