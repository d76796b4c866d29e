package rtp

import (
	"math"
	"net/netip"
	"time"
)

// Sequence tracking limits (RFC 3550 appendix A.1).
const (
	maxDropout  = 3000
	maxMisorder = 100
	dupWindow   = 128 // sequence numbers behind the highest checked for duplicates
)

// DefaultMOSInterval is how much stream time one MOS interval covers.
const DefaultMOSInterval = 10 * time.Second

// mosIntervalDelay is how many packets after the interval boundary the
// interval is closed (VoIPmonitor lets the jitter buffers settle first).
const mosIntervalDelay = 20

// minPacketsForMOS: streams with fewer packets keep MOS 4.5.
const minPacketsForMOS = 100

// StreamConfig describes a stream before its first packet. The zero value is
// usable: the codec then comes from the first packet's static payload type.
type StreamConfig struct {
	Src, Dst netip.AddrPort
	Caller   bool // the stream flows from the caller (A side)
	// Codec of the media payload type; for dynamic payload types the caller
	// fills it from the SDP rtpmap (CodecByName).
	Codec Codec
	// EventPT is the telephone-event payload type from the SDP (e.g. 101);
	// 0 means none announced (0 is PCMU, never an event type).
	EventPT uint8
	// Jitter-buffer simulators; zero values take DefaultF1/F2/Adapt. Use
	// JBConfig{Size: -1} to disable one.
	F1, F2, Adapt JBConfig
	MOSInterval   time.Duration // 0 = DefaultMOSInterval
	// Series keeps the quality per second (Stream.Series; VoIPmonitor's
	// savegraph): one small allocation per stream, at most 8 bytes a
	// second, never more than MaxSeriesPoints points.
	Series bool
}

// Stream accumulates the statistics of one RTP stream (one SSRC in one
// direction). Update does not allocate. A Stream is not safe for concurrent
// use; the call table owns it.
type Stream struct {
	// What every packet reads or writes comes first, in a few adjacent
	// cache lines (BenchmarkActiveCalls: the cost per packet grows with the
	// calls followed when a packet touches many lines of a stream), then the
	// jitter buffers' queues and delay history (one line each per packet),
	// then what only some packets touch.
	flow  flow
	codec Codec

	received    int
	bytes       int64
	last        int64 // arrival, ns since epoch
	prevArrival int64
	maxDeltaNs  int64

	// sequence state
	cycles   int64
	priorExp int64 // expected packets before a sequence restart
	seen     [dupWindow / 64]uint64
	lastLost int64

	// jitter (voice packets only)
	vArrival  int64
	tsExt     int64 // extended timestamp of the last voice packet, relative to the first
	jitter    float64
	sumJitter float64
	nJitter   int32
	events    int32
	maxJitter float64
	// VoIPmonitor's jitter (vmVoice), the CDR's: its J, running mean and
	// maximum
	vmJitter, vmAvg, vmMax float64
	ptimeMs                int64
	lastVoiceN             int32 // received count at the last voice packet
	// vmBase is the received count before VoIPmonitor's statistics
	// started (the packet that ended the RFC 3550 probation); 0 before
	vmBase int32

	// MOS
	ivStart   int64 // arrival (ms) of the interval's first packet
	ivPackets int32
	ivDue     int32 // packets left before closing a due interval (-1 = not due)

	// The small fields together (no padding between them).
	ssrc        uint32
	mosInterval int32 // ms
	badSeq      int32
	vTS         uint32
	baseSeq     uint16
	maxSeq      uint16
	vSeq        uint16
	payloadType uint8
	prevPT      uint8
	regular     bool
	restarted   bool // the sequence restarted: no loss event for the rebase
	haveVoice   bool
	mark        bool
	f1On, f2On  bool
	adaptOn     bool
	vmVoice     bool // VoIPmonitor's statistics have their first voice packet

	f1, f2 fixedJB
	adapt  adaptiveJB

	q1, q2 jbQueue
	delays delayHistory

	// touched by some packets only
	first      int64 // arrival, ns since epoch
	duplicates int32
	reordered  int32
	sl         [10]int32
	delay      [7]int32
	rtcp       RTCPStats

	series *seriesState // quality per second (series.go); nil = not kept
}

// NewStream returns a Stream configured by cfg.
func NewStream(cfg StreamConfig) *Stream {
	s := &Stream{}
	s.Reset(cfg)
	return s
}

// Flows reports whether s was configured for packets from src to dst.
func (s *Stream) Flows(src, dst netip.AddrPort) bool {
	return s.flow.src == src && s.flow.dst == dst
}

// flow is what a Stream keeps of its StreamConfig.
type flow struct {
	src, dst netip.AddrPort
	caller   bool
	eventPT  uint8
	sdpCodec bool // the codec came from the SDP (StreamConfig.Codec set)
}

// Reset clears s for reuse with a new configuration.
func (s *Stream) Reset(cfg StreamConfig) {
	ss := s.series // a reused stream keeps its series' memory
	*s = Stream{flow: flow{src: cfg.Src, dst: cfg.Dst, caller: cfg.Caller, eventPT: cfg.EventPT, sdpCodec: cfg.Codec.ClockRate != 0},
		codec: cfg.Codec, badSeq: -1, ivDue: -1}
	jb := func(c, def JBConfig) (JBConfig, bool) {
		switch {
		case c.Size < 0:
			return c, false
		case c.Size == 0:
			return def, true
		}
		if c.Resync == 0 {
			c.Resync = def.Resync
		}
		return c, true
	}
	var f1, f2, adapt JBConfig
	f1, s.f1On = jb(cfg.F1, DefaultF1)
	f2, s.f2On = jb(cfg.F2, DefaultF2)
	adapt, s.adaptOn = jb(cfg.Adapt, DefaultAdapt)
	s.f1.cfg, s.f2.cfg, s.adapt.cfg = f1.params(), f2.params(), adapt.params()
	s.mosInterval = int32(min(cfg.MOSInterval/time.Millisecond, math.MaxInt32))
	if s.mosInterval <= 0 {
		s.mosInterval = int32(DefaultMOSInterval / time.Millisecond)
	}
	if cfg.Series {
		if ss == nil {
			ss = &seriesState{steps: make([]step, 0, 64)} // a minute before it grows
		}
		*ss = seriesState{steps: ss.steps[:0]}
		s.series = ss
	}
}

// Received returns the number of packets seen so far.
func (s *Stream) Received() int { return s.received }

// IsEvent reports whether pt is the stream's telephone-event payload type.
func (s *Stream) IsEvent(pt uint8) bool { return s.flow.eventPT != 0 && pt == s.flow.eventPT }

// Update accounts one RTP packet: hdr parsed from it, payloadLen bytes of
// payload, captured at arrival. Packets must come in capture order.
func (s *Stream) Update(hdr *Header, payloadLen int, arrival time.Time) {
	now := arrival.UnixNano()
	event := s.IsEvent(hdr.PayloadType)
	afterEvent := s.received > 0 && s.IsEvent(s.prevPT)
	if s.received == 0 {
		s.ssrc = hdr.SSRC
		s.first = now
		s.baseSeq = hdr.SequenceNumber
		s.maxSeq = hdr.SequenceNumber
		s.prevArrival = now
		s.markSeen(0)
	} else {
		// a "regular" packet (tshark's notion): not the first, no marker,
		// not comfort noise and not right after comfort noise. Only those
		// count for max delta and the jitter mean/max.
		s.regular = !hdr.Marker && hdr.PayloadType != PTCN && s.prevPT != PTCN
		if d := now - s.prevArrival; s.regular && d > s.maxDeltaNs {
			s.maxDeltaNs = d
		}
		s.prevArrival = now
		if s.vmBase == 0 && s.received >= 2 && hdr.SequenceNumber == s.maxSeq+1 && !hdr.Marker {
			// VoIPmonitor's statistics start with the packet that ends
			// RFC 3550's probation: the first packet from the third on
			// whose sequence number follows its predecessor's (a marker
			// bit restarts the sequence in its RTP::read)
			s.vmBase = int32(s.received)
		}
		s.updateSeq(hdr.SequenceNumber)
	}
	s.prevPT = hdr.PayloadType
	s.received++
	s.bytes += int64(payloadLen)
	s.last = now

	// loss events: growth of the running loss count
	var lostNow int64 // change of the loss count with this packet (series)
	if cur := s.lostRaw(); cur > s.lastLost && !s.restarted {
		n := min(cur-s.lastLost, 10)
		s.sl[n-1]++
		lostNow = cur - s.lastLost
		s.lastLost = cur
	} else {
		if !s.restarted {
			lostNow = cur - s.lastLost
		}
		s.lastLost = cur
	}
	s.restarted = false

	if hdr.Marker {
		s.mark = true
	}
	if event {
		s.events++
		s.mark = true // a DTMF run breaks the voice timeline
		if s.series != nil {
			s.seriesPacket(now, lostNow)
		}
		return
	}
	if pt := hdr.PayloadType; pt != PTCN || !s.haveVoice {
		// comfort noise does not define the stream's codec unless it comes first
		if !s.flow.sdpCodec && (pt != s.payloadType || s.codec.ClockRate == 0) {
			if c, ok := StaticCodec(pt); ok {
				s.codec = c
			}
		}
		s.payloadType = pt
	}
	clock := s.codec.ClockRate
	if clock <= 0 {
		clock = 8000
	}
	s.voice(hdr, now, int64(clock), afterEvent)
	if s.series != nil {
		s.seriesPacket(now, lostNow)
	}
}

// updateSeq is RFC 3550 A.1 update_seq without probation (the stream is
// already known from signalling), plus duplicate and reorder detection.
func (s *Stream) updateSeq(seq uint16) {
	udelta := seq - s.maxSeq
	switch {
	case udelta == 0:
		s.duplicates++
	case udelta < maxDropout:
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.shiftSeen(int(udelta))
		s.maxSeq = seq
		s.markSeen(0)
		s.badSeq = -1
	case udelta <= 1<<16-maxMisorder:
		// very large jump: restart when two packets agree (RFC 3550 A.1)
		if int32(seq) == s.badSeq {
			s.priorExp += s.expectedSince()
			s.baseSeq = seq - 1 // the packet that set badSeq belongs to the new run
			s.maxSeq = seq
			s.cycles = 0
			s.seen = [dupWindow / 64]uint64{}
			s.markSeen(0)
			s.markSeen(1)
			s.badSeq = -1
			s.restarted = true
			s.vmJitter = 0 // VoIPmonitor's init_seq
		} else {
			s.badSeq = int32(seq + 1)
		}
	default: // behind the highest: duplicate or reordered
		back := int(s.maxSeq - seq)
		if back < dupWindow {
			if s.isSeen(back) {
				s.duplicates++
				return
			}
			s.markSeen(back)
		}
		s.reordered++
	}
}

func (s *Stream) markSeen(back int) { s.seen[back/64] |= 1 << (back % 64) }
func (s *Stream) isSeen(back int) bool {
	return s.seen[back/64]&(1<<(back%64)) != 0
}

// shiftSeen moves the window forward by n sequence numbers.
func (s *Stream) shiftSeen(n int) {
	if n >= dupWindow {
		s.seen = [dupWindow / 64]uint64{}
		return
	}
	for ; n >= 64; n -= 64 {
		s.seen[1], s.seen[0] = s.seen[0], 0
	}
	if n > 0 {
		s.seen[1] = s.seen[1]<<n | s.seen[0]>>(64-n)
		s.seen[0] <<= n
	}
}

func (s *Stream) expectedSince() int64 {
	return s.cycles + int64(s.maxSeq) - int64(s.baseSeq) + 1
}

// expected is the number of packets the sequence numbers account for.
func (s *Stream) expected() int64 { return s.priorExp + s.expectedSince() }

// lostRaw is expected - received, negative with duplicates (RFC 3550).
func (s *Stream) lostRaw() int64 { return s.expected() - int64(s.received) }

// voice updates jitter, delay buckets and the jitter-buffer simulators;
// afterEvent: the packet before was a telephone-event one.
func (s *Stream) voice(hdr *Header, now, clock int64, afterEvent bool) {
	nowMs := now / int64(time.Millisecond)
	if !s.haveVoice {
		s.haveVoice = true
		s.vArrival, s.vTS, s.vSeq = now, hdr.Timestamp, hdr.SequenceNumber
		s.ivStart = nowMs
		s.ivPackets = 1
		s.mark = false
		s.lastVoiceN = int32(s.received)
		s.vmVoice = s.vmBase > 0
		s.feedJB(0, int64(hdr.SequenceNumber)-int64(s.events), nowMs, false)
		return
	}
	tsDiff := int64(int32(hdr.Timestamp - s.vTS))
	seqDiff := int64(int16(hdr.SequenceNumber - s.vSeq))
	if seqDiff == 1 && tsDiff > 0 {
		if p := tsDiff * 1000 / clock; p >= 2 && p <= 200 {
			s.ptimeMs = p
		}
	}
	transit := float64(now-s.vArrival)/1e6 - float64(tsDiff)*1000/float64(clock)
	if math.Abs(transit) > 5000 { // timestamp jump
		transit = 0
	}
	d := math.Abs(transit)
	s.jitter += (d - s.jitter) / 16
	if s.regular {
		s.sumJitter += s.jitter
		s.nJitter++
		if s.jitter > s.maxJitter {
			s.maxJitter = s.jitter
		}
	}
	if i := delayBucket(int(d)); i >= 0 {
		s.delay[i]++
	}
	s.vmUpdate(transit, afterEvent)
	s.vArrival, s.vTS, s.vSeq = now, hdr.Timestamp, hdr.SequenceNumber
	s.tsExt += tsDiff
	s.lastVoiceN = int32(s.received)

	// Loss is not counted across a marker bit, a DTMF run or a timestamp
	// jump (DTX: the sender paused, the timestamp moved on more than the
	// sequence number explains).
	ptime := s.ptimeMs
	if ptime == 0 {
		ptime = 20
	}
	quiet := s.mark || seqDiff > 0 && tsDiff*1000/clock > (seqDiff+1)*ptime
	s.mark = false
	s.feedJB(s.tsExt*1000/clock, s.cycles+int64(hdr.SequenceNumber)-int64(s.events), nowMs, quiet)

	// MOS intervals
	s.ivPackets++
	if s.ivDue < 0 && nowMs-s.ivStart >= int64(s.mosInterval) {
		s.ivDue = mosIntervalDelay
	}
	if s.ivDue >= 0 {
		if s.ivDue == 0 {
			s.closeInterval(nowMs)
			s.ivStart, s.ivPackets, s.ivDue = nowMs, 0, -1
		} else {
			s.ivDue--
		}
	}
}

// vmUpdate is VoIPmonitor's jitter for one voice packet (rtp.cpp
// RTP::update_stats), what the CDR's jitter columns hold: nothing before
// its statistics start (the two packets of RFC 3550's probation) nor for
// the first voice packet after them, nor for the first voice packet after
// telephone events; then the RFC 3550 recurrence from 0, and the running
// mean over the packets counted since the start (events included, as its
// stats.received). transit is the packet's, against the voice packet
// before it. After events VoIPmonitor takes the next transit against the
// last voice packet before them, this the one against the skipped packet:
// they differ only when that packet itself came off its time.
func (s *Stream) vmUpdate(transit float64, afterEvent bool) {
	if s.vmBase == 0 {
		return
	}
	if !s.vmVoice || afterEvent {
		s.vmVoice = true
		return
	}
	s.vmJitter += (math.Abs(transit) - s.vmJitter) / 16
	n := float64(int32(s.received) - s.vmBase)
	s.vmAvg = (s.vmAvg*(n-1) + s.vmJitter) / n
	s.vmMax = max(s.vmMax, s.vmJitter)
}

// feedJB runs the simulators on one voice frame; seq is the extended
// sequence number with the telephone-event packets taken out.
func (s *Stream) feedJB(tsMs, seq, nowMs int64, quiet bool) {
	ms := s.ptimeMs
	if ms == 0 {
		ms = 20
	}
	if s.f1On {
		s.f1.step(&s.q1, tsMs, ms, nowMs, quiet)
	}
	if s.f2On {
		s.f2.step(&s.q2, tsMs, ms, nowMs, quiet)
	}
	if s.adaptOn {
		s.adapt.put(&s.delays, tsMs, seq, nowMs, quiet)
	}
}

func (s *Stream) closeInterval(nowMs int64) {
	dur := nowMs - s.ivStart
	s.f1.hist.closeInterval(int(s.ivPackets), dur, s.codec)
	s.f2.hist.closeInterval(int(s.ivPackets), dur, s.codec)
	s.adapt.hist.closeInterval(int(s.ivPackets), dur, s.codec)
}

// delayBucket maps |transit| in ms to d50..d300 (index 0..6), -1 below 50.
func delayBucket(ms int) int {
	switch {
	case ms < 50:
		return -1
	case ms < 70:
		return 0
	case ms < 90:
		return 1
	case ms < 120:
		return 2
	case ms < 150:
		return 3
	case ms < 200:
		return 4
	case ms < 300:
		return 5
	}
	return 6
}

// Summary returns the stream's figures so far. It does not change s: the
// MOS of the open interval is computed on a copy of the accumulators.
func (s *Stream) Summary() Summary {
	sum := Summary{
		Src:          s.flow.src,
		Dst:          s.flow.dst,
		Caller:       s.flow.caller,
		SSRC:         s.ssrc,
		Payload:      int(s.payloadType),
		Codec:        s.codec.Name,
		ClockRate:    s.codec.ClockRate,
		Received:     s.received,
		Bytes:        s.bytes,
		Duplicates:   int(s.duplicates),
		Reordered:    int(s.reordered),
		MaxJitter:    s.maxJitter,
		CDRAvgJitter: s.vmAvg,
		CDRMaxJitter: s.vmMax,
		MaxDelta:     float64(s.maxDeltaNs) / 1e6,
		PTime:        int(s.ptimeMs),
		Events:       int(s.events),
		MOSF1:        MOSMax, MOSF2: MOSMax, MOSAdapt: MOSMax,
		MOSF1Min: MOSMax, MOSF2Min: MOSMax, MOSAdaptMin: MOSMax,
		MOSF1Last: MOSMax, MOSF2Last: MOSMax, MOSAdaptLast: MOSMax,
		RTCP: s.rtcp,
	}
	for i, n := range s.sl {
		sum.SL[i] = int(n)
	}
	for i, n := range s.delay {
		sum.D[i] = int(n)
	}
	if s.received == 0 {
		return sum
	}
	sum.FirstTime = time.Unix(0, s.first)
	sum.LastTime = time.Unix(0, s.last)
	sum.Expected = int(s.expected())
	sum.LostRaw = int(s.lostRaw())
	sum.Lost = max(0, sum.LostRaw)
	if s.nJitter > 0 {
		sum.AvgJitter = s.sumJitter / float64(s.nJitter)
	}
	if s.received >= minPacketsForMOS {
		lastMs := s.vArrival / int64(time.Millisecond)
		sum.MOSF1, sum.MOSF1Min, sum.MOSF1Last = s.finalMOS(&s.f1.hist, s.f1On, lastMs)
		sum.MOSF2, sum.MOSF2Min, sum.MOSF2Last = s.finalMOS(&s.f2.hist, s.f2On, lastMs)
		sum.MOSAdapt, sum.MOSAdaptMin, sum.MOSAdaptLast = s.finalMOS(&s.adapt.hist, s.adaptOn, lastMs)
	}
	return sum
}

// finalMOS is a simulator's MOS with the open interval closed now: the
// average over the intervals (weighted by their length), the lowest
// interval's and the last one's.
func (s *Stream) finalMOS(h *lossHist, on bool, lastMs int64) (avg, lowest, last float64) {
	if !on {
		return MOSMax, MOSMax, MOSMax
	}
	c := *h
	if s.ivPackets > 0 {
		c.closeInterval(int(s.ivPackets), lastMs-s.ivStart, s.codec)
	}
	if c.sumDur == 0 {
		return MOSMax, MOSMax, MOSMax
	}
	return roundMOS(c.sumMOS / float64(c.sumDur)), float64(c.min10) / 10, float64(c.last10) / 10
}
