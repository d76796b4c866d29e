package decode

import "errors"

var (
	ErrLinkType  = errors.New("decode: unsupported link type")
	ErrMalformed = errors.New("decode: malformed frame")
	ErrFragment  = errors.New("decode: bad fragment")
)
