package rtp

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// Quality over time (VoIPmonitor's savegraph, at one point per second): a
// stream keeps, per second of capture time, the packets received, the
// packets lost, the largest interarrival jitter and a MOS of that second.
// The series is bounded: past MaxSeriesPoints points its resolution halves
// (2 s, 4 s, … per point), so a stream never holds more than
// MaxSeriesPoints points whatever its length.

// MaxSeriesPoints bounds a stream's series: one hour at one point per second.
const MaxSeriesPoints = 3600

// Point is one step of a stream's series.
type Point struct {
	T        uint32  // seconds from the series start to the step's start
	Received uint16  // packets that arrived in the step
	Lost     uint16  // packets that should have arrived in the step and did not
	Jitter   float32 // largest RFC 3550 interarrival jitter in the step, ms
	MOS      float32 // MOS of the step (VoIPmonitor's E-model on its loss)
}

// Series is a stream's quality over time.
type Series struct {
	Start  time.Time // the first step's start (a whole second of capture time)
	Step   int       // seconds per point: 1, or a power of two once downsampled
	Points []Point
}

// step is one point while the stream runs: 8 bytes, its time implied by
// its index (index i covers [start+i·step, start+(i+1)·step)).
type step struct {
	received, lost uint16
	jitter         uint16 // tenths of ms, saturated
	bursts         uint16 // loss events (for the step's MOS)
}

// seriesState is what a Stream keeps to build its series: the open second
// and the closed steps before it (dense: seconds without packets are empty
// steps). Nothing in it allocates per packet; steps grows by append, at
// most log2(MaxSeriesPoints) times per stream.
type seriesState struct {
	start, cur int64 // unix seconds of the first step and of the open second (0 = none yet)
	step       int64 // seconds per step
	open       step
	steps      []step
}

// seriesPacket accounts one packet arriving at now (ns) that changed the
// stream's loss count by lost (negative: a late packet filled a hole).
func (s *Stream) seriesPacket(now int64, lost int64) {
	sec := now / int64(time.Second)
	ss := s.series
	if ss.cur == 0 {
		ss.start, ss.step, ss.cur = sec, 1, sec
	}
	if sec > ss.cur {
		ss.closeSecond(sec)
	}
	if sec >= ss.cur {
		ss.open.received = satAdd16(ss.open.received, 1)
		ss.open.jitter = max(ss.open.jitter, tenths(s.jitter))
	}
	switch {
	case lost > 0:
		s.seriesLoss(now, lost)
	case lost < 0:
		ss.open.lost -= uint16(min(int64(ss.open.lost), -lost))
	}
}

func tenths(ms float64) uint16 { return uint16(min(max(ms*10+0.5, 0), 65535)) }

// seriesLoss places lost packets at the seconds they were due: one ptime
// apart, back from the packet that revealed them. It steps a second at a
// time, not a packet: a sender's sequence jump (up to maxDropout packets)
// costs a few steps, not thousands per packet.
func (s *Stream) seriesLoss(now, lost int64) {
	ptime := s.ptimeMs
	if ptime <= 0 {
		ptime = 20
	}
	step := ptime * int64(time.Millisecond)
	at := now - step // the last missing packet
	burstSec := int64(-1)
	for lost > 0 {
		sec := at / int64(time.Second)
		p := s.series.at(sec)
		if p == nil {
			return // before the series started
		}
		n := int64(1) // the missing packets due in sec: at, at-step, … (before 1970: one at a time)
		if at >= 0 {
			n = min((at-sec*int64(time.Second))/step+1, lost)
		}
		p.lost = satAdd16(p.lost, uint16(min(n, 1<<16-1)))
		if sec != burstSec {
			p.bursts = satAdd16(p.bursts, 1)
			burstSec = sec
		}
		lost -= n
		at -= n * step
	}
}

// at is the step that holds unix second sec (before the open second).
func (ss *seriesState) at(sec int64) *step {
	if sec >= ss.cur {
		return &ss.open
	}
	if sec < ss.start {
		return nil
	}
	i := int((sec - ss.start) / ss.step)
	for len(ss.steps) <= i {
		ss.steps = append(ss.steps, step{}) // a second without packets
	}
	return &ss.steps[i]
}

// closeSecond adds the open second to its step and opens second sec,
// halving the resolution first when sec would be past the bound.
func (ss *seriesState) closeSecond(sec int64) {
	for (sec-ss.start)/ss.step >= MaxSeriesPoints {
		ss.downsample()
	}
	i := int((ss.cur - ss.start) / ss.step)
	for len(ss.steps) <= i {
		ss.steps = append(ss.steps, step{}) // seconds without packets
	}
	mergeStep(&ss.steps[i], &ss.open)
	ss.cur, ss.open = sec, step{}
}

// downsample doubles the step, merging pairs of steps.
func (ss *seriesState) downsample() {
	ss.step *= 2
	n := (len(ss.steps) + 1) / 2
	for i := range n {
		m := ss.steps[2*i]
		if 2*i+1 < len(ss.steps) {
			mergeStep(&m, &ss.steps[2*i+1])
		}
		ss.steps[i] = m
	}
	ss.steps = ss.steps[:n]
}

func mergeStep(dst, p *step) {
	dst.received = satAdd16(dst.received, p.received)
	dst.lost = satAdd16(dst.lost, p.lost)
	dst.bursts = satAdd16(dst.bursts, p.bursts)
	dst.jitter = max(dst.jitter, p.jitter)
}

func satAdd16(a, b uint16) uint16 {
	if s := uint32(a) + uint32(b); s < 1<<16 {
		return uint16(s)
	}
	return 1<<16 - 1
}

// Series returns the stream's series so far (the open second included),
// each point with its MOS; empty when the stream keeps none. It allocates:
// call it when the call ends, not per packet.
func (s *Stream) Series() Series {
	ss := s.series
	if ss == nil || ss.cur == 0 {
		return Series{}
	}
	steps := slices.Clone(ss.steps)
	i := int((ss.cur - ss.start) / ss.step)
	for len(steps) <= i {
		steps = append(steps, step{})
	}
	mergeStep(&steps[i], &ss.open)
	pts := make([]Point, len(steps))
	for i, p := range steps {
		pts[i] = Point{T: uint32(int64(i) * ss.step), Received: p.received, Lost: p.lost,
			Jitter: float32(p.jitter) / 10, MOS: float32(roundMOS(stepMOS(&p, s.codec)))}
	}
	return Series{Start: time.Unix(ss.start, 0).UTC(), Step: int(ss.step), Points: pts}
}

// stepMOS is VoIPmonitor's interval MOS on one step's loss (a step that
// lost every packet scores 1).
func stepMOS(p *step, c Codec) float64 {
	if p.received == 0 {
		if p.lost > 0 {
			return 1
		}
		return MOSMax
	}
	return IntervalMOS(int(p.lost), int(p.bursts), int(p.received), c)
}

// pointSize is one point in the binary form.
const pointSize = 11

// MarshalBinary encodes the points (not Start and Step, which the store
// keeps in their own columns) as 11 bytes each, little-endian: T uint32,
// received uint16, lost uint16, jitter in tenths of ms uint16 (saturated),
// MOS×10 uint8.
func (s *Series) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(s.Points)*pointSize)
	for _, p := range s.Points {
		j := p.Jitter*10 + 0.5
		b = binary.LittleEndian.AppendUint32(b, p.T)
		b = binary.LittleEndian.AppendUint16(b, p.Received)
		b = binary.LittleEndian.AppendUint16(b, p.Lost)
		b = binary.LittleEndian.AppendUint16(b, uint16(min(max(j, 0), 65535)))
		b = append(b, uint8(min(max(p.MOS*10+0.5, 0), 255)))
	}
	return b, nil
}

// UnmarshalBinary decodes MarshalBinary's form into s.Points.
func (s *Series) UnmarshalBinary(b []byte) error {
	if len(b)%pointSize != 0 {
		return fmt.Errorf("%w: series of %d bytes is not a whole number of %d-byte points", ErrSeries, len(b), pointSize)
	}
	if len(b)/pointSize > MaxSeriesPoints {
		return fmt.Errorf("%w: %d points, more than %d", ErrSeries, len(b)/pointSize, MaxSeriesPoints)
	}
	s.Points = make([]Point, 0, len(b)/pointSize)
	var prev uint32
	for i := 0; i < len(b); i += pointSize {
		p := Point{T: binary.LittleEndian.Uint32(b[i:]), Received: binary.LittleEndian.Uint16(b[i+4:]),
			Lost: binary.LittleEndian.Uint16(b[i+6:]), Jitter: float32(binary.LittleEndian.Uint16(b[i+8:])) / 10,
			MOS: float32(b[i+10]) / 10}
		if i > 0 && p.T <= prev {
			return fmt.Errorf("%w: point %d at %d s is not after %d s", ErrSeries, i/pointSize, p.T, prev)
		}
		prev = p.T
		s.Points = append(s.Points, p)
	}
	return nil
}
