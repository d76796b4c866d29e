package tap

import "errors"

// Sentinel errors; test with errors.Is.
var (
	// ErrNoChannel: the call is not correlated with an Asterisk channel, so
	// there is nothing to snoop on.
	ErrNoChannel = errors.New("tap: call has no Asterisk channel")
	// ErrClosed: the tapper has stopped.
	ErrClosed = errors.New("tap: closed")
	// ErrNotRunning: Run has not started (or not finished its start-up
	// Cleanup in time).
	ErrNotRunning = errors.New("tap: not running")
	// ErrConfig: a required setting is missing or wrong.
	ErrConfig = errors.New("tap: bad configuration")
	// ErrSetup: Asterisk refused part of the tap (snoop, externalMedia,
	// bridge); the error wraps ARI's.
	ErrSetup = errors.New("tap: setup failed")
)

// ListenError is what Subscribe returns when the tap cannot serve a
// listener: ListenReason is the sentence the listener is told (the page
// shows it instead of a bare "call not found"), Err the cause.
type ListenError struct {
	Reason string
	Err    error
}

func (e *ListenError) Error() string { return e.Err.Error() }

func (e *ListenError) Unwrap() error { return e.Err }

// ListenReason implements webui/player's reason hook.
func (e *ListenError) ListenReason() string { return e.Reason }
