package sip

import (
	"errors"
	"fmt"
)

// Sentinel errors. Parse and Stream wrap them with detail; test with errors.Is.
var (
	ErrEmpty           = errors.New("sip: empty message")
	ErrStartLine       = errors.New("sip: malformed start line")
	ErrVersion         = errors.New("sip: unsupported protocol version")
	ErrMethod          = errors.New("sip: invalid method")
	ErrRequestURI      = errors.New("sip: invalid Request-URI")
	ErrStatusCode      = errors.New("sip: invalid status code")
	ErrHeader          = errors.New("sip: malformed header line")
	ErrNoHeaderEnd     = errors.New("sip: no empty line after headers")
	ErrMissingHeader   = errors.New("sip: missing mandatory header")
	ErrDuplicateHeader = errors.New("sip: repeated single-value header")
	ErrCSeq            = errors.New("sip: invalid CSeq")
	ErrCSeqMethod      = errors.New("sip: CSeq method does not match request method")
	ErrContentLength   = errors.New("sip: invalid Content-Length")
	ErrBodyTruncated   = errors.New("sip: body shorter than Content-Length")
	ErrNameAddr        = errors.New("sip: malformed name-addr")
	ErrQuote           = errors.New("sip: unterminated quoted string")
	ErrParam           = errors.New("sip: malformed parameter")
	ErrURI             = errors.New("sip: malformed URI")
	ErrVia             = errors.New("sip: malformed Via")
	ErrDate            = errors.New("sip: malformed Date")
	ErrTooLarge        = errors.New("sip: message exceeds stream buffer")
)

// ParseError is returned by Parse for bad bytes on the wire. It carries the
// byte offset (from the start of the message) where the problem was found
// and the header concerned, if any. Unwrap gives the sentinel.
type ParseError struct {
	Err    error  // one of the sentinels above
	Offset int    // byte offset into the input
	Header string // header name when the error is inside a header, else ""
	Detail string
}

func (e *ParseError) Error() string {
	s := e.Err.Error()
	if e.Header != "" {
		s += " in " + e.Header
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return fmt.Sprintf("%s (offset %d)", s, e.Offset)
}

func (e *ParseError) Unwrap() error { return e.Err }
