//go:build !cgo || nocodecs

package codec

import "fmt"

// OpusEncoder is unavailable without cgo.
type OpusEncoder struct{}

// NewOpusEncoder returns ErrUnsupported without cgo.
func NewOpusEncoder(rate, channels, bitrate int) (*OpusEncoder, error) {
	return nil, fmt.Errorf("%w: opus encoder (built without cgo)", ErrUnsupported)
}

func (*OpusEncoder) Rate() int                           { return 0 }
func (*OpusEncoder) Channels() int                       { return 0 }
func (*OpusEncoder) Lookahead() int                      { return 0 }
func (*OpusEncoder) Encode([]int16, []byte) (int, error) { return 0, ErrUnsupported }
func (*OpusEncoder) Close()                              {}
