package sdp

import "errors"

// Sentinel errors; Parse wraps them with the line number and text.
var (
	ErrEmpty   = errors.New("sdp: empty description")
	ErrLine    = errors.New("sdp: malformed line")
	ErrVersion = errors.New("sdp: first line is not v=0")
	ErrConn    = errors.New("sdp: malformed c= line")
	ErrMedia   = errors.New("sdp: malformed m= line")
	ErrOrigin  = errors.New("sdp: malformed o= line")
	ErrAddr    = errors.New("sdp: malformed address")
)
