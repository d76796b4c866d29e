package rtp

import "math"

// Jitter-buffer simulation for MOS (spec §4). Three simulators run on every
// stream: fixed 50 ms (resync 100), fixed 200 ms (resync 200) and adaptive
// up to 500 ms. Each one turns arrival times into a playout and counts the
// frames that were missing when their turn came (network loss or arrived
// too late) as loss bursts; an interval MOS is computed from them every
// MOSInterval.
//
// The fixed buffer follows Asterisk's fixedjitterbuf algorithm (rxcore,
// next_delivery, resynchronisation on timestamp jumps); the adaptive one is
// a simplified model of Asterisk's jitterbuf: the playout delay follows the
// spread of recent transit delays (3 % of outliers dropped) plus 40 ms,
// capped at the maximum size. Times are integer milliseconds as in Asterisk.

const (
	maxBurst     = 127 // loss[k] is capped at k = 127
	jbQueueLen   = 48  // frames a fixed buffer can hold (ring); 400 ms of 10 ms frames
	adaptHistory = 500 // transit delays remembered by the adaptive buffer
	adaptDropPct = 3   // % of the largest delays ignored
	adaptExtra   = 40  // ms added to the measured spread
)

// JBConfig configures one simulated jitter buffer. A zero Size disables it
// (its MOS stays 4.5).
type JBConfig struct {
	Size     int // ms (maximum size for the adaptive buffer)
	Resync   int // ms
	Adaptive bool
}

// jbParams is a JBConfig as a running buffer keeps it (ms).
type jbParams struct{ Size, Resync int32 }

func (c JBConfig) params() jbParams {
	return jbParams{Size: int32(min(c.Size, math.MaxInt32)), Resync: int32(min(c.Resync, math.MaxInt32))}
}

// Default simulators, as VoIPmonitor's jitterbuffer_f1/f2/adapt.
var (
	DefaultF1    = JBConfig{Size: 50, Resync: 100}
	DefaultF2    = JBConfig{Size: 200, Resync: 200}
	DefaultAdapt = JBConfig{Size: 500, Resync: 500, Adaptive: true}
)

// lossHist accumulates loss bursts (a run of k missing frames counts k,
// capped at maxBurst) and per-interval MOS.
type lossHist struct {
	burst   int32 // current run of missing frames
	lost    int32 // Σ k over the bursts
	bursts  int32 // number of bursts
	ivLost  int32 // lost / bursts at the start of the current interval
	ivBurst int32
	nInterv int32
	// interval results (MOS×10: an interval's MOS is rounded to 0.1)
	min10, last10 int16   // the lowest interval's, the last one's
	sumMOS        float64 // Σ mos·duration(ms)
	sumDur        int64
}

func (h *lossHist) miss() { h.burst++ }

// played records the end of a run of missing frames as one loss burst.
func (h *lossHist) played() {
	if h.burst > 0 {
		h.lost += min(h.burst, maxBurst)
		h.bursts++
	}
	h.burst = 0
}

func (h *lossHist) discard() { h.burst = 0 }

// closeInterval computes the MOS of the interval that ends now.
func (h *lossHist) closeInterval(received int, durMs int64, c Codec) {
	if received <= 0 {
		return
	}
	m := roundMOS(IntervalMOS(int(h.lost-h.ivLost), int(h.bursts-h.ivBurst), received, c))
	h.ivLost, h.ivBurst = h.lost, h.bursts
	if durMs < 1 {
		durMs = 1
	}
	h.sumMOS += m * float64(durMs)
	h.sumDur += durMs
	m10 := int16(math.Round(m * 10))
	if h.nInterv == 0 || m10 < h.min10 {
		h.min10 = m10
	}
	h.last10 = m10
	h.nInterv++
}

func roundMOS(m float64) float64 { return float64(int(m*10+0.5)) / 10 }

// jbFrame is a queued frame in 8 bytes. Its delivery time is kept as an
// offset from the buffer's base (exact: rebased before it could overflow);
// its timestamp is not kept: it is always delivery - rxcore - Size (put
// sets delivery so, and a resync moves rxcore and every queued timestamp by
// the same offset).
type jbFrame struct {
	off   int32 // delivery - fixedJB.base, ms
	ms    int16 // frame length, ms (saturated)
	quiet bool  // starts a talkspurt: silence before it is not loss
}

// rebaseAt is the offset past which queued deliveries are rebased.
const rebaseAt = 1 << 30

func (jb *fixedJB) delivery(f *jbFrame) int64 { return jb.base + int64(f.off) }

// fixedJB is Asterisk's fixed jitter buffer driven by packet arrival. Its
// queue is kept apart (the Stream holds it after every buffer's other
// state, which a packet reads and writes whole, so that state stays in a
// few adjacent cache lines) and handed to the methods that use it.
type fixedJB struct {
	cfg          jbParams
	started      bool
	pendingQuiet bool  // a dropped frame started a talkspurt: the next one does
	head, n      int32 // the queued frames: q[head], … q[head+n-1] (modulo jbQueueLen)
	clock        int64 // playout grid: first arrival + k·ptime (VoIPmonitor's last_ts)
	rxcore       int64
	nextDelivery int64
	base         int64 // queued deliveries are offsets from it
	hist         lossHist
}

// jbQueue is a fixed buffer's ring of queued frames.
type jbQueue [jbQueueLen]jbFrame

// at returns the i-th queued frame (0 ≤ i < 2·jbQueueLen - head).
func (jb *fixedJB) at(q *jbQueue, i int32) *jbFrame {
	j := jb.head + i
	if j >= jbQueueLen {
		j -= jbQueueLen
	}
	return &q[j]
}

func (jb *fixedJB) tail(q *jbQueue) *jbFrame { return jb.at(q, jb.n-1) }

// step feeds one voice frame arriving at now: the playout clock first runs
// in ptime steps up to the arrival (as VoIPmonitor drives Asterisk's
// buffer), then the frame is put. quiet discards the loss counted over the
// gap (marker bit, DTMF or DTX before this frame).
func (jb *fixedJB) step(q *jbQueue, ts, ms, now int64, quiet bool) {
	if !jb.started {
		jb.started = true
		jb.clock = now
		jb.putFirst(q, ts, ms, now, quiet)
		return
	}
	msdiff := now - (jb.clock + ms)
	if msdiff > ms*1000 { // huge gap: restart the clock rather than spin
		jb.clock = now
		jb.hist.discard()
		jb.restart(q)
		jb.putFirst(q, ts, ms, now, quiet)
		return
	}
	for ; msdiff >= ms; msdiff -= ms {
		if quiet {
			jb.hist.discard()
		}
		jb.get(q, jb.clock, ms)
		jb.clock += ms
	}
	jb.putQuiet(q, ts, ms, now, quiet)
}

// restart plays out what the buffer holds (its frames were received; their
// slots passed during the gap) and empties it, so that the next frame
// anchors the playout again: the playout clock never walks the gap, which
// may be decades long in a capture whose clock jumped.
func (jb *fixedJB) restart(q *jbQueue) {
	for jb.n > 0 {
		if q[jb.head].quiet {
			jb.hist.discard()
		} else {
			jb.hist.played()
		}
		jb.pop(q)
	}
	jb.pendingQuiet = false
}

// putQuiet puts a frame and, when a talkspurt-starting frame is dropped,
// hands its quiet mark to the next frame.
func (jb *fixedJB) putQuiet(q *jbQueue, ts, ms, now int64, quiet bool) {
	quiet = quiet || jb.pendingQuiet
	jb.pendingQuiet = !jb.put(q, ts, ms, now, quiet, false) && quiet
}

// get plays out every frame due at now (Asterisk's jb_get_and_deliver).
func (jb *fixedJB) get(q *jbQueue, now, interp int64) {
	for jb.nextDelivery <= now {
		if jb.n == 0 {
			jb.nextDelivery += interp
			jb.hist.miss()
			continue
		}
		f := &q[jb.head]
		switch {
		case now > jb.delivery(f)+int64(f.ms): // too late: drop it
			jb.pop(q)
			jb.hist.miss()
		case now < jb.delivery(f): // not yet: interpolate
			jb.nextDelivery += interp
			jb.hist.miss()
		default:
			if f.quiet {
				jb.hist.discard()
			} else {
				jb.hist.played()
			}
			jb.pop(q)
		}
	}
}

func (jb *fixedJB) pop(q *jbQueue) {
	f := q[jb.head]
	if jb.head++; jb.head == jbQueueLen {
		jb.head = 0
	}
	jb.n--
	jb.nextDelivery = jb.delivery(&f) + int64(f.ms)
}

func (jb *fixedJB) putFirst(q *jbQueue, ts, ms, now int64, quiet bool) {
	jb.rxcore = now - ts
	jb.nextDelivery = now + int64(jb.cfg.Size)
	jb.put(q, ts, ms, now, quiet, false)
}

// put inserts a frame; returns false when it was dropped.
func (jb *fixedJB) put(q *jbQueue, ts, ms, now int64, quiet, resynced bool) bool {
	delivery := jb.rxcore + int64(jb.cfg.Size) + ts
	if delivery < jb.nextDelivery ||
		delivery > jb.nextDelivery+int64(jb.cfg.Size)+int64(jb.cfg.Resync) {
		return !resynced && jb.resync(q, ts, ms, now, quiet)
	}
	// find the place, sorted by delivery time
	i := jb.n
	for i > 0 && jb.delivery(jb.at(q, i-1)) > delivery {
		i--
	}
	if i > 0 {
		p := jb.at(q, i-1)
		if pd := jb.delivery(p); pd == delivery || delivery < pd+int64(p.ms) {
			return !resynced && jb.resync(q, ts, ms, now, quiet)
		}
	}
	if i < jb.n {
		if delivery+ms > jb.delivery(jb.at(q, i)) {
			return !resynced && jb.resync(q, ts, ms, now, quiet)
		}
	}
	if jb.n == jbQueueLen {
		return false // buffer overflow
	}
	for j := jb.n; j > i; j-- {
		*jb.at(q, j) = *jb.at(q, j-1)
	}
	if jb.n == 0 {
		jb.base = delivery
	} else if d := delivery - jb.base; d > rebaseAt || d < -rebaseAt {
		// Deliveries in the queue are within Size+Resync of each other.
		for j := int32(0); j < jb.n; j++ {
			f := jb.at(q, j)
			f.off = int32(jb.delivery(f) - delivery)
		}
		jb.base = delivery
	}
	*jb.at(q, i) = jbFrame{off: int32(delivery - jb.base), ms: int16(min(ms, math.MaxInt16)), quiet: quiet}
	jb.n++
	return true
}

func (jb *fixedJB) resync(q *jbQueue, ts, ms, now int64, quiet bool) bool {
	if jb.n == 0 {
		jb.putFirst(q, ts, ms, now, quiet)
		return true
	}
	t := jb.tail(q)
	offset := ts - (jb.delivery(t) - jb.rxcore - int64(jb.cfg.Size)) - int64(t.ms)
	if offset < int64(jb.cfg.Resync) && offset > -int64(jb.cfg.Resync) {
		return false
	}
	jb.rxcore -= offset // the queued frames' timestamps move by offset too
	return jb.put(q, ts, ms, now, quiet, true)
}

// adaptiveJB is the simplified adaptive buffer: a frame is lost when its
// transit delay exceeds the minimum recent delay plus the current playout
// delay. Its delay history is kept apart (as a fixed buffer's queue).
type adaptiveJB struct {
	cfg     jbParams
	nd, pos int32
	minD    int64
	spread  int64
	cur     int64 // playout delay above minD (ms)
	lastSeq int64
	sinceRe int32
	started bool
	order   delayOrder
	hist    lossHist
}

// delayHistory is the adaptive buffer's recent transit delays: ms above
// minD, saturated at ±32.767 s (beyond any buffer size).
type delayHistory [adaptHistory]int16

func (jb *adaptiveJB) put(delays *delayHistory, ts, seq, now int64, quiet bool) {
	d := now - ts
	if quiet && jb.started {
		jb.hist.discard()
		jb.lastSeq = seq - 1
	}
	if !jb.started {
		jb.started = true
		jb.lastSeq = seq
		jb.minD = d
		jb.cur = adaptExtra
		jb.push(delays, d)
		return
	}
	jb.push(delays, d)
	if jb.sinceRe++; jb.sinceRe >= 16 || d < jb.minD {
		jb.recompute(delays)
	}
	target := min(jb.spread+adaptExtra, int64(jb.cfg.Size))
	late := d-jb.minD > jb.cur
	if target > jb.cur {
		jb.cur = target
	} else if target < jb.cur-10 {
		jb.cur--
	}
	if seq <= jb.lastSeq { // reordered/duplicate: its slot is already past
		return
	}
	gap := int(seq - jb.lastSeq - 1) // frames that never arrived before this one
	jb.lastSeq = seq
	if late { // its slot is gone too
		jb.hist.burst += int32(gap + 1)
		return
	}
	jb.hist.burst += int32(gap)
	jb.hist.played()
}

func (jb *adaptiveJB) push(delays *delayHistory, d int64) {
	v := sat16(d - jb.minD)
	if jb.nd == adaptHistory {
		jb.order.remove(delays[jb.pos])
	}
	jb.order.add(v)
	delays[jb.pos] = v
	if jb.pos++; jb.pos == adaptHistory {
		jb.pos = 0
	}
	if jb.nd < adaptHistory {
		jb.nd++
	}
}

// recompute finds the minimum and the (100-adaptDropPct) % largest delay of
// the history without allocating: from the counts kept since the last scan
// when they settle it (O(1)), else by a scan of the history.
func (jb *adaptiveJB) recompute(delays *delayHistory) {
	jb.sinceRe = 0
	k := jb.nd*adaptDropPct/100 + 1
	if o := &jb.order; o.valid && o.zeros > 0 && o.above < int16(k) && o.above+o.at >= int16(k) {
		// The minimum is still 0 (no rebase) and the k-th largest still T.
		jb.spread = int64(o.t)
		return
	}
	var top [adaptHistory*adaptDropPct/100 + 1]int16
	nt := 0
	mn := int16(math.MaxInt16)
	for i := int32(0); i < jb.nd; i++ {
		v := delays[i]
		mn = min(mn, v)
		// keep the k largest in top[:nt], ascending
		if nt < int(k) {
			j := nt
			for j > 0 && top[j-1] > v {
				top[j] = top[j-1]
				j--
			}
			top[j] = v
			nt++
		} else if v > top[0] {
			j := 0
			for j+1 < nt && top[j+1] < v {
				top[j] = top[j+1]
				j++
			}
			top[j] = v
		}
	}
	jb.spread = int64(top[0]) - int64(mn)
	// delays are stored relative to the minD of the time they were pushed;
	// rebase so that minD is the true minimum (the history's minimum is 0
	// after any recompute).
	t := top[0]
	if mn != 0 {
		for i := int32(0); i < jb.nd; i++ {
			delays[i] = sat16(int64(delays[i]) - int64(mn))
		}
		jb.minD += int64(mn)
		t = sat16(int64(t) - int64(mn)) // sat16 keeps the order: still the k-th largest
	}
	jb.order = delayOrder{t: t, valid: true}
	for _, v := range delays[:jb.nd] {
		jb.order.add(v)
	}
}

// delayOrder follows, between two scans of the history, how many delays
// lie above the k-th largest one T found by the last scan, how many equal
// it, and how many are 0 (the minimum a scan leaves): while the minimum
// stays 0 and T stays the k-th largest (above < k ≤ above+at), a recompute
// needs no scan. A delay below 0 (a new minimum) invalidates it.
type delayOrder struct {
	t                int16
	above, at, zeros int16
	valid            bool
}

func (o *delayOrder) add(v int16) {
	o.count(v, 1)
	if v < 0 {
		o.valid = false
	}
}

func (o *delayOrder) remove(v int16) { o.count(v, -1) }

func (o *delayOrder) count(v, n int16) {
	switch {
	case v > o.t:
		o.above += n
	case v == o.t:
		o.at += n
	}
	if v == 0 {
		o.zeros += n
	}
}

// sat16 is v clamped to the int16 range.
func sat16(v int64) int16 {
	return int16(max(math.MinInt16, min(math.MaxInt16, v)))
}
