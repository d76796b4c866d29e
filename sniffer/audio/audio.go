// Package audio turns one call's RTP, both directions, into a single
// timeline of 20 ms frames of 8 kHz signed 16-bit PCM: caller and callee
// channels, aligned by RTP timestamps (anchored on arrival time when a
// stream starts or jumps), with gaps and paused stretches silent.
//
// One Call decodes once no matter how many consumers: a synchronous Sink
// (the spool's WAV writer) and any number of bounded subscriptions (live
// listening) that drop their oldest frame when full and count the drops.
//
// Payloads are decoded by the codec package (G.711, G.722, GSM, G.729,
// Opus, comfort noise; the cgo ones only in a cgo build) at 8 kHz. A codec
// without a decoder in this build plays as silence, counted in
// Stats.Undecodable and logged once per call and codec; RFC 4733 events
// and unknown payload types only advance the clock.
package audio

import (
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/rtp"
)

const (
	// SampleRate is the PCM sample rate (G.711's).
	SampleRate = 8000
	// FrameSamples is the number of samples per channel in one Frame.
	FrameSamples = 160
	// FrameDuration is the time one Frame covers.
	FrameDuration = 20 * time.Millisecond

	sampleDur   = time.Second / SampleRate
	ringFrames  = 16 // reorder window: 320 ms per direction
	ringSamples = ringFrames * FrameSamples
	// maxPayload bounds the samples taken from one packet so that making
	// room in the ring never emits a frame the packet still writes to.
	maxPayload = ringSamples - 2*FrameSamples
	// reanchor is how far (in samples) a stream's timestamp clock may drift
	// from arrival time before it is re-anchored on arrival (a timestamp
	// jump, a long hold).
	reanchor = SampleRate

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

// Frame is 20 ms of both channels. Frames handed to subscribers are shared
// between them and must not be modified.
type Frame struct {
	Index  int64     // frame number since the call's first RTP packet
	Time   time.Time // capture time of the frame's first sample
	Caller [FrameSamples]int16
	Callee [FrameSamples]int16
}

// Mix writes the saturated sum of both channels to dst.
func (f *Frame) Mix(dst *[FrameSamples]int16) {
	for i := range dst {
		s := int32(f.Caller[i]) + int32(f.Callee[i])
		dst[i] = int16(max(min(s, 32767), -32768))
	}
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
	var m [FrameSamples]int16
	f.Mix(&m)
	return AppendS16LE(dst, m[:])
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
	Subscribers int
	Dropped     uint64 // frames dropped by full subscriptions, all of them together
}

type direction struct {
	ring    [ringSamples]int16
	pcm     [codec.MaxSamples]int16 // one packet decoded
	speech  codec.Decoder           // decoder of the last speech payload type
	speechN string
	cn      codec.Decoder
	started bool
	ssrc    uint32
	lastTS  uint32
	lastPos int64
	late    int // packets in a row that came after their frame was emitted
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
	delay   int64 // samples
	mu      sync.Mutex
	started bool
	start   time.Time
	next    int64 // next frame to emit
	end     int64 // one past the last sample written
	dirs    [2]direction
	scratch Frame
	stats   Stats
	dropped uint64 // by subscriptions already closed
	subs    []*Subscription
	closed  bool
	dynamic [128]string // encoding names of dynamic payload types (SDP rtpmap)
	failed  []string    // codecs that could not be decoded, logged once
}

// NewCall returns an empty call timeline.
func NewCall(cfg Config) *Call {
	if cfg.Delay <= 0 {
		cfg.Delay = DefaultDelay
	}
	cfg.Delay = min(cfg.Delay, maxDelay)
	return &Call{cfg: cfg, delay: int64(cfg.Delay / sampleDur)}
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
	now := max(int64(at.Sub(c.start)/sampleDur), 0)
	d := &c.dirs[dir]
	dec := c.decoder(d, hdr.PayloadType)
	if dec == nil {
		c.stats.Undecodable++
		c.emitDue(now)
		return
	}
	n, err := dec.Decode(payload, d.pcm[:])
	if err != nil || n == 0 {
		c.stats.Undecodable++
		c.emitDue(now)
		return
	}
	samples := d.pcm[:min(n, maxPayload)]
	// RTP timestamps count at the codec's clock: 8000 for G.722 (RFC 3551)
	// and the narrowband codecs, 48000 for Opus.
	clockDiv := int64(1)
	if dec.Name() == codec.Opus {
		clockDiv = 6
	}
	var pos int64
	switch {
	case !d.started || d.ssrc != hdr.SSRC:
		pos = now
		d.started, d.ssrc = true, hdr.SSRC
		d.lastPos, d.lastTS = pos, hdr.Timestamp
	default:
		pos = d.lastPos + int64(int32(hdr.Timestamp-d.lastTS))/clockDiv
		if pos-now > reanchor || now-pos > reanchor {
			pos = now
			c.stats.Reanchored++
			d.lastPos, d.lastTS = pos, hdr.Timestamp
		} else if pos > d.lastPos {
			d.lastPos, d.lastTS = pos, hdr.Timestamp
		}
		if pos > now && pos+int64(len(samples)) > (c.next+ringFrames)*FrameSamples {
			// A sender running ahead of the arrival clock: re-anchor it
			// rather than emit the other direction's frames early (they
			// would all come late and be silence).
			pos = now
			c.stats.Reanchored++
			d.lastPos, d.lastTS, d.late = pos, hdr.Timestamp, 0
		}
		if pos+int64(len(samples)) <= c.next*FrameSamples {
			if d.late++; d.late >= lateReanchor {
				pos = now
				c.stats.Reanchored++
				d.lastPos, d.lastTS, d.late = pos, hdr.Timestamp, 0
			}
		} else {
			d.late = 0
		}
	}
	n = len(samples)
	for pos+int64(n) > (c.next+ringFrames)*FrameSamples {
		c.emit()
	}
	skip := max(c.next*FrameSamples-pos, 0)
	if skip > 0 {
		c.stats.Late++
	}
	for i := skip; i < int64(n); i++ {
		v := int16(0)
		if !paused {
			v = samples[i]
		}
		d.ring[(pos+i)%ringSamples] = v
	}
	c.end = max(c.end, pos+int64(n))
	c.emitDue(now)
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

// decoder returns the direction's decoder for payload type pt, making it
// when the stream's codec changed (a re-INVITE from PCMU to G.722); nil
// when pt is not audio this build decodes (events, unknown types).
func (c *Call) decoder(d *direction, pt uint8) codec.Decoder {
	name := codec.StaticName(pt)
	if pt >= 96 && pt <= 127 {
		name = c.dynamic[pt]
	}
	switch name {
	case "", codec.Event:
		return nil
	case codec.CN:
		if d.cn == nil {
			d.cn, _ = codec.New(codec.CN, SampleRate)
		}
		return d.cn
	case d.speechN:
		return d.speech
	}
	if d.speech != nil {
		d.speech.Close()
	}
	dec, err := codec.New(name, SampleRate)
	d.speech, d.speechN = dec, name
	if err != nil {
		d.speech = nil
		c.warn(name, err)
	}
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

// emitDue emits every frame whose end is more than the delay behind now.
func (c *Call) emitDue(now int64) {
	for (c.next+1)*FrameSamples+c.delay <= now {
		c.emit()
	}
}

func (c *Call) emit() {
	f := &c.scratch
	f.Index = c.next
	f.Time = c.start.Add(time.Duration(c.next) * FrameDuration)
	off := (c.next % ringFrames) * FrameSamples
	seg := c.dirs[FromCaller].ring[off : off+FrameSamples]
	copy(f.Caller[:], seg)
	clear(seg)
	seg = c.dirs[FromCallee].ring[off : off+FrameSamples]
	copy(f.Callee[:], seg)
	clear(seg)
	c.next++
	c.stats.Frames++
	if c.cfg.Sink != nil {
		c.cfg.Sink(f)
	}
	if len(c.subs) > 0 {
		shared := new(Frame)
		*shared = *f
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
	for c.next*FrameSamples < c.end {
		c.emit()
	}
	c.closed = true
	for i := range c.dirs {
		for _, d := range []codec.Decoder{c.dirs[i].speech, c.dirs[i].cn} {
			if d != nil {
				d.Close()
			}
		}
		c.dirs[i].speech, c.dirs[i].cn, c.dirs[i].speechN = nil, nil, ""
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
	for i, o := range c.subs {
		if o == s {
			c.subs = append(c.subs[:i], c.subs[i+1:]...)
			c.dropped += s.Dropped()
			close(s.ch)
			return
		}
	}
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
