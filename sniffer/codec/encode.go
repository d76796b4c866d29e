//go:build cgo && !nocodecs

package codec

/*
#include <stdint.h>
#include <spandsp/telephony.h>
#include <spandsp/g722.h>
#include <gsm.h>
#include <opus/opus.h>
#include <bcg729/encoder.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Encoder turns 20 ms of PCM into one RTP payload, with the same libraries
// as the decoders: the generator writes calls in every codec with it, so
// the decoders are tested without captures.
type Encoder struct {
	name string
	rate int
	g722 *C.g722_encode_state_t
	gsm  C.gsm
	g729 *C.bcg729EncoderChannelContextStruct
	opus *C.OpusEncoder
}

// NewEncoder returns an encoder for name taking PCM at the codec's native
// rate (NativeRate): 320 samples per 20 ms for G.722, 960 for Opus, 160
// for GSM and G.729.
func NewEncoder(name string) (*Encoder, error) {
	e := &Encoder{name: Canonical(name), rate: NativeRate(name)}
	switch e.name {
	case G722:
		e.g722 = C.g722_encode_init(nil, 64000, 0)
	case GSM:
		e.gsm = C.gsm_create()
	case G729:
		e.g729 = C.initBcg729EncoderChannel(0)
	case Opus:
		var rc C.int
		e.opus = C.opus_encoder_create(48000, 1, C.OPUS_APPLICATION_VOIP, &rc)
		if rc != C.OPUS_OK {
			return nil, fmt.Errorf("%w: opus_encoder_create: %d", ErrUnsupported, int(rc))
		}
	default:
		return nil, fmt.Errorf("%w: encoder %s", ErrUnsupported, e.name)
	}
	return e, nil
}

// FrameSamples is how many PCM samples Encode takes per 20 ms payload.
func (e *Encoder) FrameSamples() int { return e.rate / 50 }

// Encode encodes exactly FrameSamples samples into out (at least 1500
// bytes is always enough) and returns the payload length.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if len(pcm) != e.FrameSamples() || len(out) < 400 {
		return 0, ErrShort
	}
	src := (*C.int16_t)(unsafe.Pointer(&pcm[0]))
	dst := (*C.uint8_t)(unsafe.Pointer(&out[0]))
	switch e.name {
	case G722:
		return int(C.g722_encode(e.g722, dst, src, C.int(len(pcm)))), nil
	case GSM:
		C.gsm_encode(e.gsm, (*C.gsm_signal)(unsafe.Pointer(src)), (*C.gsm_byte)(unsafe.Pointer(dst)))
		return gsmFrame, nil
	case G729:
		var n1, n2 C.uint8_t
		C.bcg729Encoder(e.g729, src, dst, &n1)
		C.bcg729Encoder(e.g729, (*C.int16_t)(unsafe.Pointer(&pcm[80])), (*C.uint8_t)(unsafe.Pointer(&out[n1])), &n2)
		return int(n1) + int(n2), nil
	default:
		n := C.opus_encode(e.opus, (*C.opus_int16)(unsafe.Pointer(src)), C.int(len(pcm)), (*C.uchar)(unsafe.Pointer(dst)), C.opus_int32(len(out)))
		if n < 0 {
			return 0, fmt.Errorf("%w: opus_encode: %d", ErrPayload, int(n))
		}
		return int(n), nil
	}
}

// Close frees the encoder's state.
func (e *Encoder) Close() {
	switch {
	case e.g722 != nil:
		C.g722_encode_free(e.g722)
	case e.gsm != nil:
		C.gsm_destroy(e.gsm)
	case e.g729 != nil:
		C.closeBcg729EncoderChannel(e.g729)
	case e.opus != nil:
		C.opus_encoder_destroy(e.opus)
	}
	*e = Encoder{}
}
