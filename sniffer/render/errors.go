package render

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrCapture reports a stored pcap that cannot be read.
	ErrCapture = errors.New("render: unreadable capture")
)
