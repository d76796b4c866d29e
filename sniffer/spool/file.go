package spool

import (
	"fmt"
	"os"
	"path/filepath"
)

// file is one spool file being written: bytes collect in a bounded buffer
// and go to disk when it fills, through a descriptor the spool's LRU may
// close between writes (the next flush reopens it). It is written under a
// temporary name and renamed when finished.
type file struct {
	final, tmp string
	fd         *os.File // nil while not open
	buf        []byte   // pending bytes; nil until the first write
	size       int64    // bytes on disk
	created    bool
	bufSize    int
	err        error // first I/O error; the file is given up after it
	// LRU of open descriptors, most recently used first.
	prev, next *file
	files      *files
}

// files owns the descriptors of all spool files: at most max open at once.
type files struct {
	max        int
	bufSize    int
	head, tail *file
	open, peak int
	reopens    uint64
	evictions  uint64
	written    uint64
	errors     uint64
	pool       [][]byte // free buffers
}

// newFile returns a file buffered by bufSize bytes (0 = the spool's).
func (fs *files) newFile(final string, bufSize int) *file {
	if bufSize <= 0 || bufSize > fs.bufSize {
		bufSize = fs.bufSize
	}
	return &file{final: final, tmp: final + ".tmp", files: fs, bufSize: bufSize}
}

func (fs *files) getBuf(size int) []byte {
	if size != fs.bufSize {
		return make([]byte, 0, size)
	}
	if n := len(fs.pool); n > 0 {
		b := fs.pool[n-1]
		fs.pool = fs.pool[:n-1]
		return b[:0]
	}
	return make([]byte, 0, fs.bufSize)
}

func (fs *files) putBuf(b []byte) {
	if cap(b) == fs.bufSize && len(fs.pool) < 64 {
		fs.pool = append(fs.pool, b[:0])
	}
}

// Write buffers b (io.Writer for pcapgo): it flushes first when b does not
// fit, and writes a b bigger than the buffer straight through. After an
// I/O error the file takes no more bytes and Write returns that error.
func (f *file) Write(b []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.buf == nil {
		f.buf = f.files.getBuf(f.bufSize)
	}
	if len(f.buf)+len(b) > cap(f.buf) {
		if err := f.flush(); err != nil {
			return 0, err
		}
		if len(b) > cap(f.buf) {
			if err := f.writeAt(b, f.size); err != nil {
				return 0, err
			}
			f.size += int64(len(b))
			return len(b), nil
		}
	}
	f.buf = append(f.buf, b...)
	return len(b), nil
}

func (f *file) flush() error {
	if f.err != nil {
		return f.err
	}
	if len(f.buf) == 0 {
		return nil
	}
	if err := f.writeAt(f.buf, f.size); err != nil {
		return err
	}
	f.size += int64(len(f.buf))
	f.buf = f.buf[:0]
	return nil
}

func (f *file) writeAt(b []byte, off int64) error {
	if err := f.openFD(); err != nil {
		return err
	}
	if _, err := f.fd.WriteAt(b, off); err != nil {
		return f.fail(fmt.Errorf("spool: write %s: %w", f.tmp, err))
	}
	f.files.written += uint64(len(b))
	return nil
}

func (f *file) fail(err error) error {
	if f.err == nil {
		f.err = err
		f.files.errors++
	}
	return err
}

// openFD makes sure the descriptor is open and most recently used,
// closing the least recently used one when the limit is reached.
func (f *file) openFD() error {
	fs := f.files
	if f.fd != nil {
		fs.unlink(f)
		fs.pushFront(f)
		return nil
	}
	for fs.open >= fs.max && fs.tail != nil {
		fs.evictions++
		fs.closeFD(fs.tail)
	}
	flags := os.O_WRONLY
	if f.created {
		fs.reopens++
	} else {
		if err := os.MkdirAll(filepath.Dir(f.tmp), 0o755); err != nil {
			return f.fail(fmt.Errorf("spool: %w", err))
		}
		flags |= os.O_CREATE | os.O_TRUNC
	}
	fd, err := os.OpenFile(f.tmp, flags, 0o644)
	if err != nil {
		return f.fail(fmt.Errorf("spool: %w", err))
	}
	f.fd, f.created = fd, true
	fs.open++
	fs.peak = max(fs.peak, fs.open)
	fs.pushFront(f)
	return nil
}

func (fs *files) closeFD(f *file) {
	if f.fd == nil {
		return
	}
	fs.unlink(f)
	if err := f.fd.Close(); err != nil {
		f.fail(fmt.Errorf("spool: close %s: %w", f.tmp, err))
	}
	f.fd = nil
	fs.open--
}

func (fs *files) pushFront(f *file) {
	f.prev, f.next = nil, fs.head
	if fs.head != nil {
		fs.head.prev = f
	}
	fs.head = f
	if fs.tail == nil {
		fs.tail = f
	}
}

func (fs *files) unlink(f *file) {
	if f.prev != nil {
		f.prev.next = f.next
	} else if fs.head == f {
		fs.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else if fs.tail == f {
		fs.tail = f.prev
	}
	f.prev, f.next = nil, nil
}

// finish flushes, runs patch (if any) with the descriptor open, closes
// and renames the file to its final name. A file that never received a
// byte is not created.
func (f *file) finish(patch func(*os.File) error) error {
	fs := f.files
	defer func() {
		fs.putBuf(f.buf)
		f.buf = nil
	}()
	if !f.created && len(f.buf) == 0 {
		return f.err
	}
	err := f.flush()
	if err == nil && patch != nil {
		if err = f.openFD(); err == nil {
			if perr := patch(f.fd); perr != nil {
				err = f.fail(fmt.Errorf("spool: %s: %w", f.tmp, perr))
			}
		}
	}
	fs.closeFD(f)
	if err != nil || f.err != nil {
		return f.err
	}
	if err := os.Rename(f.tmp, f.final); err != nil {
		return f.fail(fmt.Errorf("spool: %w", err))
	}
	return nil
}
