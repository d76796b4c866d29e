package rtp

import "errors"

// Sentinel errors returned (wrapped with the numbers that matter) by the
// parsers. Callers test them with errors.Is.
var (
	// ErrShortPacket: the buffer ends before the header or a length field says it should.
	ErrShortPacket = errors.New("rtp: packet too short")
	// ErrBadVersion: the version field is not 2.
	ErrBadVersion = errors.New("rtp: bad version")
	// ErrBadPadding: the padding count is zero or larger than the payload.
	ErrBadPadding = errors.New("rtp: bad padding")
	// ErrBadLength: an RTCP length field does not fit the datagram.
	ErrBadLength = errors.New("rtp: bad RTCP length")
	// ErrNotRTCP: the packet type is outside the RTCP range 192..223 (e.g. RTP).
	ErrNotRTCP = errors.New("rtp: not an RTCP packet")
	// ErrShortEvent: a telephone-event payload shorter than 4 bytes.
	ErrShortEvent = errors.New("rtp: telephone-event payload too short")
	// ErrSeries: a stored quality series that is not whole points in time order.
	ErrSeries = errors.New("rtp: bad quality series")
)
