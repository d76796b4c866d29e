package fax

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrUnsupported: this build has no fax decoder (built without cgo or
	// with the nocodecs tag).
	ErrUnsupported = errors.New("fax: not supported in this build (needs cgo and spandsp)")
	// ErrUDPTL: a datagram that is not a well-formed UDPTL packet.
	ErrUDPTL = errors.New("fax: bad UDPTL packet")
	// ErrNoFax: the call carried no fax image (no T.38 or G.711 fax page
	// was received by the decoder).
	ErrNoFax = errors.New("fax: no fax pages in the call")
	// ErrTIFF: the decoded TIFF could not be read.
	ErrTIFF = errors.New("fax: bad TIFF")
	// ErrTooBig: the input exceeds the decoder's limits.
	ErrTooBig = errors.New("fax: input exceeds limits")
)
