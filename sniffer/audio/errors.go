package audio

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrClosed reports a subscription on a call whose audio has ended.
	ErrClosed = errors.New("audio: call audio closed")
)
