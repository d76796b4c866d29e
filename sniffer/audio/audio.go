// Package audio turns one call's RTP, both directions, into a single
// timeline of 20 ms frames of 8 kHz signed 16-bit PCM: caller and callee
// channels, aligned by RTP timestamps (anchored on arrival time when a
// stream starts or jumps), with gaps and paused stretches silent.
//
// One Call decodes once no matter how many consumers: a synchronous Sink
// (the spool's WAV writer) and any number of bounded subscriptions (live
// listening) that drop their oldest frame when full and count the drops.
//
// G.711 µ-law and A-law are decoded; other codecs (G.722, G.729, Opus, …)
// are not (no well-kept pure-Go decoder is used) and play as silence,
// counted in Stats.Undecodable.
package audio

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

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
// timeline keeps its length. Packets of other codecs than G.711 only
// advance the clock.
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
	table, ok := decodeTable(hdr.PayloadType)
	if !ok {
		c.stats.Undecodable++
		c.emitDue(now)
		return
	}
	d := &c.dirs[dir]
	var pos int64
	switch {
	case !d.started || d.ssrc != hdr.SSRC:
		pos = now
		d.started, d.ssrc = true, hdr.SSRC
		d.lastPos, d.lastTS = pos, hdr.Timestamp
	default:
		pos = d.lastPos + int64(int32(hdr.Timestamp-d.lastTS))
		if pos-now > reanchor || now-pos > reanchor {
			pos = now
			c.stats.Reanchored++
			d.lastPos, d.lastTS = pos, hdr.Timestamp
		} else if pos > d.lastPos {
			d.lastPos, d.lastTS = pos, hdr.Timestamp
		}
		if pos > now && pos+int64(len(payload)) > (c.next+ringFrames)*FrameSamples {
			// A sender running ahead of the arrival clock: re-anchor it
			// rather than emit the other direction's frames early (they
			// would all come late and be silence).
			pos = now
			c.stats.Reanchored++
			d.lastPos, d.lastTS, d.late = pos, hdr.Timestamp, 0
		}
		if pos+int64(len(payload)) <= c.next*FrameSamples {
			if d.late++; d.late >= lateReanchor {
				pos = now
				c.stats.Reanchored++
				d.lastPos, d.lastTS, d.late = pos, hdr.Timestamp, 0
			}
		} else {
			d.late = 0
		}
	}
	if len(payload) > maxPayload {
		payload = payload[:maxPayload]
	}
	n := int64(len(payload))
	for pos+n > (c.next+ringFrames)*FrameSamples {
		c.emit()
	}
	skip := max(c.next*FrameSamples-pos, 0)
	if skip > 0 {
		c.stats.Late++
	}
	for i := skip; i < n; i++ {
		v := int16(0)
		if !paused {
			v = table[payload[i]]
		}
		d.ring[(pos+i)%ringSamples] = v
	}
	c.end = max(c.end, pos+n)
	c.emitDue(now)
}

func decodeTable(pt uint8) (*[256]int16, bool) {
	switch pt {
	case rtp.PTPCMU:
		return &ulaw, true
	case rtp.PTPCMA:
		return &alaw, true
	}
	return nil, false
}

// ulaw and alaw are filled once from the rtp package's decoders and only
// read afterwards.
var ulaw, alaw = func() (u, a [256]int16) {
	for i := range u {
		u[i] = rtp.ULawToLinear(byte(i))
		a[i] = rtp.ALawToLinear(byte(i))
	}
	return u, a
}()

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
