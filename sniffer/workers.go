package sniffer

import (
	"context"
	"errors"
	"io"
	"runtime/pprof"
	"sort"
	"sync"
	"time"
	"unsafe"

	"github.com/google/gopacket"

	"pbx-agent/internal/prefetch"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sip"
)

// The parallel packet path (Config.Workers > 1), while Run reads a source:
//
//	reader(s) ──decoded frames──▶ packet path ──per call──▶ N media workers
//
// A reader goroutine per source copies frames into batches and decodes
// them (link, IP with reassembly, UDP/TCP/SCTP) with its own decoder. The
// packet path — the goroutine in Run, the only one that touches the call
// table — takes the decoded packets in capture order, removes duplicates,
// handles SIP (calls, REGISTERs, TCP/SCTP reassembly, HEP) and finds the
// call of each RTP/RTCP datagram (one call-table lookup), exactly as the
// single-threaded path does. It hands every datagram of a call (a pointer
// into the reader's batch: ring.go), the call's SIP messages for the spool
// hook, its SDP announcements and its end to the worker the call's
// reference hashes to, so one worker sees everything of a call in capture
// order: stream statistics, RFC 2833 digits, per-call pcaps and decoded
// audio come out byte for byte as single-threaded. A worker owns the media
// state of its calls (one mediaTracker per worker).
//
// Callbacks keep their single-threaded order: a finished call's OnCallEnd
// waits until its worker attached the call's streams, and callbacks queued
// behind it (other calls' ends, REGISTER changes) wait their turn.

// pipeline is the running parallel path.
type pipeline struct {
	workers []*worker
	stop    chan struct{}
	wg      sync.WaitGroup
	due     []dueCallback // callbacks in table order, waiting for their worker
}

// dueCallback is a table callback held back to keep its order.
type dueCallback struct {
	cdr *call.CDR // OnCallEnd, ready when w finished batch seq
	w   *ring
	seq uint64
	reg *call.Register // OnRegister (a copy owned here)
}

// worker handles the media of the calls hashed to it.
type worker struct {
	s     *Sniffer
	in    *ring
	media *mediaTracker
	mds   []call.Media // the current run of media events
	msg   sip.Message
}

// shard is the worker (and mediaTracker) of a call.
func (s *Sniffer) shard(ref uint64) int { return call.Shard(ref, len(s.shards)) }

func (s *Sniffer) trackerOf(ref uint64) *mediaTracker { return s.shards[s.shard(ref)] }

// startPipeline starts the media workers; readerBatches is the number of
// batches of the readers' rings (a worker batch points into at most as
// many). Called with the packet path's lock.
func (s *Sniffer) startPipeline(readerBatches int) {
	p := &pipeline{stop: make(chan struct{})}
	for _, mt := range s.shards {
		w := &worker{s: s, in: newRing(ringDepth, readerBatches, p.stop, nil, false), media: mt, mds: make([]call.Media, 0, batchEvents)}
		p.workers = append(p.workers, w)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			stage("worker")
			w.run()
		}()
	}
	s.pipe = p
	s.busy()
}

// drainPipeline waits until the workers handled everything handed to them
// and runs the callbacks held back. Called with the packet path's lock.
func (s *Sniffer) drainPipeline() {
	p := s.pipe
	for _, w := range p.workers {
		w.in.flush()
	}
	for _, w := range p.workers {
		w.in.wait()
	}
	s.release()
}

// stopPipeline drains the workers and stops them: the single-threaded path
// takes over (Flush after Run, HEP-only input).
func (s *Sniffer) stopPipeline() {
	s.drainPipeline()
	for _, w := range s.pipe.workers {
		w.in.full <- nil
	}
	close(s.pipe.stop)
	s.pipe.wg.Wait()
	s.pipe = nil
}

// flushWorkers passes partly filled batches on: the packet path is about to
// wait (for frames, or pacing a replay), so the workers need not.
func (s *Sniffer) flushWorkers() {
	for _, w := range s.pipe.workers {
		w.in.flush()
	}
}

// idle passes the workers' partly filled batches on and marks the packet
// path waiting (for frames, or pacing a replay): until it goes on (busy),
// a HEP packet handled meanwhile passes its own on (HandleHEP).
func (s *Sniffer) idle() {
	s.lock()
	s.flushWorkers()
	s.waiting = true
	s.unlock()
}

// busy marks the packet path at work again: the batches it fills, HEP
// packets' events included, are passed on when full or when it next waits.
// Called with the packet path's lock.
func (s *Sniffer) busy() { s.waiting = false }

// release runs the held-back callbacks whose worker is done with them, in
// order.
func (s *Sniffer) release() {
	p := s.pipe
	n := 0
	for ; n < len(p.due); n++ {
		d := &p.due[n]
		if d.w != nil && d.w.done.Load() < d.seq {
			break
		}
		if d.cdr != nil {
			s.callFinished(d.cdr)
		} else if s.onRegister != nil {
			s.onRegister(d.reg)
		}
	}
	if n > 0 {
		clear(p.due[:n])
		p.due = p.due[:copy(p.due, p.due[n:])]
	}
}

// toWorker returns a new event on the worker of ref, with room for n arena
// bytes; the worker's ring stays locked until end.
func (s *Sniffer) toWorker(ref uint64, n int) (*event, *batch, *ring) {
	r := s.pipe.workers[s.shard(ref)].in
	e, b := r.begin(n)
	e.ref = ref
	return e, b, r
}

// queueMedia hands a matched datagram to its call's worker: the packet of
// the frame in hand stays where its reader put it (the worker's batch pins
// the reader's); another (HEP) is copied.
func (s *Sniffer) queueMedia(m *call.Media) {
	p := m.Packet
	n, off := 0, 0
	if p != s.frame {
		n, off = packetRoom(p)
	}
	e, b, r := s.toWorker(m.Ref, n)
	e.kind, e.party, e.toParty, e.paused, e.byeOK, e.state = evMedia, m.Party, m.ToParty, m.Paused, m.AfterByeOK, m.State
	if p == s.frame {
		e.pkt = p
		b.pin(s.frameBatch)
	} else {
		e.pkt = b.keepPacket(p, off)
	}
	r.end()
}

// queueSIP hands a call's SIP message to its worker for the SIP hook.
func (s *Sniffer) queueSIP(ref uint64, msg []byte, meta call.Meta, p *decode.Packet) {
	n, off := packetRoom(p)
	e, b, r := s.toWorker(ref, n+len(msg))
	e.kind = evSIP
	e.pkt = b.keepPacket(p, off)
	e.rare = b.addRare(rareEvent{meta: meta, msg: b.keep(msg)})
	r.end()
}

// queueRare hands a rare event (announcement, end, reports) to the worker
// of ref; it returns the ring and the batch's sequence number.
func (s *Sniffer) queueRare(ref uint64, kind evKind, re rareEvent) (*ring, uint64) {
	e, b, r := s.toWorker(ref, 0)
	e.kind = kind
	e.rare = b.addRare(re)
	seq := b.seq
	r.end()
	return r, seq
}

// run handles batches until it receives nil (stopPipeline, after the last
// was drained). The packet path passes every batch on (when full, or before
// it waits), so a worker only ever waits for one.
func (w *worker) run() {
	r := w.in
	for b := <-r.full; b != nil; b = <-r.full {
		for i := 0; i < len(b.ev); {
			if b.ev[i].kind != evMedia {
				w.handle(b, &b.ev[i])
				i++
				continue
			}
			j := i + 1
			for j < len(b.ev) && b.ev[j].kind == evMedia {
				j++
			}
			w.mediaRun(b.ev[i:j])
			i = j
		}
		b.unpinAll()
		r.finish(b)
	}
}

// mediaRun handles consecutive datagrams: the statistics under one lock of
// the worker's tracker, then the next handler (spool, audio) the run at
// once when it takes runs.
func (w *worker) mediaRun(evs []event) {
	mt := w.media
	ms := w.mds[:len(evs)]
	// The packets and their headers were written on other cores: ask for
	// them a few packets ahead, so the misses overlap.
	const d = 8
	for i := range min(2*d, len(evs)) {
		prefetch.Lines(unsafe.Pointer(evs[i].pkt), 2)
	}
	for i := range evs {
		if j := i + 2*d; j < len(evs) {
			prefetch.Lines(unsafe.Pointer(evs[j].pkt), 2)
		}
		if j := i + d; j < len(evs) {
			if p := evs[j].pkt.Payload; len(p) > 0 {
				prefetch.Lines(unsafe.Pointer(&p[0]), 1)
			}
		}
		e, m := &evs[i], &ms[i]
		m.Packet, m.Ref, m.Party, m.ToParty, m.Paused, m.AfterByeOK, m.State = e.pkt, e.ref, e.party, e.toParty, e.paused, e.byeOK, e.state
		m.Classify()
	}
	mt.mu.Lock()
	mt.handleRun(ms)
	mt.mu.Unlock()
	switch next := mt.next.(type) {
	case nil:
	case MediaBatchHandler:
		next.HandleMediaBatch(ms)
	default:
		for i := range ms {
			next.HandleMedia(&ms[i])
		}
	}
}

func (w *worker) handle(b *batch, e *event) {
	s := w.s
	switch e.kind {
	case evSIP:
		re := &b.rare[e.rare]
		if _, err := sip.Parse(re.msg, &w.msg); err == nil {
			s.cfg.SIPHook(&w.msg, re.meta, e.ref, e.pkt)
		}
	case evAnnounce:
		w.media.announce(e.ref, b.rare[e.rare].ann)
	case evCallEnd:
		s.addMedia(b.rare[e.rare].cdr, true)
	case evReports:
		re := &b.rare[e.rare]
		w.media.applyReports(e.ref, re.rr[:re.nrr], re.meta.Time)
	}
}

// addMedia attaches the call's RTP streams and merges its RFC 2833 digits
// with the SIP INFO ones.
func (s *Sniffer) addMedia(c *call.CDR, final bool) {
	cm := s.trackerOf(c.CallRef).summaries(c.CallRef, final)
	c.Streams, c.FaxPackets, c.FaxTones = cm.streams, cm.faxPackets, cm.faxTones
	if len(cm.dtmf) > 0 {
		c.DTMF = append(c.DTMF, cm.dtmf...)
		sort.SliceStable(c.DTMF, func(i, j int) bool { return c.DTMF[i].Time.Before(c.DTMF[j].Time) })
	}
}

// readFrames reads src's frames into r and decodes them with dec (nil:
// decErr, the link type is not supported) until src ends or r is stopped.
// A capture file is read into chunks its batches pin (capture.Chunked):
// its frames are not copied; a live source's are copied into the batch.
func readFrames(src capture.Source, r *ring, dec *decode.Decoder, decErr error) {
	link := src.LinkType()
	cr := newChunkReader(src, r)
	defer cr.close()
	if dec != nil {
		r.seal = func(b *batch) { b.dec = dec.Stats() }
	}
	for {
		var data []byte
		var ts time.Time
		var err error
		if cr != nil {
			data, ts, err = cr.src.ReadFrame()
		} else {
			var ci gopacket.CaptureInfo
			data, ci, err = src.ReadPacket()
			ts = ci.Timestamp
		}
		if err == nil && dec == nil {
			err = decErr // as HandleFrame: at the first frame
		}
		if errors.Is(err, capture.ErrTimeout) {
			e, b := r.begin(0)
			if e == nil {
				return
			}
			e.kind, e.rare = evTimeout, b.addRare(rareEvent{meta: call.Meta{Time: time.Now()}})
			r.end()
			r.flush()
			continue
		}
		if err != nil {
			e, b := r.begin(0)
			if e == nil {
				return
			}
			e.kind, e.rare = evEnd, b.addRare(rareEvent{err: err})
			r.end()
			r.flush()
			return
		}
		n := 0
		if cr == nil {
			n = len(data) // copied into the batch
		}
		e, b := r.begin(n)
		if e == nil {
			return
		}
		p := b.packet()
		ok, derr := dec.Decode(data, ts.UTC(), p)
		e.kind, e.ok, e.bad, e.pkt = evFrame, ok, derr != nil, p
		// The reader looks at the payload while the frame is in its cache:
		// the packet path, on another core, then reads no media payload.
		e.sipLike = ok && p.Transport == decode.UDP && sip.LooksLikeMessage(p.Payload)
		if ok {
			p.Frame, p.Link = data, link
			off := decode.PayloadOffset(data, p.Payload)
			if cr == nil {
				p.Frame = b.keep(data)
				if off >= 0 {
					p.Payload = p.Frame[off : off+len(p.Payload)]
				}
			} else {
				cr.pin(b) // the frame stays in its chunk
			}
			if off < 0 { // rebuilt from fragments, in the decoder's buffer (rare: it may grow the arena)
				p.Payload = b.keep(p.Payload)
			}
		} else { // only its time matters
			*p = decode.Packet{Time: p.Time, Link: link}
		}
		r.end()
	}
}

// chunkReader gives a capture file's reader the chunks it reads into.
type chunkReader struct {
	src  capture.Chunked
	r    *ring
	pool chan *chunk
	cur  *chunk // the reader's reference, until the next
}

// newChunkReader makes src read into chunks, or returns nil when it
// cannot (a live source, pcapng).
func newChunkReader(src capture.Source, r *ring) *chunkReader {
	cs, ok := src.(capture.Chunked)
	if _, live := src.(capture.Live); !ok || live {
		return nil
	}
	cr := &chunkReader{src: cs, r: r, pool: chunkPool(chunksFor(cap(r.free)))}
	if !cs.UseChunks(cr.next) {
		return nil
	}
	return cr
}

// next is the chunk the file reads into next; the frames read so far stay
// in the last, pinned by the batches that point into it.
func (cr *chunkReader) next(n int) []byte {
	var c *chunk
	if n > chunkBytes {
		c = &chunk{buf: make([]byte, n)}
	} else {
		select {
		case c = <-cr.pool:
		default: // batches pin them: pass on the one being filled too
			cr.r.flush()
			select {
			case c = <-cr.pool:
			case <-cr.r.stop:
				c = &chunk{buf: make([]byte, n)} // the reader stops at its next frame
			}
		}
	}
	c.refs.Store(1)
	if cr.cur != nil {
		cr.cur.unpin()
	}
	cr.cur = c
	return c.buf
}

// pin records that b holds a frame of the current chunk (a frame of the
// file's first buffer, before any chunk, needs none: that buffer is never
// written again).
func (cr *chunkReader) pin(b *batch) {
	if cr.cur != nil {
		b.pinChunk(cr.cur)
	}
}

func (cr *chunkReader) close() {
	if cr != nil {
		cr.src.UseChunks(nil)
	}
}

// runParallel is Run with media workers: readers copy the sources' frames
// into rings, this goroutine is the packet path.
func (s *Sniffer) runParallel(ctx context.Context, srcs []capture.Source, opts RunOptions) (err error) {
	pprof.Do(ctx, pprof.Labels("stage", "packet path"), func(ctx context.Context) { err = s.packetPath(ctx, srcs, opts) })
	return err
}

// packetPath is runParallel's goroutine: it starts the readers and the
// workers and handles the frames in capture order.
func (s *Sniffer) packetPath(ctx context.Context, srcs []capture.Source, opts RunOptions) error {
	stop := make(chan struct{})
	wake := make(chan struct{}, 1)
	c := newConsumer(wake)
	depth := readerDepth(len(s.shards))
	s.lock()
	decs, errs := s.lendDecoders(srcs)
	s.setSources(srcs)
	s.startPipeline(depth * len(srcs))
	s.unlock()
	var readers sync.WaitGroup
	for i, src := range srcs {
		// A live source's reader cannot know that its next read will
		// block: the packet path may take its partly filled batch, under
		// the ring's lock. A file's reader passes every batch on full, or
		// at the end of the file, and needs no lock.
		_, live := src.(capture.Live)
		r := newRing(depth, readerPins(), stop, wake, live)
		c.rings = append(c.rings, r)
		readers.Add(1)
		go func() {
			defer readers.Done()
			stage("reader")
			readFrames(src, r, decs[i], errs[i])
		}()
	}
	defer func() {
		close(stop)
		readers.Wait()
		s.lock()
		s.stopPipeline()
		s.returnDecoders(srcs, decs)
		s.publish()
		s.unlock()
		s.clk.end()
	}()
	var first, start time.Time
	ended := 0
	for {
		b, ri := c.take(ctx.Done(), s.idle)
		if b == nil {
			return ctx.Err()
		}
		s.lock() // publish reads lent (HEP listeners may call it)
		s.busy()
		s.lent[ri] = b.dec
		s.unlock()
		for i := range b.ev {
			e := &b.ev[i]
			switch e.kind {
			case evFrame:
				if opts.Realtime {
					if first.IsZero() {
						first, start = e.pkt.Time, time.Now()
						s.clk.begin(first, start)
					}
					s.lock()
					s.endBatch() // listcalls and pauses get in while it waits
					s.unlock()
					if err := s.pace(ctx, e.pkt.Time.Sub(first)-time.Since(start)); err != nil {
						b.unpin()
						return err
					}
				}
				s.lock()
				s.batching = true
				s.eventsAhead(b.ev, i)
				s.frame, s.frameBatch, s.frameSIPLike = e.pkt, b, e.sipLike
				s.frameDecoded(e.pkt, e.ok, e.bad)
				s.frame, s.frameBatch = nil, nil
				s.unlock()
			case evTimeout:
				s.Tick(b.rare[e.rare].meta.Time)
			case evEnd:
				s.lock()
				s.endBatch()
				s.unlock()
				if err := b.rare[e.rare].err; !errors.Is(err, io.EOF) {
					b.unpin()
					return err
				}
				if ended++; ended == len(srcs) {
					b.unpin()
					return nil
				}
			}
		}
		b.unpin()
		s.lock()
		s.endBatch()
		s.release()
		s.unlock()
	}
}

// lendDecoders makes the decoders the readers of srcs use during a
// parallel Run: the first source's is the sniffer's own (its fragments
// and counters carry on from one Run to the next, as single-threaded),
// lent to the reader. Their counters come back with the batches (lent).
func (s *Sniffer) lendDecoders(srcs []capture.Source) ([]*decode.Decoder, []error) {
	decs, errs := make([]*decode.Decoder, len(srcs)), make([]error, len(srcs))
	for i, src := range srcs {
		link := src.LinkType()
		if i == 0 && s.dec != nil && s.link == link {
			decs[0], s.dec = s.dec, nil
			continue
		}
		d, err := s.newDecoder(link)
		if err != nil {
			errs[i] = err
			continue
		}
		if i == 0 {
			if s.dec != nil {
				s.decs = s.decs.Add(s.dec.Stats())
			}
			s.dec = nil
		}
		decs[i] = d
	}
	if decs[0] != nil {
		s.link = srcs[0].LinkType()
	}
	s.lent = make([]decode.Stats, len(srcs))
	return decs, errs
}

// returnDecoders takes the decoders back after the readers stopped.
func (s *Sniffer) returnDecoders(srcs []capture.Source, decs []*decode.Decoder) {
	s.lent = nil
	for i, d := range decs {
		switch {
		case d == nil:
		case i == 0:
			s.dec = d
		default:
			s.decs = s.decs.Add(d.Stats())
		}
	}
}

// stage labels the goroutine's CPU samples in profiles (go tool pprof
// -tags: reader, packet path, worker).
func stage(name string) {
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("stage", name)))
}

// pace waits until a frame is due (a replay at the recorded pace), the
// workers having what the packet path gave them so far.
func (s *Sniffer) pace(ctx context.Context, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	s.idle()
	defer func() {
		s.lock()
		s.busy()
		s.unlock()
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// dueEnd holds a finished call's OnCallEnd until its worker attached the
// call's streams.
func (s *Sniffer) dueEnd(c *call.CDR) {
	r, seq := s.queueRare(c.CallRef, evCallEnd, rareEvent{cdr: c})
	s.pipe.due = append(s.pipe.due, dueCallback{cdr: c, w: r, seq: seq})
}

// dueRegister holds a REGISTER change behind the callbacks before it.
func (s *Sniffer) dueRegister(reg *call.Register) {
	if len(s.pipe.due) == 0 {
		if s.onRegister != nil {
			s.onRegister(reg)
		}
		return
	}
	r := *reg
	s.pipe.due = append(s.pipe.due, dueCallback{reg: &r})
}

// keepReports copies report blocks for a worker.
func keepReports(blocks []rtp.ReceptionReport, t time.Time) rareEvent {
	re := rareEvent{meta: call.Meta{Time: t}}
	re.nrr = copy(re.rr[:], blocks)
	return re
}
