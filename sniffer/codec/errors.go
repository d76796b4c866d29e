package codec

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrUnsupported: no decoder for this codec in this build (an unknown
	// name, or a build without cgo).
	ErrUnsupported = errors.New("codec: not supported in this build")
	// ErrRate: the codec cannot produce PCM at the requested rate.
	ErrRate = errors.New("codec: unsupported sample rate")
	// ErrPayload: a payload the decoder cannot use (wrong size, corrupt).
	ErrPayload = errors.New("codec: bad payload")
	// ErrShort: the output buffer cannot hold one packet's samples.
	ErrShort = errors.New("codec: output buffer too short")
)
