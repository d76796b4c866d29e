package spool

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// op is one piece of work for a worker: append buf to f, then, when fin,
// complete f (patch, close, rename).
type op struct {
	f       *file
	buf     []byte
	fin     bool
	closing bool // queued by Close: its error is returned by Close
}

// ioStats are the workers' counters, read by Spool.Stats.
type ioStats struct {
	files, written, raw, reopens, evictions, errors atomic.Uint64
	open, peak                                      atomic.Int64
}

func (st *ioStats) opened() { raise(&st.peak, st.open.Add(1)) }

// maxCloseErrs bounds the errors Close reports one by one.
const maxCloseErrs = 16

// worker is one I/O goroutine: it runs the ops of its files in order and
// keeps at most max of their descriptors open (an LRU). Files are spread
// over the workers when created and stay on theirs, so a file's ops keep
// their order.
type worker struct {
	fs    fileSystem
	log   *slog.Logger
	bufs  *buffers
	stats *ioStats
	max   int
	pool  *cleaner // nil without limits

	mu    sync.Mutex
	q     []op // queued by the packet side
	spare []op // the batch slice last processed, reused for q
	wake  chan struct{}
	done  chan struct{}

	// Worker goroutine only (read by Close after done).
	zip        []*gzipper // one per gzip level in use
	head, tail *file
	open       int
	closeErrs  []error
	moreErrs   int
}

func newWorker(fsys fileSystem, log *slog.Logger, bufs *buffers, stats *ioStats, maxOpen int, pool *cleaner) *worker {
	return &worker{fs: fsys, log: log, bufs: bufs, stats: stats, max: maxOpen, pool: pool,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues o; it never blocks on the worker.
func (w *worker) push(o op) {
	w.mu.Lock()
	w.q = append(w.q, o)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// run processes ops until closing is closed and the queue is empty, or ctx
// ends (the ops left are dropped, their files stay ".tmp").
func (w *worker) run(ctx context.Context, closing <-chan struct{}) {
	defer close(w.done)
	defer w.closeAll()
	draining := false
	for {
		w.mu.Lock()
		batch := w.q
		w.q = w.spare[:0]
		w.spare = nil
		w.mu.Unlock()
		if len(batch) == 0 {
			w.mu.Lock()
			w.spare = batch
			w.mu.Unlock()
			if draining {
				return
			}
			select {
			case <-w.wake:
			case <-closing:
				// Everything queued before Close is visible to the next take.
				draining = true
			case <-ctx.Done():
				return
			}
			continue
		}
		for i := range batch {
			if ctx.Err() != nil {
				return
			}
			w.do(&batch[i])
			batch[i] = op{}
		}
		w.mu.Lock()
		w.spare = batch[:0]
		w.mu.Unlock()
	}
}

func (w *worker) do(o *op) {
	f := o.f
	if o.buf != nil {
		if len(o.buf) > 0 && f.err == nil {
			w.write(f, o.buf)
		}
		w.bufs.written(int64(cap(o.buf)))
		w.bufs.put(o.buf)
	}
	if o.fin {
		w.finish(f, o.closing)
	}
}

func (w *worker) write(f *file, b []byte) {
	if err := w.openFD(f); err != nil {
		return
	}
	raw := len(b)
	if f.zip > 0 {
		var err error
		if b, err = w.gzipper(f.zip).member(b); err != nil {
			w.fail(f, fmt.Errorf("spool: compress %s: %w", f.tmp, err))
			return
		}
	}
	if _, err := f.fd.WriteAt(b, f.disk); err != nil {
		w.fail(f, fmt.Errorf("spool: write %s: %w", f.tmp, err))
		return
	}
	f.disk += int64(len(b))
	w.stats.written.Add(uint64(len(b)))
	w.stats.raw.Add(uint64(raw))
}

// gzipper returns the worker's compressor for a level, made on first use:
// one per level, whatever the number of files.
func (w *worker) gzipper(level int) *gzipper {
	for _, z := range w.zip {
		if z.level == level {
			return z
		}
	}
	z := &gzipper{level: level}
	w.zip = append(w.zip, z)
	return z
}

// fail gives f up after its first I/O error: logged once, counted, its
// descriptor closed; the ".tmp" file is left for inspection.
func (w *worker) fail(f *file, err error) {
	if f.err != nil {
		return
	}
	f.err = err
	f.failed.Store(true)
	w.stats.errors.Add(1)
	w.log.Warn("spool file failed", "file", f.tmp, "err", err)
	w.closeFD(f)
}

// openFD makes sure f's descriptor is open and most recently used, closing
// the least recently used one when the limit is reached.
func (w *worker) openFD(f *file) error {
	if f.err != nil {
		return f.err
	}
	if f.fd != nil {
		w.unlink(f)
		w.pushFront(f)
		return nil
	}
	for w.open >= w.max && w.tail != nil {
		w.stats.evictions.Add(1)
		w.closeFD(w.tail)
	}
	flags := os.O_WRONLY
	if f.created {
		w.stats.reopens.Add(1)
	} else {
		if !f.registered {
			// Before the directories exist: the cleaner leaves them alone.
			w.pool.opening(f.minute, f.kind)
			f.registered = true
		}
		if err := w.fs.MkdirAll(filepath.Dir(f.tmp), dirMode); err != nil {
			w.fail(f, fmt.Errorf("spool: %w", err))
			return f.err
		}
		flags |= os.O_CREATE | os.O_TRUNC
	}
	fd, err := w.fs.OpenFile(f.tmp, flags, fileMode)
	if err != nil {
		w.fail(f, fmt.Errorf("spool: %w", err))
		return f.err
	}
	f.fd, f.created = fd, true
	w.open++
	w.stats.opened()
	w.pushFront(f)
	return nil
}

func (w *worker) closeFD(f *file) {
	if f.fd == nil {
		return
	}
	w.unlink(f)
	err := f.fd.Close()
	f.fd = nil
	w.open--
	w.stats.open.Add(-1)
	if err != nil {
		w.fail(f, fmt.Errorf("spool: close %s: %w", f.tmp, err))
	}
}

func (w *worker) pushFront(f *file) {
	f.prev, f.next = nil, w.head
	if w.head != nil {
		w.head.prev = f
	}
	w.head = f
	if w.tail == nil {
		w.tail = f
	}
}

func (w *worker) unlink(f *file) {
	if f.prev != nil {
		f.prev.next = f.next
	} else if w.head == f {
		w.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else if w.tail == f {
		w.tail = f.prev
	}
	f.prev, f.next = nil, nil
}

// finish writes f's patch, closes it and renames it to its final name.
func (w *worker) finish(f *file, closing bool) {
	if f.err == nil && f.patch != nil && f.created {
		if err := w.openFD(f); err == nil {
			if _, err := f.fd.WriteAt(f.patch, 0); err != nil {
				w.fail(f, fmt.Errorf("spool: write %s: %w", f.tmp, err))
			}
		}
	}
	w.closeFD(f)
	renamed := false
	if f.err == nil && f.created {
		if err := w.fs.Rename(f.tmp, f.final); err != nil {
			w.fail(f, fmt.Errorf("spool: %w", err))
		} else {
			renamed = true
		}
	}
	if f.registered {
		f.registered = false
		w.pool.completed(f.minute, f.kind, f.disk, f.created)
	}
	// Counted once the pool's index has it: Stats().Files never runs
	// ahead of PoolFiles.
	if renamed {
		w.stats.files.Add(1)
	}
	if f.err != nil && closing {
		if len(w.closeErrs) < maxCloseErrs {
			w.closeErrs = append(w.closeErrs, f.err)
		} else {
			w.moreErrs++
		}
	}
}

// closeAll closes every descriptor still open (after ctx ended).
func (w *worker) closeAll() {
	for w.head != nil {
		w.closeFD(w.head)
	}
}
