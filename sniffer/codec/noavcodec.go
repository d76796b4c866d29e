//go:build !cgo || nocodecs || noavcodec

package codec

import "fmt"

// Without libavcodec (CGO_ENABLED=0, or the nocodecs or noavcodec tag)
// iLBC and G.723.1 are not decoded and G.723.1 is not encoded.

func newAV(name string, _ int) (Decoder, error) {
	return nil, fmt.Errorf("%w: %s (built without libavcodec)", ErrUnsupported, name)
}

type avEnc struct{}

func newAVEnc(name string) (*avEnc, error) {
	return nil, fmt.Errorf("%w: encoder %s (built without libavcodec)", ErrUnsupported, name)
}

func (*avEnc) frameSamples() int                   { return 0 }
func (*avEnc) encode([]int16, []byte) (int, error) { return 0, ErrUnsupported }
func (*avEnc) close()                              {}

// builtAV: this build has no libavcodec decoders.
const builtAV = false
