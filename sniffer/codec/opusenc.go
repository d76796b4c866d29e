//go:build cgo && !nocodecs

package codec

/*
#include <opus/opus.h>

static int pbx_opus_set_bitrate(OpusEncoder *e, opus_int32 b) { return opus_encoder_ctl(e, OPUS_SET_BITRATE(b)); }
static int pbx_opus_lookahead(OpusEncoder *e, opus_int32 *n) { return opus_encoder_ctl(e, OPUS_GET_LOOKAHEAD(n)); }
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// OpusEncoder is libopus's encoder for recordings: mono or interleaved
// stereo PCM at 8, 12, 16, 24 or 48 kHz into Opus packets (RFC 6716), for
// Ogg/Opus files (RFC 7845).
type OpusEncoder struct {
	e        *C.OpusEncoder
	rate     int
	channels int
}

// NewOpusEncoder returns an encoder of channels (1 or 2) at rate and
// bitrate bits/s (0 = libopus's choice).
func NewOpusEncoder(rate, channels, bitrate int) (*OpusEncoder, error) {
	switch rate {
	case 8000, 12000, 16000, 24000, 48000:
	default:
		return nil, fmt.Errorf("%w: opus encoder at %d Hz", ErrRate, rate)
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("%w: opus encoder with %d channels", ErrUnsupported, channels)
	}
	var rc C.int
	// CELT only (restricted low delay): SILK and hybrid modes code stereo
	// jointly (mid/side), and two parties recorded on two channels leaked
	// into each other at only 35–45 dB; CELT keeps them 70 dB or more apart.
	e := C.opus_encoder_create(C.opus_int32(rate), C.int(channels), C.OPUS_APPLICATION_RESTRICTED_LOWDELAY, &rc)
	if e == nil || rc != C.OPUS_OK {
		return nil, fmt.Errorf("%w: opus_encoder_create: %d", ErrUnsupported, int(rc))
	}
	if bitrate > 0 {
		if rc := C.pbx_opus_set_bitrate(e, C.opus_int32(bitrate)); rc != C.OPUS_OK {
			C.opus_encoder_destroy(e)
			return nil, fmt.Errorf("%w: opus bitrate %d: %d", ErrRate, bitrate, int(rc))
		}
	}
	return &OpusEncoder{e: e, rate: rate, channels: channels}, nil
}

// Rate is the PCM rate Encode takes.
func (o *OpusEncoder) Rate() int { return o.rate }

// Channels is 1 or 2.
func (o *OpusEncoder) Channels() int { return o.channels }

// Lookahead is the encoder's delay in samples at Rate (RFC 7845's
// pre-skip, once converted to 48 kHz).
func (o *OpusEncoder) Lookahead() int {
	var n C.opus_int32
	if C.pbx_opus_lookahead(o.e, &n) != C.OPUS_OK {
		return 0
	}
	return int(n)
}

// Encode encodes one frame of interleaved PCM (2.5, 5, 10, 20, 40 or 60 ms:
// len(pcm)/Channels samples per channel) into out and returns the packet
// length.
func (o *OpusEncoder) Encode(pcm []int16, out []byte) (int, error) {
	n := len(pcm) / o.channels
	if n == 0 || len(out) == 0 {
		return 0, ErrShort
	}
	r := C.opus_encode(o.e, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(n), (*C.uchar)(unsafe.Pointer(&out[0])), C.opus_int32(len(out)))
	if r < 0 {
		return 0, fmt.Errorf("%w: opus_encode: %d", ErrPayload, int(r))
	}
	return int(r), nil
}

// Close frees the encoder.
func (o *OpusEncoder) Close() {
	if o.e != nil {
		C.opus_encoder_destroy(o.e)
		o.e = nil
	}
}
