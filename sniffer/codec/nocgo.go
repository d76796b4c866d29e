//go:build !cgo || nocodecs

package codec

import "fmt"

// Built says which decoders this build has beyond G.711 and CN: none
// without cgo.
const Built = false

func newG722(int) (Decoder, error) {
	return nil, fmt.Errorf("%w: G722 (built without cgo)", ErrUnsupported)
}
func newGSM() (Decoder, error) { return nil, fmt.Errorf("%w: GSM (built without cgo)", ErrUnsupported) }
func newG729() (Decoder, error) {
	return nil, fmt.Errorf("%w: G729 (built without cgo)", ErrUnsupported)
}
func newOpus(int) (Decoder, error) {
	return nil, fmt.Errorf("%w: opus (built without cgo)", ErrUnsupported)
}
func newSpeex(name string, _ int) (Decoder, error) {
	return nil, fmt.Errorf("%w: %s (built without cgo)", ErrUnsupported, name)
}
func newG726(name string) (Decoder, error) {
	return nil, fmt.Errorf("%w: %s (built without cgo)", ErrUnsupported, name)
}

// Encoder is unavailable without cgo.
type Encoder struct{}

// NewEncoder returns ErrUnsupported without cgo.
func NewEncoder(name string) (*Encoder, error) {
	return nil, fmt.Errorf("%w: encoder %s (built without cgo)", ErrUnsupported, name)
}

// FrameSamples is 0 without cgo.
func (*Encoder) FrameSamples() int { return 0 }

// Encode fails without cgo.
func (*Encoder) Encode([]int16, []byte) (int, error) { return 0, ErrUnsupported }

// Close does nothing without cgo.
func (*Encoder) Close() {}
