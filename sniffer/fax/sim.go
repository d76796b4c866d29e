//go:build cgo && !nocodecs

package fax

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <spandsp.h>

#define FAX_QLEN 128
#define FAX_QMAX 1024

typedef struct {
	int n;
	int len[FAX_QLEN];
	uint8_t buf[FAX_QLEN][FAX_QMAX];
} fax_queue_t;

static int fax_t38_queue(t38_core_state_t *s, void *user, const uint8_t *buf, int len, int count) {
	fax_queue_t *q = (fax_queue_t *) user;
	if (q->n >= FAX_QLEN || len > FAX_QMAX || len < 0)
		return -1;
	memcpy(q->buf[q->n], buf, len);
	q->len[q->n++] = len;
	return 0;
}

typedef struct {
	int code;
} fax_sim_outcome_t;

static void fax_sim_phase_e(t30_state_t *s, void *user, int code) {
	((fax_sim_outcome_t *) user)->code = code;
}

static t38_terminal_state_t *fax_t38_sim(int calling, fax_queue_t *q, const char *tx, const char *rx, const char *ident, fax_sim_outcome_t *out) {
	t38_terminal_state_t *t = t38_terminal_init(NULL, calling, fax_t38_queue, q);
	if (t == NULL)
		return NULL;
	span_log_set_level(t38_terminal_get_logging_state(t), 0);
	t30_state_t *t30 = t38_terminal_get_t30_state(t);
	span_log_set_level(t30_get_logging_state(t30), 0);
	if (tx != NULL)
		t30_set_tx_file(t30, tx, -1, -1);
	if (rx != NULL)
		t30_set_rx_file(t30, rx, -1);
	t30_set_tx_ident(t30, ident);
	t30_set_ecm_capability(t30, 1);
	t30_set_supported_compressions(t30, T30_SUPPORT_T4_1D_COMPRESSION | T30_SUPPORT_T4_2D_COMPRESSION | T30_SUPPORT_T6_COMPRESSION);
	out->code = -1;
	t30_set_phase_e_handler(t30, fax_sim_phase_e, out);
	return t;
}

static int fax_q_len(fax_queue_t *q, int i) { return q->len[i]; }
static uint8_t *fax_q_buf(fax_queue_t *q, int i) { return q->buf[i]; }
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// SimulateT38 runs a real T.38 fax exchange between two spandsp T.38
// terminals (one sending sendTIFF as station ident, one receiving into
// recvTIFF) and calls ifp for every IFP either side sends, at its time
// from the start. It ends when both sides finish or after limit.
func SimulateT38(sendTIFF, recvTIFF, ident string, limit time.Duration, ifp func(fromSender bool, at time.Duration, b []byte)) error {
	csend, crecv, cid := C.CString(sendTIFF), C.CString(recvTIFF), C.CString(ident)
	defer C.free(unsafe.Pointer(csend))
	defer C.free(unsafe.Pointer(crecv))
	defer C.free(unsafe.Pointer(cid))
	mem := C.calloc(1, C.size_t(2*C.sizeof_fax_queue_t+2*C.sizeof_fax_sim_outcome_t))
	defer C.free(mem)
	qs := (*C.fax_queue_t)(mem)
	qr := (*C.fax_queue_t)(unsafe.Add(mem, C.sizeof_fax_queue_t))
	os := (*C.fax_sim_outcome_t)(unsafe.Add(mem, 2*C.sizeof_fax_queue_t))
	or := (*C.fax_sim_outcome_t)(unsafe.Add(mem, 2*C.sizeof_fax_queue_t+C.sizeof_fax_sim_outcome_t))
	snd := C.fax_t38_sim(1, qs, csend, nil, cid, os)
	rcv := C.fax_t38_sim(0, qr, nil, crecv, nil, or)
	if snd == nil || rcv == nil {
		return fmt.Errorf("%w: t38_terminal_init failed", ErrUnsupported)
	}
	defer C.t38_terminal_free(snd)
	defer C.t38_terminal_free(rcv)
	var seqS, seqR C.uint16_t
	drain := func(q *C.fax_queue_t, to *C.t38_terminal_state_t, seq *C.uint16_t, fromSender bool, at time.Duration) {
		for i := range int(q.n) {
			n := C.fax_q_len(q, C.int(i))
			b := C.fax_q_buf(q, C.int(i))
			ifp(fromSender, at, C.GoBytes(unsafe.Pointer(b), n))
			C.t38_core_rx_ifp_packet(C.t38_terminal_get_t38_core_state(to), b, n, *seq)
			*seq++
		}
		q.n = 0
	}
	const step = 160 // 20 ms
	for at := time.Duration(0); at < limit; at += 20 * time.Millisecond {
		C.t38_terminal_send_timeout(snd, step)
		C.t38_terminal_send_timeout(rcv, step)
		drain(qs, rcv, &seqS, true, at)
		drain(qr, snd, &seqR, false, at)
		if os.code >= 0 && or.code >= 0 {
			if os.code != 0 {
				return fmt.Errorf("fax: simulated sender ended with %s", C.GoString(C.t30_completion_code_to_str(os.code)))
			}
			return nil
		}
	}
	return errors.New("fax: simulated exchange did not finish in time")
}
