//go:build cgo && !nocodecs

package codec

/*
#cgo LDFLAGS: -lspeex -lm
#include <stdint.h>
#include <stdlib.h>
#include <speex/speex.h>

// pbx_speex is one libspeex decoder or encoder with its bit buffer, kept
// in C memory so that the Go side passes no Go pointer to keep.
typedef struct {
	void *st;
	SpeexBits bits;
	int frame;
	int enc;
} pbx_speex;

static pbx_speex *pbx_speex_new(int modeid, int enc, int quality) {
	const SpeexMode *m = speex_lib_get_mode(modeid);
	pbx_speex *s;
	if (m == NULL) return NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL) return NULL;
	s->enc = enc;
	s->st = enc ? speex_encoder_init(m) : speex_decoder_init(m);
	if (s->st == NULL) { free(s); return NULL; }
	if (enc) {
		speex_encoder_ctl(s->st, SPEEX_SET_QUALITY, &quality);
		speex_encoder_ctl(s->st, SPEEX_GET_FRAME_SIZE, &s->frame);
	} else {
		speex_decoder_ctl(s->st, SPEEX_GET_FRAME_SIZE, &s->frame);
	}
	speex_bits_init(&s->bits);
	return s;
}

static void pbx_speex_free(pbx_speex *s) {
	if (s->enc) speex_encoder_destroy(s->st); else speex_decoder_destroy(s->st);
	speex_bits_destroy(&s->bits);
	free(s);
}

// pbx_speex_decode decodes every frame of one payload into out (at most
// max samples); -1 when the payload is corrupt before its first frame.
static int pbx_speex_decode(pbx_speex *s, const char *p, int n, int16_t *out, int max) {
	int total = 0;
	speex_bits_read_from(&s->bits, p, n);
	while (total + s->frame <= max && speex_bits_remaining(&s->bits) >= 5) {
		int r = speex_decode_int(s->st, &s->bits, out + total);
		if (r == -1) break;
		if (r < 0) return total > 0 ? total : -1;
		total += s->frame;
	}
	return total;
}

// pbx_speex_conceal runs the decoder's loss concealment for frames frames.
static void pbx_speex_conceal(pbx_speex *s, int16_t *out, int frames) {
	for (int i = 0; i < frames; i++) speex_decode_int(s->st, NULL, out + i * s->frame);
}

// pbx_speex_encode encodes one frame (libspeex may overwrite its input, so
// it works on a copy).
static int pbx_speex_encode(pbx_speex *s, const int16_t *in, char *out, int max) {
	spx_int16_t tmp[640];
	if (s->frame > 640) return -1;
	for (int i = 0; i < s->frame; i++) tmp[i] = in[i];
	speex_bits_reset(&s->bits);
	speex_encode_int(s->st, tmp, &s->bits);
	return speex_bits_write(&s->bits, out, max);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// speexDec is libspeex's decoder: narrowband (8 kHz, 160-sample frames) or
// wideband (16 kHz, 320). The narrowband decoder skips a wideband stream's
// upper layer, so a wideband call also decodes at 8 kHz; several frames
// per payload allowed; libspeex's own concealment for lost packets.
type speexDec struct {
	s    *C.pbx_speex
	name string
	rate int
}

func newSpeex(name string, rate int) (Decoder, error) {
	mode := C.int(C.SPEEX_MODEID_NB)
	switch rate {
	case 8000:
	case 16000:
		mode = C.SPEEX_MODEID_WB
	default:
		return nil, fmt.Errorf("%w: speex at %d Hz", ErrRate, rate)
	}
	s := C.pbx_speex_new(mode, 0, 0)
	if s == nil {
		return nil, fmt.Errorf("%w: speex_decoder_init failed", ErrUnsupported)
	}
	return &speexDec{s: s, name: name, rate: rate}, nil
}

func (d *speexDec) Name() string { return d.name }
func (d *speexDec) Rate() int    { return d.rate }

func (d *speexDec) Decode(p []byte, out []int16) (int, error) {
	if len(p) == 0 {
		return 0, fmt.Errorf("%w: empty speex payload", ErrPayload)
	}
	if len(out) < int(d.s.frame) {
		return 0, ErrShort
	}
	n := C.pbx_speex_decode(d.s, (*C.char)(unsafe.Pointer(&p[0])), C.int(len(p)), (*C.int16_t)(unsafe.Pointer(&out[0])), C.int(len(out)))
	if n < 0 {
		return 0, fmt.Errorf("%w: corrupt speex payload", ErrPayload)
	}
	return int(n), nil
}

// Conceal runs libspeex's concealment per frame (n rounded down to whole
// frames).
func (d *speexDec) Conceal(out []int16, n int) int {
	frames := min(n, len(out)) / int(d.s.frame)
	if frames == 0 {
		return 0
	}
	C.pbx_speex_conceal(d.s, (*C.int16_t)(unsafe.Pointer(&out[0])), C.int(frames))
	return frames * int(d.s.frame)
}

func (d *speexDec) Close() {
	if d.s != nil {
		C.pbx_speex_free(d.s)
		d.s = nil
	}
}

// speexEnc is libspeex's encoder at quality 8 (15 kbit/s narrowband,
// 23.8 kbit/s wideband), one frame per payload.
type speexEnc struct{ s *C.pbx_speex }

func newSpeexEnc(rate int) (*speexEnc, error) {
	mode := C.int(C.SPEEX_MODEID_NB)
	if rate == 16000 {
		mode = C.SPEEX_MODEID_WB
	}
	s := C.pbx_speex_new(mode, 1, 8)
	if s == nil {
		return nil, fmt.Errorf("%w: speex_encoder_init failed", ErrUnsupported)
	}
	return &speexEnc{s: s}, nil
}

func (e *speexEnc) encode(pcm []int16, out []byte) (int, error) {
	if len(pcm) != int(e.s.frame) {
		return 0, ErrShort
	}
	n := C.pbx_speex_encode(e.s, (*C.int16_t)(unsafe.Pointer(&pcm[0])), (*C.char)(unsafe.Pointer(&out[0])), C.int(len(out)))
	if n < 0 {
		return 0, fmt.Errorf("%w: speex frame of %d samples", ErrPayload, int(e.s.frame))
	}
	return int(n), nil
}

func (e *speexEnc) close() { C.pbx_speex_free(e.s) }
