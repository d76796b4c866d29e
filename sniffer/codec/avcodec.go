//go:build cgo && !nocodecs && !noavcodec

package codec

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>

// libavcodec is opened the first time an iLBC or G.723.1 coder is made
// (dlopen), not linked: it needs some ninety other libraries (X11, cairo,
// ICU, video codecs), whose loading doubled the start-up time of every
// pbx-agent command and mapped them into the daemon whether or not a call
// ever used the two codecs. The headers fix the sonames and the structures'
// layout at build time.
#define PBX_AVCODEC(X) X(avcodec_find_decoder) X(avcodec_find_encoder) X(avcodec_alloc_context3) \
	X(avcodec_open2) X(avcodec_free_context) X(avcodec_send_packet) X(avcodec_receive_frame) \
	X(avcodec_send_frame) X(avcodec_receive_packet) X(av_packet_alloc) X(av_packet_free) X(av_packet_unref)
#define PBX_AVUTIL(X) X(av_log_set_level) X(av_frame_alloc) X(av_frame_free) X(av_frame_unref) \
	X(av_frame_get_buffer) X(av_channel_layout_default) X(av_channel_layout_copy)
#define PBX_FN(f) __typeof__(&f) f;
static struct { PBX_AVCODEC(PBX_FN) PBX_AVUTIL(PBX_FN) } av;

// pbx_av_load opens the libraries and finds their functions: NULL, or
// what went wrong.
static const char *pbx_av_load(void) {
	void *lib;
#define PBX_SYM(f) if ((av.f = (__typeof__(av.f))dlsym(lib, #f)) == NULL) return dlerror();
	if ((lib = dlopen("libavutil.so." AV_STRINGIFY(LIBAVUTIL_VERSION_MAJOR), RTLD_NOW | RTLD_LOCAL)) == NULL) return dlerror();
	PBX_AVUTIL(PBX_SYM)
	if ((lib = dlopen("libavcodec.so." AV_STRINGIFY(LIBAVCODEC_VERSION_MAJOR), RTLD_NOW | RTLD_LOCAL)) == NULL) return dlerror();
	PBX_AVCODEC(PBX_SYM)
#undef PBX_SYM
	return NULL;
}

// pbx_av is one libavcodec decoder or encoder (8 kHz mono, 16-bit) with
// its reused packet and frame.
typedef struct {
	AVCodecContext *ctx;
	AVPacket *pkt;
	AVFrame *frm;
} pbx_av;

static void pbx_av_free(pbx_av *a) {
	av.av_packet_free(&a->pkt);
	av.av_frame_free(&a->frm);
	av.avcodec_free_context(&a->ctx);
	free(a);
}

static pbx_av *pbx_av_new(int id, int enc, int block_align, int bit_rate) {
	const AVCodec *c = enc ? av.avcodec_find_encoder(id) : av.avcodec_find_decoder(id);
	pbx_av *a;
	if (c == NULL) return NULL;
	av.av_log_set_level(AV_LOG_QUIET);
	a = calloc(1, sizeof *a);
	if (a == NULL) return NULL;
	a->ctx = av.avcodec_alloc_context3(c);
	a->pkt = av.av_packet_alloc();
	a->frm = av.av_frame_alloc();
	if (a->ctx == NULL || a->pkt == NULL || a->frm == NULL) { pbx_av_free(a); return NULL; }
	a->ctx->sample_rate = 8000;
	av.av_channel_layout_default(&a->ctx->ch_layout, 1);
	a->ctx->block_align = block_align;
	if (enc) {
		a->ctx->sample_fmt = AV_SAMPLE_FMT_S16;
		a->ctx->bit_rate = bit_rate;
	}
	if (av.avcodec_open2(a->ctx, c, NULL) < 0) { pbx_av_free(a); return NULL; }
	return a;
}

// pbx_av_decode decodes one payload (every frame in it) into out, at most
// max samples; a negative AVERROR when the decoder refused it.
static int pbx_av_decode(pbx_av *a, const uint8_t *p, int n, int16_t *out, int max) {
	int total = 0, r;
	a->pkt->data = (uint8_t *)p;
	a->pkt->size = n;
	r = av.avcodec_send_packet(a->ctx, a->pkt);
	a->pkt->data = NULL;
	a->pkt->size = 0;
	if (r < 0) return r;
	for (;;) {
		int ns;
		r = av.avcodec_receive_frame(a->ctx, a->frm);
		if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) break;
		if (r < 0) return total > 0 ? total : r;
		ns = a->frm->nb_samples;
		if (ns > max - total) ns = max - total;
		// Mono: planar and packed formats lay the samples out alike.
		if (a->frm->format == AV_SAMPLE_FMT_S16 || a->frm->format == AV_SAMPLE_FMT_S16P) {
			memcpy(out + total, a->frm->data[0], (size_t)ns * 2);
		} else if (a->frm->format == AV_SAMPLE_FMT_FLT || a->frm->format == AV_SAMPLE_FMT_FLTP) {
			const float *f = (const float *)a->frm->data[0];
			for (int i = 0; i < ns; i++) {
				float v = f[i] * 32768.0f;
				out[total + i] = v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : (int16_t)v;
			}
		} else {
			ns = 0;
		}
		total += ns;
		av.av_frame_unref(a->frm);
	}
	return total;
}

// pbx_av_encode encodes one frame of n samples into out; the packet's
// length, 0 when the encoder holds it back, or a negative AVERROR.
static int pbx_av_encode(pbx_av *a, const int16_t *in, int n, uint8_t *out, int max) {
	int r, len;
	a->frm->nb_samples = n;
	a->frm->format = AV_SAMPLE_FMT_S16;
	a->frm->sample_rate = 8000;
	if ((r = av.av_channel_layout_copy(&a->frm->ch_layout, &a->ctx->ch_layout)) < 0) return r;
	if ((r = av.av_frame_get_buffer(a->frm, 0)) < 0) return r;
	memcpy(a->frm->data[0], in, (size_t)n * 2);
	r = av.avcodec_send_frame(a->ctx, a->frm);
	av.av_frame_unref(a->frm);
	if (r < 0) return r;
	r = av.avcodec_receive_packet(a->ctx, a->pkt);
	if (r == AVERROR(EAGAIN)) return 0;
	if (r < 0) return r;
	len = a->pkt->size < max ? a->pkt->size : max;
	memcpy(out, a->pkt->data, (size_t)len);
	av.av_packet_unref(a->pkt);
	return len;
}

static int pbx_av_frame_size(pbx_av *a) { return a->ctx->frame_size; }
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// avLoad opens libavcodec once, the first time a coder needs it; without
// it (not installed, another soname) iLBC and G.723.1 are unsupported, as
// in a build without it.
var avLoad = sync.OnceValue(func() error {
	if msg := C.pbx_av_load(); msg != nil {
		return fmt.Errorf("%w: libavcodec: %s", ErrUnsupported, C.GoString(msg))
	}
	return nil
})

// avDec decodes iLBC (RFC 3951: 38-byte 20 ms or 50-byte 30 ms frames) and
// G.723.1 (24/20-byte 30 ms frames, 4-byte SID) with libavcodec's native
// decoders, the only maintained decoders for the two that Debian ships.
// iLBC's frame mode follows the payload's length (a multiple of 50 bytes is
// 30 ms mode, else of 38 bytes 20 ms), each mode with its own decoder
// state, made the first time the mode is seen.
type avDec struct {
	name  string
	id    C.int
	modes [2]*C.pbx_av // iLBC: 20 ms, 30 ms; G.723.1: [0] only
	prev  int16
}

func newAV(name string, rate int) (Decoder, error) {
	if rate != 8000 {
		return nil, fmt.Errorf("%w: %s at %d Hz", ErrRate, name, rate)
	}
	if err := avLoad(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d := &avDec{name: name}
	switch name {
	case ILBC:
		d.id = C.AV_CODEC_ID_ILBC
		// Open the 30 ms decoder now so that a build whose libavcodec lacks
		// iLBC fails here, not on the first packet.
		if d.modes[1] = C.pbx_av_new(d.id, 0, 50, 0); d.modes[1] == nil {
			return nil, fmt.Errorf("%w: libavcodec has no iLBC decoder", ErrUnsupported)
		}
	case G723:
		d.id = C.AV_CODEC_ID_G723_1
		if d.modes[0] = C.pbx_av_new(d.id, 0, 0, 0); d.modes[0] == nil {
			return nil, fmt.Errorf("%w: libavcodec has no G.723.1 decoder", ErrUnsupported)
		}
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, name)
	}
	return d, nil
}

func (d *avDec) Name() string { return d.name }
func (d *avDec) Rate() int    { return 8000 }

// mode returns the decoder for payload p and its frame length (0 for
// G.723.1, whose frames say their own), or an error for a length that is
// no whole number of frames.
func (d *avDec) mode(p []byte) (*C.pbx_av, int, error) {
	if d.id == C.AV_CODEC_ID_G723_1 {
		return d.modes[0], 0, nil
	}
	m, align := 1, 50
	switch {
	case len(p) > 0 && len(p)%50 == 0:
	case len(p) > 0 && len(p)%38 == 0:
		m, align = 0, 38
	default:
		return nil, 0, fmt.Errorf("%w: iLBC payload of %d bytes", ErrPayload, len(p))
	}
	if d.modes[m] == nil {
		if d.modes[m] = C.pbx_av_new(d.id, 0, C.int(align), 0); d.modes[m] == nil {
			return nil, 0, fmt.Errorf("%w: iLBC %d-byte mode", ErrUnsupported, align)
		}
	}
	return d.modes[m], align, nil
}

// g7231Frame is the length of the G.723.1 frame starting with byte b: its
// two low bits say 6.3 kbit/s (24 bytes), 5.3 kbit/s (20), SID (4) or
// untransmitted (1).
func g7231Frame(b byte) int { return [4]int{24, 20, 4, 1}[b&3] }

// Decode hands libavcodec one frame at a time and stops when out is full,
// so a payload of many tiny frames (1,500 untransmitted G.723.1 frames)
// costs no more than out holds.
func (d *avDec) Decode(p []byte, out []int16) (int, error) {
	if len(p) == 0 {
		return 0, fmt.Errorf("%w: empty %s payload", ErrPayload, d.name)
	}
	a, size, err := d.mode(p)
	if err != nil {
		return 0, err
	}
	if len(out) < 240 {
		return 0, ErrShort
	}
	total := 0
	for len(p) > 0 && total+240 <= len(out) {
		n := size
		if n == 0 {
			n = g7231Frame(p[0])
		}
		if n > len(p) {
			if total == 0 {
				return 0, fmt.Errorf("%w: %s frame of %d bytes in %d", ErrPayload, d.name, n, len(p))
			}
			break
		}
		k := C.pbx_av_decode(a, (*C.uint8_t)(unsafe.Pointer(&p[0])), C.int(n), (*C.int16_t)(unsafe.Pointer(&out[total])), C.int(len(out)-total))
		if k < 0 {
			if total == 0 {
				return 0, fmt.Errorf("%w: %s payload refused (%d)", ErrPayload, d.name, int(k))
			}
			break
		}
		total += int(k)
		p = p[n:]
	}
	if total > 0 {
		d.prev = out[total-1]
	}
	return total, nil
}

// Conceal fades the last sample out: libavcodec exposes no concealment
// for either codec.
func (d *avDec) Conceal(out []int16, n int) int { return fade(out, n, &d.prev) }

func (d *avDec) Close() {
	for i, a := range d.modes {
		if a != nil {
			C.pbx_av_free(a)
			d.modes[i] = nil
		}
	}
}

// avEnc is libavcodec's G.723.1 encoder at 6.3 kbit/s (24-byte frames of
// 240 samples); libavcodec has no iLBC encoder of its own.
type avEnc struct{ a *C.pbx_av }

func newAVEnc(name string) (*avEnc, error) {
	if name != G723 {
		return nil, fmt.Errorf("%w: encoder %s", ErrUnsupported, name)
	}
	if err := avLoad(); err != nil {
		return nil, fmt.Errorf("encoder %s: %w", name, err)
	}
	a := C.pbx_av_new(C.AV_CODEC_ID_G723_1, 1, 0, 6300)
	if a == nil {
		return nil, fmt.Errorf("%w: libavcodec has no G.723.1 encoder", ErrUnsupported)
	}
	return &avEnc{a: a}, nil
}

func (e *avEnc) frameSamples() int { return int(C.pbx_av_frame_size(e.a)) }

func (e *avEnc) encode(pcm []int16, out []byte) (int, error) {
	n := C.pbx_av_encode(e.a, (*C.int16_t)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)), (*C.uint8_t)(unsafe.Pointer(&out[0])), C.int(len(out)))
	if n < 0 {
		return 0, fmt.Errorf("%w: G.723.1 encode (%d)", ErrPayload, int(n))
	}
	return int(n), nil
}

func (e *avEnc) close() { C.pbx_av_free(e.a) }

// builtAV: this build decodes iLBC and G.723.1 with libavcodec.
const builtAV = true
