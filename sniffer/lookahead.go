package sniffer

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"pbx-agent/internal/prefetch"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
)

// Reading ahead. With many calls (BenchmarkActiveCalls: 10,000 and
// 100,000) a media packet's state is out of the caches, and finding it is
// a chain of dependent misses: the media-index slot, the call, its media
// state, the stream (and its jitter-buffer queues). One packet at a time,
// the core waits for each in turn. When frames come in batches
// (HandleFrames; the media workers' runs), the packet path walks those
// chains ahead of the packet it handles, one link per step, aheadDist
// frames apart: it asks for the slot of frame k+5·aheadDist, reads the
// slot of frame k+4·aheadDist (asked for a few packets ago, so in the
// cache by now) and asks for its call, and so on down to the stream's
// jitter-buffer queue slots of frame k+aheadDist, then handles frame k.
// The misses then overlap with the work on the frames before them.
// Reading ahead changes no state and only reads what the goroutine doing
// it writes: the output is the same, a wrong guess (the table changed in
// between) only costs the miss.

// aheadFrom is how many media addresses (two per call) the call table
// follows before the packet path reads ahead: below, the calls' state
// stays in the core's caches (300 calls: reading ahead costs ≈ 10 % more
// CPU per packet and gains nothing). Tests set it to 0.
var aheadFrom = 2048

// A media worker reads ahead from a quarter of that many addresses of its
// own calls: its calls' state goes out of its core's caches sooner, the
// frames coming in from another core (replay of 1,000 calls with two
// workers, 500 calls each: 18 % less wall time with reading ahead, none
// lost or gained at 150 calls each).
func workerAheadFrom() int { return aheadFrom / 4 }

// aheadDist is how many frames apart the steps run: the handling of that
// many frames (≈ 0.3 µs each) outlasts a miss to memory.
const aheadDist = 2

// aheadRing holds the frames read ahead (≥ 5·aheadDist+1, a power of two).
const aheadRing = 16

// Frame is a captured frame for HandleFrames.
type Frame struct {
	Data []byte
	Time time.Time
}

// aheadFrame is what reading ahead learned of one frame so far.
type aheadFrame struct {
	call  call.Ahead
	mc    *mediaCall   // its media state (step 3)
	st    *mediaStream // its stream (step 4)
	ssrc  uint32
	media bool // a UDP datagram the media lookup will see
	rtp   bool // … with an RTP header (ssrc)
}

type readAhead struct {
	ring [aheadRing]aheadFrame
}

// HandleFrames runs frames through the path as HandleFrame does one by
// one, reading their calls' state ahead (see above).
func (s *Sniffer) HandleFrames(link layers.LinkType, frames []Frame) error {
	s.lock()
	defer s.unlock()
	s.batching = true
	defer s.endBatch()
	ahead := s.dec != nil && link == s.link && len(frames) > 1 && s.table.MediaAddresses() >= aheadFrom
	const d = aheadDist
	for k := -5 * d; k < len(frames); k++ {
		if ahead {
			if j := k + 5*d; j >= 0 && j < len(frames) {
				if s.dec.Peek(frames[j].Data, &s.peek) { // its addresses, when the fast path takes it
					s.probe(j, &s.peek)
				} else {
					s.ra.ring[j%aheadRing].media = false
				}
			}
			if j := k + 4*d; j >= 0 && j < len(frames) {
				s.findCall(j)
			}
			if s.pipe == nil { // else the media state is the workers'
				s.ra.mediaAhead(k, len(frames))
			}
		}
		if k >= 0 {
			if err := s.handleFrame(link, frames[k].Data, frames[k].Time); err != nil {
				return err
			}
		}
	}
	return nil
}

// eventsAhead reads ahead, for the parallel packet path about to handle
// evs[i] (a reader's batch, frames decoded), the calls of the frames after
// it (steps 1 and 2: the media workers hold the media state).
func (s *Sniffer) eventsAhead(evs []event, i int) {
	if s.table.MediaAddresses() < aheadFrom {
		return
	}
	const d = aheadDist
	probe := func(j int) {
		if j < len(evs) {
			if e := &evs[j]; e.kind == evFrame && e.ok {
				s.probe(j, e.pkt)
			} else {
				s.ra.ring[j%aheadRing].media = false
			}
		}
	}
	if i == 0 { // the batch's first frames: at once
		for j := range 2 * d {
			probe(j)
		}
		for j := range d {
			s.findCall(j)
		}
	}
	probe(i + 2*d)
	if i+d < len(evs) {
		s.findCall(i + d)
	}
}

// mediaAhead runs steps 3 to 5 for the frames after frame k of n.
func (ra *readAhead) mediaAhead(k, n int) {
	const d = aheadDist
	if j := k + 3*d; j >= 0 && j < n {
		ra.ring[j%aheadRing].callAhead()
	}
	if j := k + 2*d; j >= 0 && j < n {
		ra.ring[j%aheadRing].streamAhead()
	}
	if j := k + d; j >= 0 && j < n {
		if st := ra.ring[j%aheadRing].st; st != nil {
			st.stats.PrefetchQueues()
		}
	}
}

// handleRun handles a run of datagrams of the tracker's calls (a media
// worker's, under m.mu), reading their streams ahead (steps 3 to 5).
func (m *mediaTracker) handleRun(ms []call.Media) {
	if 2*len(m.calls) < workerAheadFrom() {
		for i := range ms {
			m.handle(&ms[i])
		}
		return
	}
	const d = aheadDist
	for k := -4 * d; k < len(ms); k++ {
		if j := k + 4*d; j >= 0 && j < len(ms) {
			f, md := &m.ahead.ring[j%aheadRing], &ms[j]
			f.media, f.rtp, f.ssrc, f.call.State = true, md.HeaderOK, md.RTP.SSRC, md.State
		}
		m.ahead.mediaAhead(k, len(ms))
		if k >= 0 {
			m.handle(&ms[k])
		}
	}
}

// runBatches is Run for a source that hands out frames in batches (a
// capture file replayed as fast as it reads): each batch is handled
// reading ahead.
func (s *Sniffer) runBatches(ctx context.Context, src capture.Batcher) error {
	const batch = 64
	data := make([][]byte, batch)
	cis := make([]gopacket.CaptureInfo, batch)
	frames := make([]Frame, batch)
	link := src.LinkType()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := src.ReadFrames(data, cis)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
		for i := range n {
			frames[i] = Frame{data[i], cis[i].Timestamp}
		}
		if err := s.HandleFrames(link, frames[:n]); err != nil {
			return err
		}
	}
}

// probe is step 1 of frame j (decoded to p): ask for its media-index slot.
func (s *Sniffer) probe(j int, p *decode.Packet) {
	f := &s.ra.ring[j%aheadRing]
	f.media = p.Transport == decode.UDP && !s.cfg.SIPPorts.Has(p.Src.Port()) && !s.cfg.SIPPorts.Has(p.Dst.Port())
	if !f.media {
		return
	}
	s.table.Probe(&f.call, p.Src, p.Dst)
	if s.pipe != nil {
		return // the streams are the workers': their runs read ahead their own (handleRun)
	}
	b := p.Payload // in another core's cache when a reader decoded the frame
	if f.rtp = len(b) >= rtp.HeaderSize && b[0]>>6 == 2; f.rtp {
		f.ssrc = binary.BigEndian.Uint32(b[8:12])
	}
}

// findCall is step 2: the slot to the call, whose lines are asked for.
func (s *Sniffer) findCall(j int) {
	if f := &s.ra.ring[j%aheadRing]; f.media {
		s.table.Find(&f.call)
	}
}

// callAhead is step 3: the call to its media state, asked for.
func (f *aheadFrame) callAhead() {
	f.mc, f.st = nil, nil
	if !f.media || !f.rtp || f.call.State == nil {
		return
	}
	if mc, _ := (*f.call.State).(*mediaCall); mc != nil {
		prefetch.Lines(unsafe.Pointer(mc), 2)
		f.mc = mc
	}
}

// streamAhead is step 4: the media state to the stream with the packet's
// SSRC among the call's first streams (the full match is the handler's),
// whose per-packet lines are asked for. Step 5 asks for its queue slots.
func (f *aheadFrame) streamAhead() {
	mc := f.mc
	if mc == nil {
		return
	}
	for i, k := range mc.keys[:min(len(mc.streams), inlineKeys)] {
		if k.ssrc == f.ssrc {
			f.st = mc.first[i]
			f.st.stats.Prefetch(mc.opts.sims)
			return
		}
	}
}
