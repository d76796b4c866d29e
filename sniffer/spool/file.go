package spool

import (
	"sync"
	"sync/atomic"
)

// file is one spool file. The packet side (under its shard's lock) appends
// to buf; when buf is full it hands buf to the file's worker and goes on in
// a fresh buffer. The worker alone creates, writes, closes and renames the file:
// the packet path never touches the disk.
type file struct {
	final, tmp string
	w          *worker
	bufSize    int
	minute     int64 // minuteKey of the directory, for the cleaner's index
	kind       uint8
	zip        int // gzip level, 0 = plain

	// Packet side, under the shard's lock.
	buf  []byte // filling; nil until the first write and after a hand-off
	size int64  // bytes accepted: handed over or in buf
	// patch, set before the finishing op is queued, is written at offset 0
	// before the file is closed (the WAV header with its sizes).
	patch []byte

	// failed is set by the worker when it gives the file up after an I/O
	// error; the packet side then recycles buffers instead of queueing them.
	failed atomic.Bool

	// Worker side only.
	fd         diskFile // nil while not open
	created    bool
	registered bool  // counted open in the cleaner's index
	disk       int64 // bytes on disk
	err        error // first I/O error; the file is given up after it
	prev, next *file // LRU of open descriptors, most recently used first
}

// buffers recycles the spool's write buffers and bounds the bytes queued
// for the workers.
type buffers struct {
	max    int64        // cap on queued bytes
	queued atomic.Int64 // bytes handed to workers and not yet written
	peak   atomic.Int64
	freed  chan struct{} // signalled (without blocking) when workers wrote a buffer

	mu        sync.Mutex
	sizes     [3]int      // the recycled sizes: SIP, compressed RTP and the others' buffers
	free      [3][][]byte // free lists, one per size
	freeBytes int64       // in the free lists: at most max - queued
}

func (b *buffers) get(size int) []byte {
	for i, s := range b.sizes {
		if s != size {
			continue
		}
		b.mu.Lock()
		if n := len(b.free[i]); n > 0 {
			buf := b.free[i][n-1]
			b.free[i] = b.free[i][:n-1]
			b.freeBytes -= int64(cap(buf))
			b.mu.Unlock()
			return buf
		}
		b.mu.Unlock()
		break
	}
	return make([]byte, 0, size)
}

// put recycles buf; the free lists and the queue together hold at most
// max bytes (beyond that buffers go to the GC).
func (b *buffers) put(buf []byte) {
	for i, s := range b.sizes {
		if s != cap(buf) {
			continue
		}
		b.mu.Lock()
		if n := int64(cap(buf)); b.freeBytes+n+b.queued.Load() <= b.max {
			b.free[i] = append(b.free[i], buf[:0])
			b.freeBytes += n
		}
		b.mu.Unlock()
		return
	}
}

// enqueue accounts n bytes handed to a worker, when they fit under the cap
// (always when nothing is queued: a buffer bigger than the cap still goes)
// or when force; false, accounting nothing, when they do not fit.
func (b *buffers) enqueue(n int64, force bool) bool {
	for {
		q := b.queued.Load()
		if !force && q != 0 && q+n > b.max {
			return false
		}
		if b.queued.CompareAndSwap(q, q+n) {
			raise(&b.peak, q+n)
			return true
		}
	}
}

// written gives back n queued bytes and wakes a packet side waiting for
// room.
func (b *buffers) written(n int64) {
	b.queued.Add(-n)
	select {
	case b.freed <- struct{}{}:
	default:
	}
}

// waitEnqueue blocks until n more bytes fit and accounts them. Only with
// Config.WaitForDisk: the queue is not empty, so a worker will free some.
func (b *buffers) waitEnqueue(n int64) {
	for !b.enqueue(n, false) {
		<-b.freed
	}
}

// raise makes a at least v.
func raise(a *atomic.Int64, v int64) {
	for {
		p := a.Load()
		if v <= p || a.CompareAndSwap(p, v) {
			return
		}
	}
}
