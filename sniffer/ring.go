package sniffer

import (
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
)

// Stages of the parallel packet path (workers.go) hand events to each other
// in batches through a ring: a fixed set of preallocated batches, each an
// array of events, the packets they point to and an arena their bytes are
// copied into, so the steady state allocates nothing per packet. The
// producer fills the ring's current batch and passes it on when it is full,
// or when it is about to wait itself (the packet path before it waits for
// frames or paces a replay). A reader cannot know that a read will block,
// so the packet path, finding nothing passed on, waits a moment, then takes
// the reader's partly filled batch itself: a quiet link (live capture) is
// not held back waiting for a batch to fill, and a busy one moves whole
// batches.
//
// A datagram's bytes are copied at most once: a capture file is read into
// chunks (capture.Chunked) its reader's batches point into, a live
// source's reader copies them into its batch. The packet path hands a
// worker a pointer to the packet in the reader's batch. A buffer goes back
// for reuse only when nothing points into it any more: a chunk when the
// reader batches that point into it went back, a reader batch when the
// packet path and every worker batch that points into it are done with it.
// Each counts its references (refs; pin, unpin).

const (
	batchEvents = 512       // events per batch (fewer hand-offs: 256 cost ≈ 5 % more CPU with 2 workers)
	batchBytes  = 128 << 10 // arena bytes per batch (frames of the events)
	ringDepth   = 4         // batches per worker ring; a reader's has more (readerDepth)
	// The packet path with no frames takes a reader's partly filled batch
	// after stealAfter, waiting twice as long each time it found nothing,
	// up to stealMax (an idle capture wakes it at most 1/stealMax times a
	// second).
	stealAfter = 500 * time.Microsecond
	stealMax   = 20 * time.Millisecond
)

// readerDepth is the number of batches of a reader's ring: enough for the
// batches the workers' queued batches still point into, so a reader rarely
// waits for them.
func readerDepth(workers int) int { return ringDepth * (workers + 1) }

// readerPins is how many chunks a reader's batch may pin without growing
// its list.
func readerPins() int { return chunksFor(1) }

// chunksFor is how many chunks hold the frames of n reader batches (frames
// of up to 256 bytes: G.711 RTP in Ethernet is 214), with the chunk being
// read and one a batch began in.
func chunksFor(n int) int { return 2 + n*batchEvents*256/chunkBytes }

type evKind uint8

const (
	evFrame    evKind = iota // reader → packet path: a captured frame, decoded (pkt; ok, bad)
	evTimeout                // reader → packet path: the source had nothing for a while (rare.meta.Time)
	evEnd                    // reader → packet path: the source ended (rare.err, io.EOF at its end)
	evMedia                  // packet path → worker: a datagram of a known call
	evSIP                    // packet path → worker: a SIP message of a call (SIPHook)
	evAnnounce               // packet path → worker: an address a call's SDP announced
	evCallEnd                // packet path → worker: the call ended (attach its streams)
	evReports                // packet path → worker: RTCP report blocks received as HEP JSON
)

// event is one item of a batch. pkt points into the batch's packets (or,
// for evMedia, a reader batch's); the fields of rarer kinds live in the
// batch's rare list.
type event struct {
	kind    evKind
	party   call.Party
	toParty bool
	paused  bool
	byeOK   bool  // evMedia: after the 2xx to the call's BYE (call.Media.AfterByeOK)
	ok      bool  // evFrame: the frame decoded to a packet
	bad     bool  // evFrame: the decoder found the frame malformed
	sipLike bool  // evFrame: a UDP payload that begins as SIP does (its reader looked)
	rare    int32 // index in batch.rare
	ref     uint64
	state   *any
	pkt     *decode.Packet
}

// rareEvent holds what the rare kinds carry.
type rareEvent struct {
	meta call.Meta
	msg  []byte // evSIP: the message (in the arena)
	ann  announced
	cdr  *call.CDR
	rr   [8]rtp.ReceptionReport
	nrr  int
	err  error
}

type batch struct {
	seq  uint64
	ev   []event
	pkts []decode.Packet // the packets events point to; byte slices in buf
	rare []rareEvent
	buf  []byte
	dec  decode.Stats // reader: its decoder's counters after the batch's last frame

	// A reader's batch: the references left (the packet path's, and one
	// per worker batch pointing into it) and the ring it goes back to.
	refs atomic.Int32
	home *ring
	// The buffers its events point into, one reference each: a worker
	// batch's, reader batches (srcs); a reader batch's, chunks.
	srcs   []*batch
	chunks []*chunk
}

// newBatch returns a batch that may point into pins buffers without
// growing its lists.
func newBatch(home *ring, pins int) *batch {
	return &batch{ev: make([]event, 0, batchEvents), pkts: make([]decode.Packet, 0, batchEvents),
		buf: make([]byte, 0, batchBytes), home: home, srcs: make([]*batch, 0, pins), chunks: make([]*chunk, 0, pins)}
}

// reset empties b for its producer. Its events and packets are cleared
// here, in one sweep, rather than one by one as they are filled: the other
// stages read them on other cores, and a sweep takes their cache lines back
// faster than a write per packet (begin hands out zero events).
func (b *batch) reset() {
	clear(b.ev) // drop the pointers of the last round
	clear(b.pkts)
	clear(b.rare)
	b.ev, b.pkts, b.rare, b.buf = b.ev[:0], b.pkts[:0], b.rare[:0], b.buf[:0]
}

// packet returns a free packet slot (a batch has one per event).
func (b *batch) packet() *decode.Packet {
	b.pkts = b.pkts[:len(b.pkts)+1]
	return &b.pkts[len(b.pkts)-1]
}

// keep copies data into the arena.
func (b *batch) keep(data []byte) []byte {
	n := len(b.buf)
	b.buf = append(b.buf, data...)
	return b.buf[n:len(b.buf):len(b.buf)]
}

// keepPacket copies p into a packet slot with its frame and payload in the
// arena (the payload stays a slice of the frame when it was one: off, from
// packetRoom).
func (b *batch) keepPacket(p *decode.Packet, off int) *decode.Packet {
	dst := b.packet()
	*dst = *p
	dst.Frame = b.keep(p.Frame)
	if off >= 0 {
		dst.Payload = dst.Frame[off : off+len(p.Payload)]
	} else {
		dst.Payload = b.keep(p.Payload)
	}
	return dst
}

// packetRoom is the arena room keepPacket needs, and where p's payload
// starts in its frame (-1: elsewhere).
func packetRoom(p *decode.Packet) (n, off int) {
	off = decode.PayloadOffset(p.Frame, p.Payload)
	if off >= 0 {
		return len(p.Frame), off
	}
	return len(p.Frame) + len(p.Payload), off
}

func (b *batch) addRare(r rareEvent) int32 {
	b.rare = append(b.rare, r)
	return int32(len(b.rare) - 1)
}

// pin records that the worker batch b points into the reader batch src.
func (b *batch) pin(src *batch) {
	if n := len(b.srcs); n > 0 && b.srcs[n-1] == src {
		return
	}
	src.refs.Add(1)
	b.srcs = append(b.srcs, src)
}

// pinChunk records that the reader batch b points into c.
func (b *batch) pinChunk(c *chunk) {
	if n := len(b.chunks); n > 0 && b.chunks[n-1] == c {
		return
	}
	c.refs.Add(1)
	b.chunks = append(b.chunks, c)
}

// unpinAll drops b's references.
func (b *batch) unpinAll() {
	for _, src := range b.srcs {
		src.unpin()
	}
	for _, c := range b.chunks {
		c.unpin()
	}
	clear(b.srcs)
	clear(b.chunks)
	b.srcs, b.chunks = b.srcs[:0], b.chunks[:0]
}

// unpin drops a reference to a reader's batch; the last one unpins the
// chunks its frames are in and hands the batch back to its reader (never
// blocks: the ring's free list has room for all its batches).
func (b *batch) unpin() {
	if b.refs.Add(-1) == 0 {
		b.unpinAll()
		b.home.free <- b
	}
}

// chunk is a buffer a capture file is read into (capture.Chunked).
type chunk struct {
	buf  []byte
	refs atomic.Int32
	pool chan *chunk // nil: a one-off, for a record larger than a chunk
}

// chunkBytes is the size of a chunk (a variable: tests make it small).
var chunkBytes = 256 << 10

// chunkPool returns a pool of n chunks.
func chunkPool(n int) chan *chunk {
	pool := make(chan *chunk, n)
	for range n {
		pool <- &chunk{buf: make([]byte, chunkBytes), pool: pool}
	}
	return pool
}

func (c *chunk) unpin() {
	if c.refs.Add(-1) == 0 && c.pool != nil {
		c.pool <- c
	}
}

// ring passes batches from one producer to one consumer, in order. The
// current batch is locked only when the consumer may take it (shared):
// the workers' rings are filled by the packet path alone, which passes
// every batch on itself.
type ring struct {
	shared bool
	mu     sync.Mutex
	cur    *batch // being filled; nil when none
	seq    uint64 // of the last batch started (under mu)

	full chan *batch // passed on, in order
	free chan *batch
	stop <-chan struct{} // closed: a producer waiting for a free batch gives up

	want uint64        // consumer: the sequence number it takes next
	done atomic.Uint64 // consumer: the sequence number of the last batch finished
	idle chan struct{} // a batch was finished (wait)
	wake chan struct{} // optional, shared by a consumer's rings: a batch was passed on
	seal func(*batch)  // optional: the producer's last touch of a batch, as it passes it on or the consumer takes it (under the ring's lock)
}

// newRing returns a ring of depth batches; pins is the number of buffers
// one of its batches may point into without growing its lists (a worker's
// ring: the readers' batches; a reader's: chunks, readerPins).
func newRing(depth, pins int, stop <-chan struct{}, wake chan struct{}, shared bool) *ring {
	r := &ring{shared: shared, full: make(chan *batch, depth), free: make(chan *batch, depth),
		stop: stop, want: 1, idle: make(chan struct{}, 1), wake: wake}
	for range depth {
		r.free <- newBatch(r, pins)
	}
	return r
}

// begin returns the next event slot, with n bytes of arena room, in the
// current batch; the ring stays locked until end. It returns nil when the
// ring was stopped while waiting for a free batch.
func (r *ring) begin(n int) (*event, *batch) {
	r.lock()
	b := r.cur
	if b != nil && (len(b.ev) == cap(b.ev) || cap(b.buf)-len(b.buf) < n) {
		r.passLocked()
		b = nil
	}
	if b == nil {
		r.unlock()
		select {
		case b = <-r.free:
		case <-r.stop:
			return nil, nil
		}
		b.reset()
		b.refs.Store(1) // a reader's batch: the packet path's reference
		r.lock()
		r.seq++
		b.seq, r.cur = r.seq, b
	}
	b.ev = b.ev[:len(b.ev)+1]
	return &b.ev[len(b.ev)-1], b
}

func (r *ring) end() { r.unlock() }

func (r *ring) lock() {
	if r.shared {
		r.mu.Lock()
	}
}

func (r *ring) unlock() {
	if r.shared {
		r.mu.Unlock()
	}
}

// passLocked passes the current batch on (never blocks: the ring holds at
// most its depth of batches).
func (r *ring) passLocked() {
	if r.cur == nil {
		return
	}
	if r.seal != nil {
		r.seal(r.cur)
	}
	r.full <- r.cur
	r.cur = nil
	if r.wake != nil {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// flush passes the partly filled batch on (the producer is about to wait).
func (r *ring) flush() {
	r.lock()
	r.passLocked()
	r.unlock()
}

// wait blocks until the consumer finished every batch started so far.
func (r *ring) wait() {
	r.flush()
	r.lock()
	last := r.seq
	r.unlock()
	for r.done.Load() < last {
		<-r.idle
	}
}

// take returns the next batch without waiting, or nil; with steal it also
// takes the partly filled one.
func (r *ring) take(steal bool) *batch {
	select {
	case b := <-r.full:
		r.want = b.seq + 1
		return b
	default:
	}
	if !steal || !r.shared {
		return nil
	}
	r.mu.Lock()
	b := r.cur
	if b == nil || b.seq != r.want || len(b.ev) == 0 {
		r.mu.Unlock()
		return nil
	}
	if r.seal != nil {
		r.seal(b)
	}
	r.cur = nil
	r.mu.Unlock()
	r.want = b.seq + 1
	return b
}

// finish hands a worker's consumed batch back.
func (r *ring) finish(b *batch) {
	r.done.Store(b.seq)
	r.free <- b
	select {
	case r.idle <- struct{}{}:
	default:
	}
}

// consumer takes batches from one or more rings (the packet path reads
// several fanout sockets); a batch passed on wakes it through wake.
type consumer struct {
	rings []*ring
	wake  chan struct{}
	timer *time.Timer
	next  int
}

func newConsumer(wake chan struct{}) *consumer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &consumer{wake: wake, timer: t}
}

// steals reports whether the consumer may take partly filled batches (a
// live source's reader).
func (c *consumer) steals() bool {
	for _, r := range c.rings {
		if r.shared {
			return true
		}
	}
	return false
}

// take returns the next batch of one of the rings and the ring's index,
// or nil when done is closed first; idle runs each time before it waits.
func (c *consumer) take(done <-chan struct{}, idle func()) (*batch, int) {
	wait := stealAfter
	steal := false
	for {
		for range c.rings {
			i := c.next
			c.next = (c.next + 1) % len(c.rings)
			if b := c.rings[i].take(steal); b != nil {
				return b, i
			}
		}
		idle()
		if !c.steals() { // nothing to take before a batch is passed on
			select {
			case <-c.wake:
				continue
			case <-done:
				return nil, 0
			}
		}
		c.timer.Reset(wait)
		select {
		case <-c.wake:
			c.timer.Stop()
			steal = false
		case <-c.timer.C:
			steal = true
			wait = min(2*wait, stealMax)
		case <-done:
			c.timer.Stop()
			return nil, 0
		}
	}
}
