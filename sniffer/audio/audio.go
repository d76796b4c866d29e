// Package audio turns one call's RTP, both directions, into a single
// timeline of 20 ms frames of signed 16-bit PCM: caller and callee
// channels, aligned by RTP timestamps (anchored on arrival time when a
// stream starts or jumps), with gaps and paused stretches silent.
//
// Frames are at the call's rate: the highest native rate of the codecs its
// directions have used (8 kHz for G.711, GSM, G.729; 16 kHz for G.722;
// 48 kHz for Opus), capped by Config.MaxRate. A direction at a lower rate
// (a G.711 caller, an Opus callee) is resampled to it before framing, and a
// call whose codec changes to a wider one (a re-INVITE from PCMU to G.722)
// goes on at the higher rate: every Frame says its Rate.
//
// One Call decodes once no matter how many consumers: a synchronous Sink
// (the spool's WAV writer) and any number of bounded subscriptions (live
// listening) that drop their oldest frame when full and count the drops.
//
// Payloads are decoded by the codec package (G.711, G.722, GSM, G.729,
// Opus, comfort noise; the cgo ones only in a cgo build). A codec without a
// decoder in this build plays as silence, counted in Stats.Undecodable and
// logged once per call and codec; RFC 4733 events and unknown payload
// types only advance the clock. Packets lost (a gap in the sequence
// numbers) are concealed by the decoder (libopus's and bcg729's own
// concealment, Opus's in-band FEC for one lost packet, a fade for the
// others); comfort noise (RFC 3389) plays at its level until the
// direction's next speech packet.
package audio

import (
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/rtp"
)

const (
	// SampleRate is the narrowband rate (G.711's): VoIPmonitor's listen
	// and frames of narrowband calls.
	SampleRate = 8000
	// MaxRate is the highest frame rate (Opus's).
	MaxRate = 48000
	// FrameSamples is the number of samples per channel in one 8 kHz Frame.
	FrameSamples = 160
	// MaxFrameSamples is the number of samples per channel in one Frame at
	// MaxRate.
	MaxFrameSamples = MaxRate / 50
	// FrameDuration is the time one Frame covers.
	FrameDuration = 20 * time.Millisecond

	// The timeline counts ticks of 1/48000 s, whatever the frame rate.
	tickRate   = MaxRate
	frameTicks = MaxFrameSamples
	ringFrames = 16 // reorder window: 320 ms per direction
	ringTicks  = ringFrames * frameTicks
	// maxPayload bounds the ticks taken from one packet so that making
	// room in the ring never emits a frame the packet still writes to.
	maxPayload = ringTicks - 2*frameTicks
	// reanchor is how far (in ticks) a stream's timestamp clock may drift
	// from arrival time before it is re-anchored on arrival (a timestamp
	// jump, a long hold).
	reanchor = tickRate
	// maxConceal bounds a concealed gap: up to 120 ms (6 packets of 20 ms)
	// of lost packets are concealed, a longer one is silence.
	maxConceal        = 6 * frameTicks
	maxConcealPackets = 6

	// DefaultDelay is how long a frame waits for late packets before it is
	// emitted.
	DefaultDelay = 100 * time.Millisecond
	maxDelay     = (ringFrames - 4) * FrameDuration
	// DefaultDepth is a subscription's queue length (1 s of frames).
	DefaultDepth = 50
)

// Dir says who speaks in a packet.
type Dir uint8

const (
	FromCaller Dir = iota // left channel
	FromCallee            // right channel
)

// Frame is 20 ms of both channels at Rate: Caller and Callee hold Rate/50
// samples each. Frames handed to subscribers are shared between them and
// must not be modified.
type Frame struct {
	Index  int64     // frame number since the call's first RTP packet
	Time   time.Time // capture time of the frame's first sample
	Rate   int       // samples per second per channel
	Caller []int16
	Callee []int16
}

// Samples is the number of samples per channel.
func (f *Frame) Samples() int { return len(f.Caller) }

// Reset sizes f for rate (both channels silent), reusing its buffers when
// they are large enough.
func (f *Frame) Reset(rate int) {
	n := rate / 50
	if cap(f.Caller) < n || cap(f.Callee) < n {
		buf := make([]int16, 2*max(n, FrameSamples))
		f.Caller, f.Callee = buf[:0:len(buf)/2], buf[len(buf)/2:]
	}
	f.Rate = rate
	f.Caller, f.Callee = f.Caller[:n], f.Callee[:n]
	clear(f.Caller)
	clear(f.Callee)
}

// Clone returns a copy of f with its own samples (one allocation for both
// channels).
func (f *Frame) Clone() *Frame {
	n := len(f.Caller)
	buf := make([]int16, 2*n)
	c := &Frame{Index: f.Index, Time: f.Time, Rate: f.Rate, Caller: buf[:n:n], Callee: buf[n:]}
	copy(c.Caller, f.Caller)
	copy(c.Callee, f.Callee)
	return c
}

// Mix writes the saturated sum of both channels to dst (at least
// Samples() long) and returns the samples written.
func (f *Frame) Mix(dst []int16) []int16 {
	dst = dst[:len(f.Caller)]
	for i := range dst {
		s := int32(f.Caller[i]) + int32(f.Callee[i])
		dst[i] = int16(max(min(s, 32767), -32768))
	}
	return dst
}

// AppendStereo appends the frame as interleaved s16le, caller left.
func (f *Frame) AppendStereo(dst []byte) []byte {
	for i := range f.Caller {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(f.Caller[i]))
		dst = binary.LittleEndian.AppendUint16(dst, uint16(f.Callee[i]))
	}
	return dst
}

// AppendMono appends the mixed channels as s16le.
func (f *Frame) AppendMono(dst []byte) []byte {
	for i := range f.Caller {
		s := int32(f.Caller[i]) + int32(f.Callee[i])
		dst = binary.LittleEndian.AppendUint16(dst, uint16(int16(max(min(s, 32767), -32768))))
	}
	return dst
}

// AppendS16LE appends samples as little-endian signed 16-bit PCM.
func AppendS16LE(dst []byte, s []int16) []byte {
	for _, v := range s {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(v))
	}
	return dst
}

// Config tunes a Call. The zero value is usable.
type Config struct {
	// Delay is how long a frame waits for late packets (default 100 ms,
	// at most 240 ms).
	Delay time.Duration
	// Rate is the lowest frame rate (default 8000): a consumer that wants
	// one rate from the first frame on (a WAV file of a call whose SDP
	// offers G.722) sets it. Frames go higher when a codec's native rate
	// is higher.
	Rate int
	// MaxRate caps the frame rate and the rate codecs decode at (default
	// MaxRate): 8000, 16000, 24000 or 48000.
	MaxRate int
	// Sink, when set, receives every frame in order, synchronously, with
	// the Call's lock held: it must not call back into the Call, and f is
	// valid only during the call.
	Sink func(f *Frame)
	// Log, when set, hears once per call and codec that a codec cannot be
	// decoded in this build (it plays as silence).
	Log *slog.Logger
}

// Stats counts a Call's work.
type Stats struct {
	Packets     uint64 // RTP packets fed
	Frames      uint64 // frames emitted
	Late        uint64 // packets (or their starts) that came after their frame was emitted
	Undecodable uint64 // packets of codecs that are not decoded (heard as silence)
	Reanchored  uint64 // timestamp jumps re-anchored on arrival time
	Concealed   uint64 // lost packets concealed (sequence gaps)
	Skipped     uint64 // frames skipped over a capture-clock jump past maxGapFrames
	Rate        int    // the frames' current rate
	Subscribers int
	Dropped     uint64 // frames dropped by full subscriptions, all of them together
}

type direction struct {
	ring    []int16                 // ringFrames frames at the call's rate
	pcm     [codec.MaxSamples]int16 // one packet decoded
	out     []int16                 // one packet resampled to the call's rate
	rs      *Resampler              // decoder rate → call rate
	speech  codec.Decoder           // decoder of the last speech payload type
	speechN string
	prev    codec.Decoder // the one before it: a sender switching back and forth opens none
	prevN   string
	cn      codec.Decoder
	clock   int64 // ticks per RTP timestamp unit of the current codec
	started bool
	ssrc    uint32
	lastTS  uint32
	lastPos int64
	late    int // packets in a row that came after their frame was emitted
	paused  bool
	// Sequence numbers: gaps are lost packets.
	seqOK   bool
	seqSSRC uint32
	lastSeq uint16
	// end is one past the last speech sample written (ticks), endDec the
	// decoder that wrote it: a gap after it is concealed by that decoder.
	end    int64
	endDec codec.Decoder
	// Comfort noise plays from cnPos on while cnOn, until speech.
	cnOn  bool
	cnPos int64
}

// lateReanchor is how many packets in a row may come after their frame was
// emitted before the direction is re-anchored on arrival time: a sender
// whose packets fall behind their timestamps by more than the delay (an
// overloaded Asterisk feeding the ARI tap drifted 0.1–0.6 s) would otherwise
// be heard as silence until the drift reached a whole second.
const lateReanchor = 5

// Call is the decoded audio of one call. Feed runs on the packet path;
// Subscribe, Stats and Close may be called from other goroutines.
type Call struct {
	cfg     Config
	delay   int64 // ticks
	rate    int   // frame rate
	mu      sync.Mutex
	started bool
	start   time.Time
	next    int64 // next frame to emit
	end     int64 // one past the last tick written
	dirs    [2]direction
	scratch Frame
	stats   Stats
	dropped uint64 // by subscriptions already closed
	subs    []*Subscription
	closed  bool
	dynamic [128]string // encoding names of dynamic payload types (SDP rtpmap)
	failed  []string    // codecs that could not be decoded, logged once
}

// validRate rounds r down to a frame rate the timeline supports (a
// divisor of 48000 that is a multiple of 8000); 0 gives def.
func validRate(r, def int) int {
	switch {
	case r <= 0:
		return def
	case r >= 48000:
		return 48000
	case r >= 24000:
		return 24000
	case r >= 16000:
		return 16000
	}
	return 8000
}

// NewCall returns an empty call timeline.
func NewCall(cfg Config) *Call {
	if cfg.Delay <= 0 {
		cfg.Delay = DefaultDelay
	}
	cfg.Delay = min(cfg.Delay, maxDelay)
	cfg.MaxRate = validRate(cfg.MaxRate, MaxRate)
	cfg.Rate = min(validRate(cfg.Rate, SampleRate), cfg.MaxRate)
	c := &Call{cfg: cfg, delay: ticksOf(cfg.Delay), rate: cfg.Rate}
	for i := range c.dirs {
		c.dirs[i].ring = make([]int16, ringFrames*c.rate/50)
	}
	c.scratch.Reset(c.rate)
	return c
}

// ticksOf converts a duration to timeline ticks, without overflowing
// (int64(d)*tickRate would past 53 hours).
func ticksOf(d time.Duration) int64 {
	return int64(d/time.Second)*tickRate + int64(d%time.Second)*tickRate/int64(time.Second)
}

// Feed adds one RTP packet: dir is who sent it, payload the RTP payload, at
// its capture time. While paused its samples are written as silence, so the
// timeline keeps its length. Packets no decoder takes (events, unknown
// or undecodable codecs) only advance the clock.
func (c *Call) Feed(dir Dir, hdr *rtp.Header, payload []byte, at time.Time, paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || dir > FromCallee {
		return
	}
	c.stats.Packets++
	if !c.started {
		c.started, c.start = true, at
	}
	now := max(ticksOf(at.Sub(c.start)), 0)
	d := &c.dirs[dir]
	d.paused = paused
	lost := d.sequence(hdr)
	name := c.nameOf(hdr.PayloadType)
	switch name {
	case "", codec.Event:
		c.stats.Undecodable++
		d.endDec = nil // no speech is concealed across events
		c.emitDue(now)
		return
	case codec.CN:
		c.comfortNoise(d, hdr, payload, now)
		c.emitDue(now)
		return
	}
	dec := c.decoder(d, name)
	if dec == nil {
		c.stats.Undecodable++
		c.emitDue(now)
		return
	}
	if lost > 0 && lost <= maxConcealPackets && d.endDec == dec && d.started && d.ssrc == hdr.SSRC {
		c.conceal(d, dec, payload, lost, d.lastPos+int64(int32(hdr.Timestamp-d.lastTS))*d.clock)
	}
	n, err := dec.Decode(payload, d.pcm[:])
	if err != nil || n == 0 {
		c.stats.Undecodable++
		c.emitDue(now)
		return
	}
	rate := dec.Rate()
	n = min(n, int(int64(maxPayload)*int64(rate)/tickRate))
	dur := int64(n) * tickRate / int64(rate)
	pos := c.place(d, hdr, now, dur)
	if d.cnOn {
		c.fillNoise(d, pos)
		d.cnOn = false
	}
	c.write(d, d.pcm[:n], rate, pos, paused)
	d.end, d.endDec = pos+dur, dec
	c.emitDue(now)
}

// sequence notes hdr's sequence number and returns how many packets of the
// stream were lost just before it (0 for the first, a duplicate, a
// reordered one or a new SSRC).
func (d *direction) sequence(hdr *rtp.Header) int {
	if !d.seqOK || d.seqSSRC != hdr.SSRC {
		d.seqOK, d.seqSSRC, d.lastSeq = true, hdr.SSRC, hdr.SequenceNumber
		return 0
	}
	delta := int16(hdr.SequenceNumber - d.lastSeq)
	if delta <= 0 {
		return 0
	}
	d.lastSeq = hdr.SequenceNumber
	return int(delta) - 1
}

// place returns the timeline position (ticks) of a packet of dur ticks by
// its RTP timestamp, re-anchoring the direction on arrival time when its
// stream starts, jumps or falls behind.
func (c *Call) place(d *direction, hdr *rtp.Header, now, dur int64) int64 {
	var pos int64
	switch {
	case !d.started || d.ssrc != hdr.SSRC:
		pos = now
		d.started, d.ssrc = true, hdr.SSRC
		d.lastPos, d.lastTS = pos, hdr.Timestamp
	default:
		pos = d.lastPos + int64(int32(hdr.Timestamp-d.lastTS))*d.clock
		if pos-now > reanchor || now-pos > reanchor {
			pos = now
			c.stats.Reanchored++
			d.lastPos, d.lastTS = pos, hdr.Timestamp
		} else if pos > d.lastPos {
			d.lastPos, d.lastTS = pos, hdr.Timestamp
		}
		if pos > now && pos+dur > (c.next+ringFrames)*frameTicks {
			// A sender running ahead of the arrival clock: re-anchor it
			// rather than emit the other direction's frames early (they
			// would all come late and be silence).
			pos = now
			c.stats.Reanchored++
			d.lastPos, d.lastTS, d.late = pos, hdr.Timestamp, 0
		}
		if pos+dur <= c.next*frameTicks {
			if d.late++; d.late >= lateReanchor {
				pos = now
				c.stats.Reanchored++
				d.lastPos, d.lastTS, d.late = pos, hdr.Timestamp, 0
			}
		} else {
			d.late = 0
		}
	}
	return pos
}

// conceal fills the gap of lost packets between the direction's last
// speech and pos with the decoder's concealment (Opus: the next packet's
// in-band FEC for a single lost one).
func (c *Call) conceal(d *direction, dec codec.Decoder, next []byte, lost int, pos int64) {
	gap := pos - d.end
	if gap <= 0 || gap > maxConceal {
		return
	}
	rate := dec.Rate()
	want := int(gap * int64(rate) / tickRate)
	n := 0
	if f, ok := dec.(interface {
		DecodeFEC(p []byte, out []int16, n int) (int, error)
	}); ok && lost == 1 {
		n, _ = f.DecodeFEC(next, d.pcm[:], want)
	}
	if n <= 0 {
		n = dec.Conceal(d.pcm[:], want)
	}
	if n <= 0 {
		return
	}
	c.stats.Concealed += uint64(lost)
	c.write(d, d.pcm[:n], rate, d.end, d.paused)
}

// comfortNoise starts (or re-levels) a direction's comfort noise: from the
// CN packet's position on until the direction's next speech packet.
func (c *Call) comfortNoise(d *direction, hdr *rtp.Header, payload []byte, now int64) {
	if d.cn == nil {
		d.cn, _ = codec.New(codec.CN, SampleRate)
	}
	if len(payload) == 0 {
		c.stats.Undecodable++
		return
	}
	if d.clock == 0 {
		d.clock = tickRate / SampleRate
	}
	pos := c.place(d, hdr, now, 0)
	if d.cnOn {
		c.fillNoise(d, pos) // at the old level up to the new one
	} else {
		d.cnOn, d.cnPos = true, max(pos, c.next*frameTicks)
	}
	_, _ = d.cn.Decode(payload, d.pcm[:]) // takes the level
	d.endDec = nil                        // a gap after comfort noise is not concealed speech
}

// fillNoise writes the direction's comfort noise from cnPos up to to
// (ticks), within the frames not yet emitted; silence while paused.
func (c *Call) fillNoise(d *direction, to int64) {
	from := max(d.cnPos, c.next*frameTicks)
	to = min(to, (c.next+ringFrames)*frameTicks)
	if to <= from {
		return
	}
	d.cnPos = to
	if d.paused {
		return
	}
	per := int64(tickRate / c.rate)
	ring := int64(len(d.ring))
	for i := from / per; i < to/per; {
		k := i % ring
		m := min(to/per-i, ring-k)
		d.cn.Conceal(d.ring[k:k+m], int(m))
		i += m
	}
}

// write puts samples decoded at rate into the direction's ring at pos
// (ticks), resampled to the call's rate (raising the call's rate first
// when rate is higher), emitting frames to make room; the part that comes
// after its frame was emitted is dropped.
func (c *Call) write(d *direction, samples []int16, rate int, pos int64, paused bool) {
	if rate > c.rate {
		c.setRate(min(validRate(rate, rate), c.cfg.MaxRate))
	}
	out := samples
	if rate != c.rate {
		if d.rs == nil || d.rs.From() != rate || d.rs.To() != c.rate {
			d.rs = NewResampler(rate, c.rate)
		}
		if need := d.rs.OutLen(len(samples)); cap(d.out) < need {
			d.out = make([]int16, need, maxPayload*c.rate/tickRate+64)
		}
		out = d.out[:d.rs.Process(d.out[:cap(d.out)], samples)]
	}
	per := int64(tickRate / c.rate)
	dur := int64(len(samples)) * tickRate / int64(rate)
	// the ring must reach the packet's end
	c.advance((pos+dur+frameTicks-1)/frameTicks - ringFrames)
	skip := max(c.next*frameTicks-pos, 0) / per
	if skip > 0 {
		c.stats.Late++
	}
	first, ring := pos/per, int64(len(d.ring))
	for i := skip; i < int64(len(out)); i++ {
		v := int16(0)
		if !paused {
			v = out[i]
		}
		d.ring[(first+i)%ring] = v
	}
	c.end = max(c.end, pos+dur)
}

// setRate raises the frame rate: the frames not yet emitted are carried
// over (each new sample takes the nearest old one before it: a one-off
// step at the change).
func (c *Call) setRate(rate int) {
	if rate <= c.rate {
		return
	}
	old := c.rate
	per := rate / 50
	for i := range c.dirs {
		d := &c.dirs[i]
		ring := make([]int16, ringFrames*per)
		for j := range ring {
			ring[j] = d.ring[j*old/rate]
		}
		d.ring, d.rs = ring, nil
	}
	c.rate = rate
	c.scratch.Reset(rate)
}

// MapPayloadType names a dynamic payload type (96–127) of this call, as
// the SDP's rtpmap does (e.g. 111 → "opus"); static types need no mapping.
func (c *Call) MapPayloadType(pt uint8, name string) {
	if pt < 96 || pt > 127 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dynamic[pt] = codec.Canonical(name)
}

// nameOf is the encoding name of payload type pt in this call ("" when
// unknown).
func (c *Call) nameOf(pt uint8) string {
	if pt >= 96 && pt <= 127 {
		return c.dynamic[pt]
	}
	return codec.StaticName(pt)
}

// decoder returns the direction's speech decoder for codec name, making it
// (at the codec's native rate, capped by MaxRate) when the stream's codec
// changed (a re-INVITE from PCMU to G.722); nil when this build cannot
// decode it.
func (c *Call) decoder(d *direction, name string) codec.Decoder {
	if name == d.speechN {
		return d.speech
	}
	d.endDec = nil
	if name == d.prevN {
		d.speech, d.prev, d.speechN, d.prevN = d.prev, d.speech, d.prevN, d.speechN
	} else {
		if d.prev != nil {
			d.prev.Close()
		}
		d.prev, d.prevN = d.speech, d.speechN
		dec, err := codec.New(name, min(codec.NativeRate(name), c.cfg.MaxRate))
		d.speech, d.speechN = dec, name
		if err != nil {
			d.speech = nil
			c.warn(name, err)
		}
	}
	if d.speech == nil {
		return nil
	}
	// RTP timestamps count at the codec's clock: its native rate (48000
	// for Opus, 16000 for wideband Speex), but 8000 for G.722 (RFC 3551).
	clock := codec.NativeRate(name)
	if name == codec.G722 {
		clock = 8000
	}
	d.clock = int64(tickRate / clock)
	return d.speech
}

// warn logs once per call and codec that a codec plays as silence.
func (c *Call) warn(name string, err error) {
	for _, f := range c.failed {
		if f == name {
			return
		}
	}
	c.failed = append(c.failed, name)
	if c.cfg.Log != nil {
		c.cfg.Log.Warn("codec not decoded, played as silence", "codec", name, "err", err)
	}
}

// maxGapFrames bounds the silence one packet can make a call emit: 4 hours
// (VoIPmonitor's absolute_timeout). A capture clock that jumps further (a
// clock step, a capture file with a forged time) skips the frames past the
// ring instead of emitting years of silence to the recording and listeners.
const maxGapFrames = 4 * 3600 * 50

// emitDue emits every frame whose end is more than the delay behind now.
func (c *Call) emitDue(now int64) { c.advance((now - c.delay) / frameTicks) }

// advance emits frames until the next one is frame n; past maxGapFrames it
// emits what the ring holds and skips to n (counted in Stats.Skipped).
func (c *Call) advance(n int64) {
	if n-c.next > maxGapFrames {
		for range ringFrames {
			c.emit()
		}
		if n > c.next {
			c.stats.Skipped += uint64(n - c.next)
			c.next = n
		}
	}
	for c.next < n {
		c.emit()
	}
}

func (c *Call) emit() {
	f := &c.scratch
	f.Index = c.next
	f.Time = c.start.Add(time.Duration(c.next) * FrameDuration)
	for i := range c.dirs {
		if d := &c.dirs[i]; d.cnOn {
			c.fillNoise(d, (c.next+1)*frameTicks)
		}
	}
	n := int64(c.rate / 50)
	off := (c.next % ringFrames) * n
	seg := c.dirs[FromCaller].ring[off : off+n]
	copy(f.Caller, seg)
	clear(seg)
	seg = c.dirs[FromCallee].ring[off : off+n]
	copy(f.Callee, seg)
	clear(seg)
	c.next++
	c.stats.Frames++
	if c.cfg.Sink != nil {
		c.cfg.Sink(f)
	}
	if len(c.subs) > 0 {
		shared := f.Clone()
		for _, s := range c.subs {
			s.send(shared)
		}
	}
}

// Close emits the frames still held (up to the last sample written), then
// ends every subscription (their channels are closed). Feed is a no-op
// afterwards.
func (c *Call) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for c.next*frameTicks < c.end {
		c.emit()
	}
	c.closed = true
	for i := range c.dirs {
		for _, d := range []codec.Decoder{c.dirs[i].speech, c.dirs[i].prev, c.dirs[i].cn} {
			if d != nil {
				d.Close()
			}
		}
		c.dirs[i].speech, c.dirs[i].prev, c.dirs[i].cn, c.dirs[i].speechN, c.dirs[i].prevN, c.dirs[i].endDec = nil, nil, nil, "", "", nil
	}
	for _, s := range c.subs {
		c.dropped += s.Dropped()
		close(s.ch)
	}
	c.subs = nil
}

// Stats returns the counters so far.
func (c *Call) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Rate = c.rate
	st.Subscribers = len(c.subs)
	st.Dropped = c.dropped
	for _, s := range c.subs {
		st.Dropped += s.Dropped()
	}
	return st
}

// Subscribe returns a subscription to the frames emitted from now on,
// queued up to depth frames (0 = DefaultDepth); when the queue is full
// the oldest frame is dropped and counted. ErrClosed when the call ended.
func (c *Call) Subscribe(depth int) (*Subscription, error) {
	if depth <= 0 {
		depth = DefaultDepth
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	s := &Subscription{ch: make(chan *Frame, depth), call: c}
	c.subs = append(c.subs, s)
	return s, nil
}

// Subscription is one listener's bounded queue of frames.
type Subscription struct {
	ch      chan *Frame
	dropped atomic.Uint64
	call    *Call
}

// Frames returns the queue; it is closed when the call's audio ends or
// the subscription is closed.
func (s *Subscription) Frames() <-chan *Frame { return s.ch }

// Dropped returns how many frames this subscription lost to a full queue.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close stops the subscription and closes its channel. Safe to call more
// than once and after the call ended.
func (s *Subscription) Close() {
	c := s.call
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.subs, s)
	if i < 0 {
		return // closed already
	}
	c.subs = slices.Delete(c.subs, i, i+1)
	c.dropped += s.Dropped()
	close(s.ch)
}

// send queues f, dropping the oldest queued frame when full. Runs with the
// call's lock held; the reader may be receiving concurrently.
func (s *Subscription) send(f *Frame) { SendDropOldest(s.ch, f, &s.dropped) }

// SendDropOldest queues f on ch without blocking: when ch is full the oldest
// queued frame makes room, and every frame lost is counted in dropped. The
// caller must be ch's only sender (a reader may receive concurrently).
func SendDropOldest(ch chan *Frame, f *Frame, dropped *atomic.Uint64) {
	select {
	case ch <- f:
		return
	default:
	}
	select {
	case <-ch:
		dropped.Add(1)
	default:
	}
	select {
	case ch <- f:
	default:
		dropped.Add(1)
	}
}
