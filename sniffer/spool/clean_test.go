package spool_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pbx-agent/sniffer/spool"
)

// poolDriver plays calls that start at chosen times through a spool with
// cleaning limits.
type poolDriver struct {
	t   *testing.T
	dir string
	sp  *spool.Spool
	d   *callDriver
	log *syncBuffer
	// start of each call begun, by ref
	starts map[uint64]time.Time
	ended  int // files expected complete
}

// t0 is the first call's start in these tests (UTC, as the spool's
// Location).
var t0 = time.Date(2026, 3, 14, 9, 26, 0, 0, time.UTC)

func newPoolDriver(t *testing.T, dir string, lim spool.PoolLimits) *poolDriver {
	t.Helper()
	if lim.Interval == 0 {
		lim.Interval = time.Hour // passes run when a limit is passed, or CleanNow
	}
	log := &syncBuffer{}
	cfg := spool.Config{Dir: dir, SaveSIP: true, SaveRTP: spool.RTPFull, Location: time.UTC, BufferSize: 4096,
		Pool: lim, Logger: slog.New(slog.NewTextHandler(log, nil))}
	sp, err := spool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spool.Start(t, sp)
	p := &poolDriver{t: t, dir: dir, sp: sp, d: newCallDriver(t, sp), log: log, starts: map[uint64]time.Time{}}
	t.Cleanup(func() { sp.Close(context.Background()) })
	return p
}

// call begins call ref at start and stores its INVITE and n RTP packets.
func (p *poolDriver) call(ref uint64, start time.Time, n int) {
	p.starts[ref] = start
	p.d.start = start
	p.d.begin(ref)
	for i := range n {
		p.d.packet(ref, i)
	}
}

// end ends ref and waits until its two files are complete.
func (p *poolDriver) end(ref uint64) {
	p.d.end(ref)
	p.ended += 2
	p.waitFiles()
}

func (p *poolDriver) waitFiles() {
	for p.sp.Stats().Files < uint64(p.ended) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func (p *poolDriver) path(ref uint64, typ string) string {
	return spool.Path(p.dir, p.starts[ref], time.UTC, typ, spool.FBasename(callID(ref)), "pcap")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// diskBytes sums the regular files under the spool's minute directories.
func diskBytes(t *testing.T, dir string) (files int, n int64) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if parts := strings.Split(filepath.ToSlash(rel), "/"); err != nil || d.IsDir() || len(parts) != 5 || !strings.HasPrefix(parts[0], "20") {
			return nil
		}
		info, err := d.Info()
		if err == nil {
			files++
			n += info.Size()
		}
		return nil
	})
	return files, n
}

// callBytes is the size of one call of n RTP packets on disk.
func callBytes(t *testing.T, n int) int64 {
	p := newPoolDriver(t, t.TempDir(), spool.PoolLimits{Size: 1 << 40})
	p.call(1, t0, n)
	p.end(1)
	_, b := diskBytes(t, p.dir)
	return b
}

// TestPoolSizeOldestFirst: five calls a minute apart; past maxpoolsize the
// oldest minutes go, whole, until the spool is under the limit; the index
// matches the disk.
func TestPoolSizeOldestFirst(t *testing.T) {
	const n = 100
	one := callBytes(t, n)
	tests := []struct {
		name     string
		limit    int64
		wantKept []uint64
	}{
		{"two and a half calls", one*5/2 + 1, []uint64{4, 5}},
		{"exactly two", 2 * one, []uint64{4, 5}},
		{"just under two", 2*one - 1, []uint64{5}},
		{"all", 5 * one, []uint64{1, 2, 3, 4, 5}},
		{"tiny", 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPoolDriver(t, t.TempDir(), spool.PoolLimits{Size: tc.limit})
			for ref := uint64(1); ref <= 5; ref++ {
				p.call(ref, t0.Add(time.Duration(ref-1)*time.Minute), n)
				p.end(ref)
			}
			spool.CleanNow(p.sp)
			var kept []uint64
			for ref := uint64(1); ref <= 5; ref++ {
				sip, rtp := exists(p.path(ref, spool.TypeSIP)), exists(p.path(ref, spool.TypeRTP))
				if sip != rtp {
					t.Errorf("call %d: SIP kept %v, RTP kept %v: a minute goes whole", ref, sip, rtp)
				}
				if sip {
					kept = append(kept, ref)
				}
			}
			if !slices.Equal(kept, tc.wantKept) {
				t.Errorf("kept calls %v, want %v", kept, tc.wantKept)
			}
			files, b := diskBytes(t, p.dir)
			st := p.sp.Stats()
			if st.PoolBytes != b || st.PoolFiles != files {
				t.Errorf("index %d files %d bytes, disk %d files %d bytes", st.PoolFiles, st.PoolBytes, files, b)
			}
			if b > tc.limit {
				t.Errorf("%d bytes left, limit %d", b, tc.limit)
			}
			removed := 5 - len(tc.wantKept)
			if st.CleanedFiles != uint64(2*removed) || st.CleanedBytes != int64(removed)*one || st.CleanedDirs != uint64(2*removed) {
				t.Errorf("stats: %d files %d bytes %d dirs cleaned, want %d, %d, %d", st.CleanedFiles, st.CleanedBytes,
					st.CleanedDirs, 2*removed, int64(removed)*one, 2*removed)
			}
			for ref := uint64(1); ref <= uint64(removed); ref++ {
				if m := spool.MinuteDir(p.dir, p.starts[ref], time.UTC); exists(m) {
					t.Errorf("minute %s left behind", m)
				}
			}
			if removed > 0 && !strings.Contains(p.log.String(), "spool cleaned") {
				t.Errorf("no log of the removal:\n%s", p.log.String())
			}
			if st.CleanErrors != 0 {
				t.Errorf("%d clean errors", st.CleanErrors)
			}
		})
	}
}

// TestFilesNeverAheadOfIndex: a file counted complete (Stats().Files) is
// in the pool's index already, so a test (or an operator) that waits for
// Files and then reads the index sees it. Files used to be counted before
// the index took the file: TestPoolSizeOldestFirst then saw the index one
// file short now and then on a loaded machine. A watcher reads Stats() all
// along while calls are written (no limit: nothing is cleaned).
func TestFilesNeverAheadOfIndex(t *testing.T) {
	p := newPoolDriver(t, t.TempDir(), spool.PoolLimits{Size: 1 << 40})
	stop := make(chan struct{})
	ahead := make(chan spool.Stats, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if st := p.sp.Stats(); st.Files > uint64(st.PoolFiles) {
				ahead <- st
				return
			}
			runtime.Gosched()
		}
	})
	for ref := uint64(1); ref <= 40; ref++ {
		p.call(ref, t0.Add(time.Duration(ref-1)*time.Minute), 5)
		p.end(ref)
	}
	close(stop)
	wg.Wait()
	select {
	case st := <-ahead:
		t.Errorf("Stats().Files %d ahead of the index's %d files", st.Files, st.PoolFiles)
	default:
	}
	if st := p.sp.Stats(); st.Files != 80 || st.PoolFiles != 80 {
		t.Errorf("files %d, index %d; want 80 each", st.Files, st.PoolFiles)
	}
}

// TestPoolKindSize: maxpoolrtpsize removes the oldest RTP directories
// only; SIP stays.
func TestPoolKindSize(t *testing.T) {
	p := newPoolDriver(t, t.TempDir(), spool.PoolLimits{RTPSize: 1})
	for ref := uint64(1); ref <= 3; ref++ {
		p.call(ref, t0.Add(time.Duration(ref)*time.Minute), 50)
		p.end(ref)
	}
	spool.CleanNow(p.sp)
	for ref := uint64(1); ref <= 3; ref++ {
		if !exists(p.path(ref, spool.TypeSIP)) {
			t.Errorf("call %d: SIP pcap removed by maxpoolrtpsize", ref)
		}
		if exists(p.path(ref, spool.TypeRTP)) {
			t.Errorf("call %d: RTP pcap kept past maxpoolrtpsize = 1 byte", ref)
		}
	}
	if st := p.sp.Stats(); st.CleanedFiles != 3 {
		t.Errorf("%d files cleaned, want 3", st.CleanedFiles)
	}
}

// TestPoolDays: maxpooldays removes minutes older than the cutoff, all
// kinds; maxpoolrtpdays only RTP.
func TestPoolDays(t *testing.T) {
	now := t0.Add(72 * time.Hour)
	starts := []time.Time{
		now.Add(-72 * time.Hour),             // 1: past both limits
		now.Add(-48*time.Hour - time.Minute), // 2: past both limits, by a minute
		now.Add(-47 * time.Hour),             // 3: past the RTP limit only
		now.Add(-2 * time.Hour),              // 4: within both
	}
	p := newPoolDriver(t, t.TempDir(), spool.PoolLimits{Days: 2, RTPDays: 1, Now: func() time.Time { return now }})
	for i, s := range starts {
		p.call(uint64(i+1), s, 20)
		p.end(uint64(i + 1))
	}
	spool.CleanNow(p.sp)
	want := []struct{ sip, rtp bool }{{false, false}, {false, false}, {true, false}, {true, true}}
	for i, w := range want {
		ref := uint64(i + 1)
		if got := exists(p.path(ref, spool.TypeSIP)); got != w.sip {
			t.Errorf("call %d: SIP kept %v, want %v", ref, got, w.sip)
		}
		if got := exists(p.path(ref, spool.TypeRTP)); got != w.rtp {
			t.Errorf("call %d: RTP kept %v, want %v", ref, got, w.rtp)
		}
	}
	if exists(filepath.Join(p.dir, starts[0].Format("2006-01-02"))) {
		t.Errorf("day directory of call 1 left behind")
	}
}

// countRecords counts the records of a pcap file.
func countRecords(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for off := 24; off+16 <= len(b); n++ {
		off += 16 + int(uint32(b[off+8])|uint32(b[off+9])<<8|uint32(b[off+10])<<16|uint32(b[off+11])<<24)
	}
	return n
}

// TestPoolOpenCallKept: a call open in the oldest minute while newer
// minutes fill up. With every minute past maxpooldays, every completed
// file goes (the open call's own minute included) but the open call's
// files stay; it goes on across the minute boundary and ends whole, and
// the next pass removes it. (A day limit with a test clock: passes run
// only when the test says.)
func TestPoolOpenCallKept(t *testing.T) {
	now := func() time.Time { return t0.Add(10 * 24 * time.Hour) }
	p := newPoolDriver(t, t.TempDir(), spool.PoolLimits{Days: 1, Now: now})
	const open, n = 1, 200
	p.call(open, t0, n) // 200 RTP packets: several buffers on disk already
	for !exists(p.path(open, spool.TypeRTP) + ".tmp") {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	p.call(2, t0, 30) // same minute, ends
	p.end(2)
	for ref := uint64(3); ref <= 5; ref++ {
		p.call(ref, t0.Add(time.Duration(ref)*time.Minute), 30)
		p.end(ref)
	}
	spool.CleanNow(p.sp)
	for ref := uint64(2); ref <= 5; ref++ {
		if exists(p.path(ref, spool.TypeSIP)) || exists(p.path(ref, spool.TypeRTP)) {
			t.Errorf("call %d ended: its files should be gone", ref)
		}
	}
	if !exists(p.path(open, spool.TypeRTP) + ".tmp") {
		t.Fatalf("the open call's RTP pcap was removed")
	}
	// The call goes on across the next minute boundary, then ends.
	p.d.start = t0.Add(55 * time.Second)
	for i := n; i < 2*n; i++ {
		p.d.packet(open, i)
	}
	p.d.end(open)
	p.ended += 2
	p.waitFiles()
	if got := countRecords(t, p.path(open, spool.TypeRTP)); got != 2*n {
		t.Errorf("open call's RTP pcap: %d records, want %d", got, 2*n)
	}
	spool.CleanNow(p.sp)
	if exists(p.path(open, spool.TypeRTP)) || exists(filepath.Join(p.dir, t0.Format("2006-01-02"))) {
		t.Errorf("ended call's files or its day directory left behind")
	}
	st := p.sp.Stats()
	if st.PoolBytes != 0 || st.PoolFiles != 0 || st.CleanedFiles != 10 || st.CleanErrors != 0 {
		t.Errorf("pool %d files %d bytes, %d cleaned, %d errors; want 0, 0, 10, 0", st.PoolFiles, st.PoolBytes,
			st.CleanedFiles, st.CleanErrors)
	}
	if !strings.Contains(p.log.String(), "kept_open=1") {
		t.Errorf("the first pass does not log the open file it kept:\n%s", p.log.String())
	}
}

// TestPoolRestart: a spool written without limits is reopened with them:
// the index is rebuilt from the disk (a leftover ".tmp" of a crash
// included), the oldest minutes go, and what is not a spool minute (the
// CDR queue) is never touched.
func TestPoolRestart(t *testing.T) {
	dir := t.TempDir()
	var one int64
	{
		p := newPoolDriver(t, dir, spool.PoolLimits{})
		for ref := uint64(1); ref <= 4; ref++ {
			p.call(ref, t0.Add(time.Duration(ref)*time.Minute), 40)
			p.end(ref)
		}
		if err := p.sp.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, b := diskBytes(t, dir)
		one = b / 4
	}
	leftover := spool.Path(dir, t0, time.UTC, spool.TypeRTP, "crashed", "pcap.tmp")
	other := filepath.Join(dir, "cdrqueue", "2026-03-14", "queue.bin")
	for _, f := range []string{leftover, other} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, bytes.Repeat([]byte{1}, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(leftover, old, old); err != nil {
		t.Fatal(err)
	}
	p := newPoolDriver(t, dir, spool.PoolLimits{Size: 2 * one})
	files, b := spool.Indexed(p.sp)
	if files != 9 || b != 4*one+1000 {
		t.Errorf("indexed %d files %d bytes, want 9 and %d", files, b, 4*one+1000)
	}
	spool.CleanNow(p.sp)
	p.starts = map[uint64]time.Time{}
	for ref := uint64(1); ref <= 4; ref++ {
		p.starts[ref] = t0.Add(time.Duration(ref) * time.Minute)
		if got, want := exists(p.path(ref, spool.TypeSIP)), ref > 2; got != want {
			t.Errorf("call %d kept %v, want %v", ref, got, want)
		}
	}
	if exists(leftover) {
		t.Errorf("leftover .tmp of the oldest minute kept")
	}
	if !exists(other) {
		t.Errorf("the CDR queue was touched")
	}
	if st := p.sp.Stats(); st.PoolBytes != 2*one {
		t.Errorf("pool %d bytes, want %d", st.PoolBytes, 2*one)
	}
}

// TestPoolWakesOnLimit: without CleanNow, the cleaner goroutine runs a
// pass as soon as a completed file passes the limit.
func TestPoolWakesOnLimit(t *testing.T) {
	p := newPoolDriver(t, t.TempDir(), spool.PoolLimits{Size: 1})
	p.call(1, t0, 10)
	p.end(1)
	for p.sp.Stats().CleanedFiles < 2 {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if exists(p.path(1, spool.TypeRTP)) {
		t.Errorf("RTP pcap kept")
	}
	if err := p.sp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPoolScan is the start-up scan (index rebuilt from disk) of a
// spool of 600 minutes × SIP+RTP × 5 files.
func BenchmarkPoolScan(b *testing.B) {
	dir := b.TempDir()
	for m := range 600 {
		start := t0.Add(time.Duration(m) * time.Minute)
		for _, typ := range []string{spool.TypeSIP, spool.TypeRTP} {
			for f := range 5 {
				path := spool.Path(dir, start, time.UTC, typ, fmt.Sprintf("call-%d", f), "pcap")
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		sp, err := spool.New(spool.Config{Dir: dir, Location: time.UTC, Pool: spool.PoolLimits{Size: 1 << 40, Interval: time.Hour}})
		if err != nil {
			b.Fatal(err)
		}
		spool.Start(b, sp)
		if files, _ := spool.Indexed(sp); files != 6000 {
			b.Fatalf("indexed %d files, want 6000", files)
		}
		sp.Close(context.Background())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*6000), "ns/file")
}
