//go:build cgo && !nocodecs

package codec

/*
#include <stdint.h>
#include <spandsp/telephony.h>
#include <spandsp/g722.h>
#include <spandsp/g726.h>
#include <gsm.h>
#include <opus/opus.h>
#include <bcg729/encoder.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Encoder turns one packet time of PCM into one RTP payload, with the same
// libraries as the decoders: the generator writes calls in every codec
// with it, so the decoders are tested without captures. iLBC has no
// encoder here (Debian has no iLBC library; libavcodec only decodes it).
type Encoder struct {
	name  string
	rate  int
	g722  *C.g722_encode_state_t
	g726  *C.g726_state_t
	gsm   C.gsm
	g729  *C.bcg729EncoderChannelContextStruct
	opus  *C.OpusEncoder
	speex *speexEnc
	av    *avEnc
}

// NewEncoder returns an encoder for name taking PCM at the codec's native
// rate (NativeRate), FrameSamples at a time: 20 ms (320 samples for G.722
// and wideband Speex, 960 for Opus, 160 for the others) but 30 ms for
// G.723.1 (240).
func NewEncoder(name string) (*Encoder, error) {
	e := &Encoder{name: Canonical(name), rate: NativeRate(name)}
	var err error
	switch e.name {
	case G722:
		e.g722 = C.g722_encode_init(nil, 64000, 0)
	case G726, G726AAL2:
		packing := C.int(C.G726_PACKING_RIGHT)
		if e.name == G726AAL2 {
			packing = C.G726_PACKING_LEFT
		}
		e.g726 = C.g726_init(nil, 32000, C.G726_ENCODING_LINEAR, packing)
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
	case Speex, SpeexWB:
		e.speex, err = newSpeexEnc(e.rate)
	case G723:
		e.av, err = newAVEnc(e.name)
	default:
		return nil, fmt.Errorf("%w: encoder %s", ErrUnsupported, e.name)
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// FrameSamples is how many PCM samples Encode takes per payload.
func (e *Encoder) FrameSamples() int {
	if e.av != nil {
		return e.av.frameSamples()
	}
	return e.rate / 50
}

// Encode encodes exactly FrameSamples samples into out (at least 1500
// bytes is always enough) and returns the payload length.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if len(pcm) != e.FrameSamples() || len(out) < 400 {
		return 0, ErrShort
	}
	src := (*C.int16_t)(unsafe.Pointer(&pcm[0]))
	dst := (*C.uint8_t)(unsafe.Pointer(&out[0]))
	switch {
	case e.g722 != nil:
		return int(C.g722_encode(e.g722, dst, src, C.int(len(pcm)))), nil
	case e.g726 != nil:
		return int(C.g726_encode(e.g726, dst, src, C.int(len(pcm)))), nil
	case e.gsm != nil:
		C.gsm_encode(e.gsm, (*C.gsm_signal)(unsafe.Pointer(src)), (*C.gsm_byte)(unsafe.Pointer(dst)))
		return gsmFrame, nil
	case e.g729 != nil:
		var n1, n2 C.uint8_t
		C.bcg729Encoder(e.g729, src, dst, &n1)
		C.bcg729Encoder(e.g729, (*C.int16_t)(unsafe.Pointer(&pcm[80])), (*C.uint8_t)(unsafe.Pointer(&out[n1])), &n2)
		return int(n1) + int(n2), nil
	case e.speex != nil:
		return e.speex.encode(pcm, out)
	case e.av != nil:
		return e.av.encode(pcm, out)
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
	case e.g726 != nil:
		C.g726_free(e.g726)
	case e.gsm != nil:
		C.gsm_destroy(e.gsm)
	case e.g729 != nil:
		C.closeBcg729EncoderChannel(e.g729)
	case e.opus != nil:
		C.opus_encoder_destroy(e.opus)
	case e.speex != nil:
		e.speex.close()
	case e.av != nil:
		e.av.close()
	}
	*e = Encoder{}
}
