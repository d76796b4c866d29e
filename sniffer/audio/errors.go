package audio

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrClosed reports a subscription on a call whose audio has ended.
	ErrClosed = errors.New("audio: call audio closed")
	// ErrOgg reports a malformed Ogg stream (bad page, checksum, packet).
	ErrOgg = errors.New("audio: bad Ogg stream")
	// ErrFormat reports a recording format this package does not write.
	ErrFormat = errors.New("audio: unsupported recording format")
	// ErrNoEncoder: this build cannot write the asked format (Ogg/Opus
	// needs libopus, absent without cgo or with the nocodecs tag).
	ErrNoEncoder = errors.New("audio: no encoder for this format in this build")
)
