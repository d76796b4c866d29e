//go:build cgo && !nocodecs

package codec

/*
#cgo LDFLAGS: -lspandsp -lgsm -lopus -lbcg729 -lm
#include <stdint.h>
#include <stdlib.h>
#include <spandsp/telephony.h>
#include <spandsp/g722.h>
#include <spandsp/g726.h>
#include <gsm.h>
#include <opus/opus.h>
#include <bcg729/decoder.h>
#include <bcg729/encoder.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Built says which decoders this build has beyond G.711 and CN.
const Built = true

// g722 is spandsp's G.722 decoder at 64 kbit/s. At 8 kHz it outputs the
// low sub-band only (spandsp's G722_SAMPLE_RATE_8000).
type g722 struct {
	s    *C.g722_decode_state_t
	rate int
	prev int16 // last sample, faded over a lost packet
}

func newG722(rate int) (Decoder, error) {
	opts := C.int(0)
	switch rate {
	case 16000:
	case 8000:
		opts = C.G722_SAMPLE_RATE_8000
	default:
		return nil, fmt.Errorf("%w: G722 at %d Hz", ErrRate, rate)
	}
	s := C.g722_decode_init(nil, 64000, opts)
	if s == nil {
		return nil, fmt.Errorf("%w: g722_decode_init failed", ErrUnsupported)
	}
	return &g722{s: s, rate: rate}, nil
}

func (g *g722) Name() string { return G722 }
func (g *g722) Rate() int    { return g.rate }

func (g *g722) Decode(p []byte, out []int16) (int, error) {
	need := len(p)
	if g.rate == 16000 {
		need *= 2
	}
	if len(out) < need {
		return 0, ErrShort
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := int(C.g722_decode(g.s, (*C.int16_t)(unsafe.Pointer(&out[0])), (*C.uint8_t)(unsafe.Pointer(&p[0])), C.int(len(p))))
	if n > 0 {
		g.prev = out[n-1]
	}
	return n, nil
}

// Conceal fades the last sample out (G.722 has no concealment of its own
// in spandsp).
func (g *g722) Conceal(out []int16, n int) int { return fade(out, n, &g.prev) }

func (g *g722) Close() {
	if g.s != nil {
		C.g722_decode_free(g.s)
		g.s = nil
	}
}

// g726 is spandsp's G.726 decoder at 32 kbit/s: 4-bit codewords, two per
// byte, packed as RFC 3551 says (first codeword in the low nibble, SDP
// name G726-32) or as ITU-T I.366.2 AAL2 does (first in the high nibble,
// AAL2-G726-32).
type g726 struct {
	s    *C.g726_state_t
	name string
	prev int16
}

func newG726(name string) (Decoder, error) {
	packing := C.int(C.G726_PACKING_RIGHT)
	if name == G726AAL2 {
		packing = C.G726_PACKING_LEFT
	}
	s := C.g726_init(nil, 32000, C.G726_ENCODING_LINEAR, packing)
	if s == nil {
		return nil, fmt.Errorf("%w: g726_init failed", ErrUnsupported)
	}
	return &g726{s: s, name: name}, nil
}

func (g *g726) Name() string { return g.name }
func (g *g726) Rate() int    { return 8000 }

func (g *g726) Decode(p []byte, out []int16) (int, error) {
	if len(out) < 2*len(p) {
		return 0, ErrShort
	}
	if len(p) == 0 {
		return 0, fmt.Errorf("%w: empty G.726 payload", ErrPayload)
	}
	n := int(C.g726_decode(g.s, (*C.int16_t)(unsafe.Pointer(&out[0])), (*C.uint8_t)(unsafe.Pointer(&p[0])), C.int(len(p))))
	if n > 0 {
		g.prev = out[n-1]
	}
	return n, nil
}

// Conceal fades the last sample out (spandsp's G.726 has no concealment).
func (g *g726) Conceal(out []int16, n int) int { return fade(out, n, &g.prev) }

func (g *g726) Close() {
	if g.s != nil {
		C.g726_free(g.s)
		g.s = nil
	}
}

// gsm is libgsm's GSM 06.10 full-rate decoder: 33-byte frames of 160
// samples, several per payload allowed.
type gsm struct {
	g    C.gsm
	prev int16
}

const gsmFrame = 33

func newGSM() (Decoder, error) {
	g := C.gsm_create()
	if g == nil {
		return nil, fmt.Errorf("%w: gsm_create failed", ErrUnsupported)
	}
	return &gsm{g: g}, nil
}

func (g *gsm) Name() string { return GSM }
func (g *gsm) Rate() int    { return 8000 }

func (g *gsm) Decode(p []byte, out []int16) (int, error) {
	if len(p)%gsmFrame != 0 {
		return 0, fmt.Errorf("%w: GSM payload of %d bytes", ErrPayload, len(p))
	}
	frames := len(p) / gsmFrame
	if len(out) < frames*160 {
		return 0, ErrShort
	}
	for i := 0; i < frames; i++ {
		if C.gsm_decode(g.g, (*C.gsm_byte)(unsafe.Pointer(&p[i*gsmFrame])), (*C.gsm_signal)(unsafe.Pointer(&out[i*160]))) < 0 {
			return i * 160, fmt.Errorf("%w: GSM frame %d", ErrPayload, i)
		}
	}
	if frames > 0 {
		g.prev = out[frames*160-1]
	}
	return frames * 160, nil
}

func (g *gsm) Conceal(out []int16, n int) int { return fade(out, n, &g.prev) }

func (g *gsm) Close() {
	if g.g != nil {
		C.gsm_destroy(g.g)
		g.g = nil
	}
}

// g729 is bcg729's G.729/A decoder with Annex B: 10-byte frames of 80
// samples, a 2-byte SID frame last; its own concealment on erasure.
type g729 struct {
	c *C.bcg729DecoderChannelContextStruct
}

func newG729() (Decoder, error) {
	c := C.initBcg729DecoderChannel()
	if c == nil {
		return nil, fmt.Errorf("%w: initBcg729DecoderChannel failed", ErrUnsupported)
	}
	return &g729{c: c}, nil
}

func (g *g729) Name() string { return G729 }
func (g *g729) Rate() int    { return 8000 }

func (g *g729) Decode(p []byte, out []int16) (int, error) {
	full, rest := len(p)/10, len(p)%10
	if rest != 0 && rest != 2 {
		return 0, fmt.Errorf("%w: G729 payload of %d bytes", ErrPayload, len(p))
	}
	frames := full
	if rest == 2 {
		frames++
	}
	if len(out) < frames*80 {
		return 0, ErrShort
	}
	for i := 0; i < full; i++ {
		C.bcg729Decoder(g.c, (*C.uint8_t)(unsafe.Pointer(&p[i*10])), 10, 0, 0, 0, (*C.int16_t)(unsafe.Pointer(&out[i*80])))
	}
	if rest == 2 {
		C.bcg729Decoder(g.c, (*C.uint8_t)(unsafe.Pointer(&p[full*10])), 2, 0, 1, 0, (*C.int16_t)(unsafe.Pointer(&out[full*80])))
	}
	return frames * 80, nil
}

// Conceal runs bcg729's frame erasure concealment per 10 ms frame.
func (g *g729) Conceal(out []int16, n int) int {
	n = min(n, len(out)) / 80 * 80
	for i := 0; i < n; i += 80 {
		C.bcg729Decoder(g.c, nil, 0, 1, 0, 0, (*C.int16_t)(unsafe.Pointer(&out[i])))
	}
	return n
}

func (g *g729) Close() {
	if g.c != nil {
		C.closeBcg729DecoderChannel(g.c)
		g.c = nil
	}
}

// opusDec is libopus's decoder (mono output, stereo streams downmixed):
// its own concealment for lost packets.
type opusDec struct {
	d    *C.OpusDecoder
	rate int
}

func newOpus(rate int) (Decoder, error) {
	switch rate {
	case 8000, 12000, 16000, 24000, 48000:
	default:
		return nil, fmt.Errorf("%w: opus at %d Hz", ErrRate, rate)
	}
	var e C.int
	d := C.opus_decoder_create(C.opus_int32(rate), 1, &e)
	if d == nil || e != C.OPUS_OK {
		return nil, fmt.Errorf("%w: opus_decoder_create: %d", ErrUnsupported, int(e))
	}
	return &opusDec{d: d, rate: rate}, nil
}

func (o *opusDec) Name() string { return Opus }
func (o *opusDec) Rate() int    { return o.rate }

func (o *opusDec) Decode(p []byte, out []int16) (int, error) {
	if len(p) == 0 || len(out) == 0 {
		return 0, fmt.Errorf("%w: empty opus payload", ErrPayload)
	}
	n := C.opus_decode(o.d, (*C.uchar)(unsafe.Pointer(&p[0])), C.opus_int32(len(p)), (*C.opus_int16)(unsafe.Pointer(&out[0])), C.int(len(out)), 0)
	if n < 0 {
		return 0, fmt.Errorf("%w: opus_decode: %d", ErrPayload, int(n))
	}
	return int(n), nil
}

// Conceal asks libopus for n samples of concealment (n rounded down to a
// multiple of 2.5 ms, as libopus requires).
func (o *opusDec) Conceal(out []int16, n int) int {
	step := o.rate / 400
	n = min(n, len(out)) / step * step
	if n == 0 {
		return 0
	}
	r := C.opus_decode(o.d, nil, 0, (*C.opus_int16)(unsafe.Pointer(&out[0])), C.int(n), 0)
	if r < 0 {
		clear(out[:n])
		return n
	}
	return int(r)
}

// DecodeFEC recovers the packet before p from p's in-band FEC (n samples,
// the lost packet's duration), when the sender put FEC in.
func (o *opusDec) DecodeFEC(p []byte, out []int16, n int) (int, error) {
	if len(p) == 0 || n <= 0 || n > len(out) {
		return 0, fmt.Errorf("%w: opus FEC", ErrPayload)
	}
	r := C.opus_decode(o.d, (*C.uchar)(unsafe.Pointer(&p[0])), C.opus_int32(len(p)), (*C.opus_int16)(unsafe.Pointer(&out[0])), C.int(n), 1)
	if r < 0 {
		return 0, fmt.Errorf("%w: opus_decode fec: %d", ErrPayload, int(r))
	}
	return int(r), nil
}

func (o *opusDec) Close() {
	if o.d != nil {
		C.opus_decoder_destroy(o.d)
		o.d = nil
	}
}
