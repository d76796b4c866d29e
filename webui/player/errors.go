package player

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrBadRequest reports a missing or malformed callref or sensor_id.
	ErrBadRequest = errors.New("player: bad request")
	// ErrUnknownSensor reports a sensor id that is neither this agent's nor
	// a configured remote sensor.
	ErrUnknownSensor = errors.New("player: unknown sensor")
	// ErrUnavailable reports a remote sensor that RemoteLookup cannot
	// reach now (offline, no address, key lookup failed).
	ErrUnavailable = errors.New("player: sensor unavailable")
	// ErrNoAudio reports that live audio is not available (no source).
	ErrNoAudio = errors.New("player: live audio is disabled")
	// ErrClosed reports a handler that was closed (shutdown).
	ErrClosed = errors.New("player: closed")
	// ErrRunning is returned by a second Run.
	ErrRunning = errors.New("player: already running")
)
