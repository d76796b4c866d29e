package hep

import "errors"

// Sentinel errors of the decoder, the listeners and the sender; wrapped
// with %w where more context helps.
var (
	ErrTooShort      = errors.New("hep: packet too short")
	ErrVersion       = errors.New("hep: not a HEP v1/v2/v3 packet")
	ErrLength        = errors.New("hep: total length past the end of the packet")
	ErrChunkLength   = errors.New("hep: chunk length past the end of the packet")
	ErrChunkSize     = errors.New("hep: chunk of the wrong size for its type")
	ErrFamily        = errors.New("hep: unknown IP family")
	ErrNoPayload     = errors.New("hep: no payload chunk")
	ErrCompressed    = errors.New("hep: compressed payload not supported")
	ErrAuth          = errors.New("hep: wrong capture password")
	ErrTooLarge      = errors.New("hep: packet would exceed 65535 bytes")
	ErrQueueFull     = errors.New("hep: send queue full")
	ErrBadAddress    = errors.New("hep: address family does not match")
	ErrNoDestination = errors.New("hep: no destination configured")
	ErrRTCPJSON      = errors.New("hep: bad RTCP JSON report")
	ErrNetwork       = errors.New("hep: transport must be udp or tcp")
)
