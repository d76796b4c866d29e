package cdr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The on-disk queue holds records that could not go to MySQL yet. It is a
// series of append-only segment files seg-<n>.q, each a run of records
//
//	uint32 length | uint32 CRC-32C of the payload | payload
//
// (big-endian), fsync'd before Append returns. The read position (segment,
// byte offset) is kept in the file "offset", replaced atomically after the
// records before it are committed to MySQL. Consumed segments are deleted.
//
// Replay is exactly-once together with the idempotency keys: a crash after the
// MySQL commit but before the offset is saved replays a batch whose keys are
// already present, and those records are skipped.

const (
	recHeader     = 8
	maxRecord     = 16 << 20
	segPrefix     = "seg-"
	segSuffix     = ".q"
	offsetFile    = "offset"
	defaultSegMax = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type qpos struct {
	seg uint64
	off int64
}

type diskQueue struct {
	dir      string
	maxBytes int64 // 0 = no cap
	segMax   int64

	mu      sync.Mutex
	w       *os.File
	wSeg    uint64
	wSize   int64 // durable size of the active segment
	r       qpos  // committed read position
	pending int   // records after r
	pendB   int64 // bytes after r
	torn    int   // torn records cut from the tail at open
	corrupt int   // records skipped because their checksum failed
}

func segName(n uint64) string { return fmt.Sprintf("%s%016d%s", segPrefix, n, segSuffix) }

// openQueue opens (or creates) the queue in dir, cuts a torn record left by a
// crash during Append, and counts what is pending.
func openQueue(dir string, maxBytes int64) (*diskQueue, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQueue, err)
	}
	q := &diskQueue{dir: dir, maxBytes: maxBytes, segMax: defaultSegMax}
	segs, err := q.segments()
	if err != nil {
		return nil, err
	}
	q.r, err = q.readOffset()
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		if q.r.seg == 0 {
			q.r.seg = 1
		}
		q.r.off = 0
		segs = []uint64{q.r.seg}
	}
	if q.r.seg < segs[0] { // offset older than every segment: start at the first
		q.r = qpos{segs[0], 0}
	}
	for _, s := range segs {
		if s < q.r.seg {
			if err := os.Remove(filepath.Join(dir, segName(s))); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: %w", ErrQueue, err)
			}
		}
	}
	q.wSeg = max(segs[len(segs)-1], q.r.seg)
	q.w, err = os.OpenFile(filepath.Join(dir, segName(q.wSeg)), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQueue, err)
	}
	// Scan from the read position to the end: count pending records, and cut
	// a torn tail off the active segment.
	for s := q.r.seg; s <= q.wSeg; s++ {
		start := int64(0)
		if s == q.r.seg {
			start = q.r.off
		}
		n, good, size, err := q.scan(s, start)
		if err != nil {
			return nil, err
		}
		q.pending += n
		q.pendB += good - start
		if s == q.wSeg {
			if good < size {
				q.torn++
				if err := q.w.Truncate(good); err != nil {
					return nil, fmt.Errorf("%w: cut torn tail: %w", ErrQueue, err)
				}
				if err := q.w.Sync(); err != nil {
					return nil, fmt.Errorf("%w: %w", ErrQueue, err)
				}
			}
			q.wSize = good
		}
	}
	if q.r.seg == q.wSeg && q.r.off > q.wSize { // offset beyond a cut tail
		q.r.off = q.wSize
	}
	if _, err := q.w.Seek(q.wSize, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQueue, err)
	}
	return q, nil
}

func (q *diskQueue) segments() ([]uint64, error) {
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQueue, err)
	}
	var out []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 10, 64)
		if err == nil && n > 0 {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func (q *diskQueue) readOffset() (qpos, error) {
	b, err := os.ReadFile(filepath.Join(q.dir, offsetFile))
	if errors.Is(err, os.ErrNotExist) {
		return qpos{}, nil
	}
	if err != nil {
		return qpos{}, fmt.Errorf("%w: %w", ErrQueue, err)
	}
	var p qpos
	if _, err := fmt.Sscanf(string(b), "%d %d", &p.seg, &p.off); err != nil || p.off < 0 {
		return qpos{}, fmt.Errorf("%w: bad offset file %q", ErrQueue, b)
	}
	return p, nil
}

// scan walks the valid records of segment s from start; it returns how many
// there are, where the valid run ends and the file size.
func (q *diskQueue) scan(s uint64, start int64) (n int, good, size int64, err error) {
	f, err := os.Open(filepath.Join(q.dir, segName(s)))
	if errors.Is(err, os.ErrNotExist) {
		return 0, start, start, nil
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w: %w", ErrQueue, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w: %w", ErrQueue, err)
	}
	size = st.Size()
	good = start
	var hdr [recHeader]byte
	buf := make([]byte, 0, 4096)
	for good+recHeader <= size {
		if _, err := f.ReadAt(hdr[:], good); err != nil {
			break
		}
		l := int64(binary.BigEndian.Uint32(hdr[:4]))
		if l > maxRecord || good+recHeader+l > size {
			break
		}
		buf = append(buf[:0], make([]byte, l)...)
		if _, err := f.ReadAt(buf, good+recHeader); err != nil {
			break
		}
		if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			break
		}
		n++
		good += recHeader + l
	}
	return n, good, size, nil
}

// Append writes recs as one write and fsyncs before returning.
func (q *diskQueue) Append(recs [][]byte) error {
	var total int64
	for _, r := range recs {
		if len(r) > maxRecord {
			return fmt.Errorf("%w: record of %d bytes", ErrQueue, len(r))
		}
		total += recHeader + int64(len(r))
	}
	buf := make([]byte, 0, total)
	for _, r := range recs {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(r)))
		buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(r, castagnoli))
		buf = append(buf, r...)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.w == nil {
		return fmt.Errorf("%w: closed", ErrQueue)
	}
	if q.maxBytes > 0 && q.pendB+total > q.maxBytes {
		return fmt.Errorf("%w: %d bytes pending, cap %d", ErrQueueFull, q.pendB, q.maxBytes)
	}
	if q.wSize >= q.segMax {
		if err := q.rotateLocked(); err != nil {
			return err
		}
	}
	if _, err := q.w.Write(buf); err != nil {
		// Drop whatever part made it so the segment stays a clean run of records.
		_ = q.w.Truncate(q.wSize)
		_, _ = q.w.Seek(q.wSize, io.SeekStart)
		return fmt.Errorf("%w: append: %w", ErrQueue, err)
	}
	if err := q.w.Sync(); err != nil {
		_ = q.w.Truncate(q.wSize)
		_, _ = q.w.Seek(q.wSize, io.SeekStart)
		return fmt.Errorf("%w: fsync: %w", ErrQueue, err)
	}
	q.wSize += total
	q.pending += len(recs)
	q.pendB += total
	return nil
}

func (q *diskQueue) rotateLocked() error {
	next := q.wSeg + 1
	f, err := os.OpenFile(filepath.Join(q.dir, segName(next)), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("%w: rotate: %w", ErrQueue, err)
	}
	if err := syncDir(q.dir); err != nil {
		f.Close()
		return err
	}
	q.w.Close()
	q.w, q.wSeg, q.wSize = f, next, 0
	return nil
}

// Read returns up to max records from the committed read position (without
// moving it) and the position after them. Records with a bad checksum end
// their segment: the rest of it is skipped and counted in corrupt.
func (q *diskQueue) Read(max int) ([][]byte, qpos, error) {
	q.mu.Lock()
	p, wSeg, wSize := q.r, q.wSeg, q.wSize
	q.mu.Unlock()
	var out [][]byte
	for len(out) < max && (p.seg < wSeg || p.off < wSize) {
		f, err := os.Open(filepath.Join(q.dir, segName(p.seg)))
		if errors.Is(err, os.ErrNotExist) {
			p = qpos{p.seg + 1, 0}
			continue
		}
		if err != nil {
			return nil, p, fmt.Errorf("%w: %w", ErrQueue, err)
		}
		end := wSize
		if p.seg < wSeg {
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, p, fmt.Errorf("%w: %w", ErrQueue, err)
			}
			end = st.Size()
		}
		for len(out) < max && p.off < end {
			var hdr [recHeader]byte
			l := int64(-1)
			if p.off+recHeader <= end {
				if _, err := f.ReadAt(hdr[:], p.off); err == nil {
					l = int64(binary.BigEndian.Uint32(hdr[:4]))
				}
			}
			var rec []byte
			if l >= 0 && l <= maxRecord && p.off+recHeader+l <= end {
				rec = make([]byte, l)
				if _, err := f.ReadAt(rec, p.off+recHeader); err != nil ||
					crc32.Checksum(rec, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
					rec = nil
				}
			}
			if rec == nil {
				q.mu.Lock()
				q.corrupt++
				q.mu.Unlock()
				p.off = end // skip the rest of this segment
				break
			}
			out = append(out, rec)
			p.off += recHeader + l
		}
		f.Close()
		if p.off >= end && p.seg < wSeg {
			p = qpos{p.seg + 1, 0}
		}
	}
	return out, p, nil
}

// Commit records that everything before p (n records) is in MySQL: the
// offset file is replaced atomically and consumed segments are deleted. When
// the queue is empty the active segment is retired and a fresh one started.
func (q *diskQueue) Commit(p qpos, n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.w == nil {
		return fmt.Errorf("%w: closed", ErrQueue)
	}
	drained := p.seg == q.wSeg && p.off >= q.wSize
	if drained && q.wSize > 0 {
		if err := q.rotateLocked(); err != nil {
			return err
		}
		p = qpos{q.wSeg, 0}
	}
	if err := q.writeOffset(p); err != nil {
		return err
	}
	for s := q.r.seg; s < p.seg; s++ {
		if err := os.Remove(filepath.Join(q.dir, segName(s))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %w", ErrQueue, err)
		}
	}
	q.r = p
	q.pending = max(q.pending-n, 0)
	if drained {
		q.pending, q.pendB = 0, 0
	} else {
		q.pendB = q.bytesAfterLocked(p)
	}
	return nil
}

func (q *diskQueue) bytesAfterLocked(p qpos) int64 {
	var b int64
	for s := p.seg; s <= q.wSeg; s++ {
		size := q.wSize
		if s < q.wSeg {
			st, err := os.Stat(filepath.Join(q.dir, segName(s)))
			if err != nil {
				continue
			}
			size = st.Size()
		}
		if s == p.seg {
			size -= p.off
		}
		b += size
	}
	return b
}

func (q *diskQueue) writeOffset(p qpos) error {
	tmp := filepath.Join(q.dir, offsetFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrQueue, err)
	}
	_, werr := fmt.Fprintf(f, "%d %d\n", p.seg, p.off)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("%w: write offset: %w", ErrQueue, err)
	}
	if err := os.Rename(tmp, filepath.Join(q.dir, offsetFile)); err != nil {
		return fmt.Errorf("%w: %w", ErrQueue, err)
	}
	return syncDir(q.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrQueue, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%w: sync dir: %w", ErrQueue, err)
	}
	return nil
}

// Pending returns the records and bytes not yet committed.
func (q *diskQueue) Pending() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending, q.pendB
}

// damage returns the torn tails cut at open and the corrupt records skipped.
func (q *diskQueue) damage() (torn, corrupt int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.torn, q.corrupt
}

func (q *diskQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.w == nil {
		return nil
	}
	err := q.w.Close()
	q.w = nil
	return err
}
