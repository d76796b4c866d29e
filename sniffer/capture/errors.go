package capture

import "errors"

var (
	ErrOpen   = errors.New("capture: cannot open")
	ErrFormat = errors.New("capture: not a pcap or pcapng file")
	ErrRead   = errors.New("capture: read failed")
	ErrLive   = errors.New("capture: live capture failed")
)

// ErrTimeout is returned by live sources when no frame arrived within the
// poll interval; callers check their context and read again.
var ErrTimeout = errors.New("capture: no packet within poll timeout")

// Errors of CompileFilter: the expression is not pcap-filter, uses a part of
// pcap-filter the compiler does not implement, or exceeds its bounds.
var (
	ErrFilterSyntax      = errors.New("capture: filter syntax error")
	ErrFilterUnsupported = errors.New("capture: filter not supported")
	ErrFilterLimit       = errors.New("capture: filter too large")
	ErrFilterLinkType    = errors.New("capture: filter cannot read this link type")
)
