//go:build cgo && !nocodecs

package fax

/*
#cgo LDFLAGS: -lspandsp -ltiff -lm
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <spandsp.h>

typedef struct {
	int code;   // phase E completion code, -1 while running
	int pages;  // pages received so far
} fax_outcome_t;

static void fax_phase_e(t30_state_t *s, void *user, int code) {
	((fax_outcome_t *) user)->code = code;
}

static int fax_t38_discard(t38_core_state_t *s, void *user, const uint8_t *buf, int len, int count) {
	return 0;
}

// fax_setup makes t30 a receiver that accepts whatever the sender offers.
static void fax_setup(t30_state_t *t30, const char *file, fax_outcome_t *out) {
	out->code = -1;
	t30_set_rx_file(t30, file, -1);
	t30_set_ecm_capability(t30, 1);
	t30_set_supported_compressions(t30, T30_SUPPORT_T4_1D_COMPRESSION | T30_SUPPORT_T4_2D_COMPRESSION | T30_SUPPORT_T6_COMPRESSION);
	t30_set_phase_e_handler(t30, fax_phase_e, out);
}

static t38_terminal_state_t *fax_t38_new(const char *file, fax_outcome_t *out) {
	t38_terminal_state_t *t = t38_terminal_init(NULL, 0, fax_t38_discard, NULL);
	if (t == NULL)
		return NULL;
	span_log_set_level(t38_terminal_get_logging_state(t), 0);
	span_log_set_level(t30_get_logging_state(t38_terminal_get_t30_state(t)), 0);
	fax_setup(t38_terminal_get_t30_state(t), file, out);
	return t;
}

static fax_state_t *fax_audio_new(const char *file, fax_outcome_t *out) {
	fax_state_t *f = fax_init(NULL, 0);
	if (f == NULL)
		return NULL;
	span_log_set_level(fax_get_logging_state(f), 0);
	span_log_set_level(t30_get_logging_state(fax_get_t30_state(f)), 0);
	fax_setup(fax_get_t30_state(f), file, out);
	return f;
}

// fax_audio_rx feeds n samples and lets the receiver's own transmitter run
// for as long (its output is discarded; T.30 needs it to move on).
static void fax_audio_rx(fax_state_t *f, int16_t *amp, int n, int16_t *scratch) {
	fax_rx(f, amp, n);
	fax_tx(f, scratch, n);
}

static void fax_stats(t30_state_t *t30, fax_outcome_t *out, char *ident, int identlen) {
	t30_stats_t st;
	t30_get_transfer_statistics(t30, &st);
	out->pages = st.pages_rx;
	const char *id = t30_get_rx_ident(t30);
	ident[0] = 0;
	if (id != NULL) {
		strncpy(ident, id, identlen - 1);
		ident[identlen - 1] = 0;
	}
}

*/
import "C"

import (
	"strings"
	"unsafe"
)

// Built says whether this build decodes faxes.
const Built = true

// terminal is what the T.38 and audio receivers share: where the pages go
// and how the call ended.
type terminal struct {
	out   *C.fax_outcome_t
	file  *C.char
	ident [32]C.char
}

func newTerminal(file string) terminal {
	quietTIFF()
	return terminal{out: (*C.fax_outcome_t)(C.calloc(1, C.sizeof_fax_outcome_t)), file: C.CString(file)}
}

func (t *terminal) result(t30 *C.t30_state_t) Result {
	C.fax_stats(t30, t.out, &t.ident[0], C.int(len(t.ident)))
	r := Result{Pages: int(t.out.pages), Code: int(t.out.code)}
	if r.Code >= 0 {
		r.Status = C.GoString(C.t30_completion_code_to_str(t.out.code))
	}
	r.RemoteID = strings.TrimSpace(C.GoString(&t.ident[0]))
	return r
}

func (t *terminal) free() {
	C.free(unsafe.Pointer(t.out))
	C.free(unsafe.Pointer(t.file))
}

// T38Receiver is a T.38 terminal in receive mode fed the IFPs of the
// sending side; it writes the pages it receives to a TIFF-F file.
type T38Receiver struct {
	terminal
	s    *C.t38_terminal_state_t
	core *C.t38_core_state_t
	res  Result // set by Close
}

// NewT38Receiver writes the pages to file (a TIFF-F, created when the
// first page starts).
func NewT38Receiver(file string) (*T38Receiver, error) {
	r := &T38Receiver{terminal: newTerminal(file)}
	r.s = C.fax_t38_new(r.file, r.out)
	if r.s == nil {
		r.free()
		return nil, ErrUnsupported
	}
	r.core = C.t38_terminal_get_t38_core_state(r.s)
	return r, nil
}

// Advance moves the terminal's clock on by samples (8000 per second).
func (r *T38Receiver) Advance(samples int) {
	for samples > 0 {
		n := min(samples, 160)
		C.t38_terminal_send_timeout(r.s, C.int(n))
		samples -= n
	}
}

// IFP feeds one IFP (any bytes: spandsp checks them).
func (r *T38Receiver) IFP(seq uint16, ifp []byte) {
	var p *C.uint8_t
	var buf [1]byte
	if len(ifp) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&ifp[0]))
	} else {
		p = (*C.uint8_t)(unsafe.Pointer(&buf[0]))
	}
	C.t38_core_rx_ifp_packet(r.core, p, C.int(len(ifp)), C.uint16_t(seq))
}

// Result says how many pages were received and how the session ended.
func (r *T38Receiver) Result() Result {
	if r.s == nil {
		return r.res
	}
	res := r.result(C.t38_terminal_get_t30_state(r.s))
	res.Mode = ModeT38
	return res
}

// Close ends the session (flushing a page in progress) and frees it.
func (r *T38Receiver) Close() {
	if r.s == nil {
		return
	}
	C.t30_terminate(C.t38_terminal_get_t30_state(r.s))
	r.res = r.Result()
	C.t38_terminal_free(r.s)
	r.s = nil
	r.free()
}

// AudioReceiver is a T.30 fax modem in receive mode fed the 8 kHz linear
// audio of the sending side.
type AudioReceiver struct {
	terminal
	s       *C.fax_state_t
	scratch *C.int16_t
	buf     *C.int16_t
	res     Result // set by Close
}

const audioChunk = 160

// NewAudioReceiver writes the pages to file.
func NewAudioReceiver(file string) (*AudioReceiver, error) {
	r := &AudioReceiver{terminal: newTerminal(file)}
	r.s = C.fax_audio_new(r.file, r.out)
	if r.s == nil {
		r.free()
		return nil, ErrUnsupported
	}
	r.scratch = (*C.int16_t)(C.calloc(audioChunk, 2))
	r.buf = (*C.int16_t)(C.calloc(audioChunk, 2))
	return r, nil
}

// Audio feeds 8 kHz samples.
func (r *AudioReceiver) Audio(pcm []int16) {
	in := unsafe.Slice((*int16)(unsafe.Pointer(r.buf)), audioChunk)
	for len(pcm) > 0 {
		n := copy(in, pcm)
		C.fax_audio_rx(r.s, r.buf, C.int(n), r.scratch)
		pcm = pcm[n:]
	}
}

// Result says how many pages were received and how the session ended.
func (r *AudioReceiver) Result() Result {
	if r.s == nil {
		return r.res
	}
	res := r.result(C.fax_get_t30_state(r.s))
	res.Mode = ModeG711
	return res
}

// Close ends the session and frees it.
func (r *AudioReceiver) Close() {
	if r.s == nil {
		return
	}
	C.t30_terminate(C.fax_get_t30_state(r.s))
	r.res = r.Result()
	C.fax_free(r.s)
	C.free(unsafe.Pointer(r.scratch))
	C.free(unsafe.Pointer(r.buf))
	r.s = nil
	r.free()
}
