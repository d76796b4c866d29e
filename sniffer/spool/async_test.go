package spool_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/sip"
	"pbx-agent/sniffer/spool"
)

// goid returns the current goroutine's id (from its stack header).
func goid() uint64 {
	var b [64]byte
	f := bytes.Fields(b[:runtime.Stack(b[:], false)])
	id, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return id
}

// gateFS is the disk seen by the spool's I/O goroutines in these tests:
// file creations wait for gate to close (when set) and then sleep (when
// set). Any disk call made from the packet goroutine is counted instead of
// blocking, so a regression fails the test rather than hanging it.
type gateFS struct {
	packetG      atomic.Uint64 // goroutine id of the packet path
	gate         chan struct{}
	sleep        time.Duration
	started      atomic.Int64 // creations begun (waiting at the gate or done)
	done         atomic.Int64 // creations completed
	onPacketPath atomic.Int64 // disk calls made on the packet goroutine
}

func (g *gateFS) onPacket() bool {
	if g.packetG.Load() == goid() {
		g.onPacketPath.Add(1)
		return true
	}
	return false
}

func (g *gateFS) MkdirAll(path string, perm fs.FileMode) error {
	g.onPacket()
	return os.MkdirAll(path, perm)
}

func (g *gateFS) OpenFile(name string, flag int, perm fs.FileMode) (spool.DiskFile, error) {
	create := flag&os.O_CREATE != 0
	if !g.onPacket() && create {
		g.started.Add(1)
		if g.gate != nil {
			<-g.gate
		}
		time.Sleep(g.sleep)
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if create {
		g.done.Add(1)
	}
	return gateFile{f, g}, nil
}

func (g *gateFS) Rename(oldpath, newpath string) error {
	g.onPacket()
	return os.Rename(oldpath, newpath)
}

type gateFile struct {
	*os.File
	g *gateFS
}

func (f gateFile) WriteAt(b []byte, off int64) (int, error) {
	f.g.onPacket()
	return f.File.WriteAt(b, off)
}

func (f gateFile) Close() error {
	f.g.onPacket()
	return f.File.Close()
}

// callDriver plays many calls through one spool from the calling
// goroutine (the packet path): an INVITE starts each, RTP follows, and
// CallEnded ends it. Every call has its own Call-ID.
type callDriver struct {
	sp     *spool.Spool
	invite decode.Packet
	media  decode.Packet
	msg    sip.Message
	start  time.Time
}

func newCallDriver(t testing.TB, sp *spool.Spool) *callDriver {
	d := &callDriver{sp: sp}
	d.invite, d.media, d.msg = onePacket(t, "")
	d.start = d.media.Time
	return d
}

func callID(ref uint64) string { return fmt.Sprintf("call-%d@spool.test", ref) }

func (d *callDriver) begin(ref uint64) {
	d.msg.CallID = []byte(callID(ref))
	d.sp.SIP(&d.msg, call.Meta{Time: d.start}, ref, &d.invite)
}

func (d *callDriver) packet(ref uint64, i int) {
	d.media.Time = d.start.Add(time.Duration(i) * 20 * time.Millisecond)
	var md call.Media
	handMedia(d.sp, &md, &d.media, ref, false)
}

// interleave begins calls 1..calls, then hands each perCall packets,
// one packet of every call in turn.
func (d *callDriver) interleave(calls uint64, perCall int) {
	for ref := uint64(1); ref <= calls; ref++ {
		d.begin(ref)
	}
	for i := range perCall {
		for ref := uint64(1); ref <= calls; ref++ {
			d.packet(ref, i)
		}
	}
}

func (d *callDriver) end(ref uint64) {
	d.sp.CallEnded(&call.CDR{CallID: callID(ref), CallRef: ref})
}

func (d *callDriver) path(dir string, ref uint64, typ, ext string) string {
	return spool.Path(dir, d.start, time.UTC, typ, spool.FBasename(callID(ref)), ext)
}

// tmpFiles lists the ".tmp" files under dir.
func tmpFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestPacketPathNeverBlocksOnDisk: with every file creation held at a gate,
// the packet goroutine still stores 40 calls × 250 RTP packets (buffers
// handed over, calls ended) and returns each time; no disk call is made on
// it. Released, Close writes every packet out.
func TestPacketPathNeverBlocksOnDisk(t *testing.T) {
	const calls, perCall = 40, 250
	dir := t.TempDir()
	g := &gateFS{gate: make(chan struct{})}
	g.packetG.Store(goid())
	cfg := spool.Config{Dir: dir, SaveSIP: true, SaveRTP: spool.RTPFull, SaveAudio: "wav", Location: time.UTC, BufferSize: 4096}
	sp := startOnFS(t, cfg, g)
	released := false
	defer func() {
		if !released {
			close(g.gate)
			sp.Close(context.Background())
		}
	}()
	d := newCallDriver(t, sp)
	var returned int
	for ref := uint64(1); ref <= calls; ref++ {
		d.begin(ref)
		for i := range perCall {
			d.packet(ref, i)
			returned++
		}
		if ref%2 == 0 {
			d.end(ref) // completion queued behind the blocked creations
		}
	}
	st := sp.Stats()
	if returned != calls*perCall || st.RTPPackets != calls*perCall {
		t.Fatalf("%d HandleMedia returned, %d RTP counted; want %d", returned, st.RTPPackets, calls*perCall)
	}
	// The I/O goroutine is inside a creation, held at the gate: every
	// packet above returned while creations were pending.
	for g.started.Load() == 0 {
		runtime.Gosched()
	}
	if n := g.done.Load(); n != 0 {
		t.Errorf("%d files created before the gate opened", n)
	}
	if n := g.onPacketPath.Load(); n != 0 {
		t.Errorf("%d disk calls on the packet goroutine", n)
	}
	if st.Queued == 0 || st.Files != 0 || st.Bytes != 0 {
		t.Errorf("while the disk is held: queued %d, files %d, bytes %d; want >0, 0, 0", st.Queued, st.Files, st.Bytes)
	}
	if st.DroppedRTP+st.DroppedSIP+st.DroppedAudio != 0 {
		t.Errorf("dropped with room left: %+v", st)
	}

	close(g.gate)
	released = true
	if err := sp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = sp.Stats()
	if want := uint64(3 * calls); st.Files != want || uint64(g.done.Load()) != want {
		t.Errorf("%d files completed, %d created; want %d", st.Files, g.done.Load(), want)
	}
	if st.Queued != 0 || st.OpenFiles != 0 || st.Errors != 0 {
		t.Errorf("after Close: %+v", st)
	}
	if n := g.onPacketPath.Load(); n != 0 {
		t.Errorf("%d disk calls on the packet goroutine", n)
	}
	for ref := uint64(1); ref <= calls; ref++ {
		if _, pkts := readPcap(t, d.path(dir, ref, spool.TypeRTP, "pcap")); len(pkts) != perCall {
			t.Errorf("call %d: %d RTP packets stored, want %d", ref, len(pkts), perCall)
		}
		if _, pkts := readPcap(t, d.path(dir, ref, spool.TypeSIP, "pcap")); len(pkts) != 1 {
			t.Errorf("call %d: %d SIP packets stored, want 1", ref, len(pkts))
		}
		if w := readWAV(t, d.path(dir, ref, spool.TypeAudio, "wav")); w.duration() < time.Duration(perCall-10)*20*time.Millisecond {
			t.Errorf("call %d: WAV of %v", ref, w.duration())
		}
	}
	if left := tmpFiles(dir); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// TestDropWhenDiskBehind: with creations held and 8 KiB allowed in the
// queue, packets that need a fresh buffer are dropped and counted (never
// blocked), the drop is logged, and every packet accepted reaches the file.
func TestDropWhenDiskBehind(t *testing.T) {
	const calls, perCall = 4, 400
	dir := t.TempDir()
	g := &gateFS{gate: make(chan struct{})}
	g.packetG.Store(goid())
	var logs syncBuffer
	cfg := spool.Config{Dir: dir, SaveRTP: spool.RTPFull, Location: time.UTC, BufferSize: 1024, MaxQueued: 8 << 10,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	sp := startOnFS(t, cfg, g)
	d := newCallDriver(t, sp)
	d.interleave(calls, perCall)
	st := sp.Stats()
	if st.DroppedRTP == 0 {
		t.Fatalf("nothing dropped with the disk held and an 8 KiB queue: %+v", st)
	}
	if st.PeakQueued > cfg.MaxQueued {
		t.Errorf("peak queued %d > cap %d", st.PeakQueued, cfg.MaxQueued)
	}
	if n := strings.Count(logs.String(), "spool disk too slow"); n == 0 || uint64(n) >= st.DroppedRTP {
		t.Errorf("drop logged %d times for %d drops, want at least once and once per interval", n, st.DroppedRTP)
	}
	for ref := uint64(1); ref <= calls; ref++ {
		d.end(ref)
	}
	close(g.gate)
	if err := sp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var stored uint64
	for ref := uint64(1); ref <= calls; ref++ {
		_, pkts := readPcap(t, d.path(dir, ref, spool.TypeRTP, "pcap"))
		stored += uint64(len(pkts))
	}
	if stored+st.DroppedRTP != calls*perCall {
		t.Errorf("%d stored + %d dropped != %d sent", stored, st.DroppedRTP, calls*perCall)
	}
	if n := g.onPacketPath.Load(); n != 0 {
		t.Errorf("%d disk calls on the packet goroutine", n)
	}
}

// syncBuffer is a buffer safe for a logger and the test at once.
type syncBuffer = testkit.SyncBuffer

// startOnFS makes a spool over fsys and runs it for the test.
func startOnFS(t *testing.T, cfg spool.Config, fsys spool.FS) *spool.Spool {
	t.Helper()
	sp, err := spool.NewWithFS(cfg, fsys)
	if err != nil {
		t.Fatal(err)
	}
	spool.Start(t, sp)
	return sp
}

// TestCloseAbandonsOnContext: when Close's ctx ends while the disk is held,
// Close stops the I/O goroutines after their current operation, reports
// the context's error and leaves no descriptor open.
func TestCloseAbandonsOnContext(t *testing.T) {
	dir := t.TempDir()
	g := &gateFS{gate: make(chan struct{})}
	sp := startOnFS(t, spool.Config{Dir: dir, SaveRTP: spool.RTPFull, Location: time.UTC, BufferSize: 1024}, g)
	d := newCallDriver(t, sp)
	d.begin(1)
	for i := range 100 {
		d.packet(1, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The creation in progress is let through once Close has given up.
	go func() { <-ctx.Done(); close(g.gate) }()
	err := sp.Close(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	if st := sp.Stats(); st.OpenFiles != 0 || st.Files != 0 {
		t.Errorf("after an abandoned Close: %d open, %d completed; want 0, 0", st.OpenFiles, st.Files)
	}
	if err := sp.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// TestCloseWhileHammering runs the packet path (calls starting, RTP,
// calls ending) while another goroutine closes the spool (run it with
// -race): nothing is stored after Close, everything before it is
// completed, no temp file or descriptor is left.
func TestCloseWhileHammering(t *testing.T) {
	dir := t.TempDir()
	cfg := spool.Config{Dir: dir, SaveSIP: true, SaveRTP: spool.RTPFull, SaveAudio: "wav", Location: time.UTC, BufferSize: 1024, IOWorkers: 2, MaxOpenFiles: 8}
	sp, err := spool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spool.Start(t, sp)
	d := newCallDriver(t, sp)
	started := make(chan struct{})
	var closeErr error
	closed := make(chan struct{})
	go func() {
		<-started
		closeErr = sp.Close(context.Background())
		close(closed)
	}()
	var ref uint64
	var stats []spool.Stats
	for i := 0; ; i++ {
		if i%50 == 0 {
			if ref > 0 {
				d.end(ref)
			}
			ref++
			d.begin(ref)
		}
		d.packet(ref, i%50)
		if i == 2000 {
			close(started)
		}
		if i%100 == 0 {
			stats = append(stats, sp.Stats()) // Stats concurrent with both
		}
		select {
		case <-closed:
		default:
			continue
		}
		break
	}
	// After Close: ignored.
	d.begin(ref + 1)
	d.packet(ref+1, 0)
	d.end(ref + 1)
	if closeErr != nil {
		t.Fatal(closeErr)
	}
	st := sp.Stats()
	if st.Calls != 0 || st.OpenFiles != 0 || st.Queued != 0 || st.Errors != 0 {
		t.Errorf("after Close: %+v", st)
	}
	if len(stats) == 0 || st.Files == 0 {
		t.Fatalf("no file completed")
	}
	var files uint64
	filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			files++
		}
		return nil
	})
	if files != st.Files {
		t.Errorf("%d files on disk, %d completed", files, st.Files)
	}
	if left := tmpFiles(dir); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
	if _, err := os.Stat(d.path(dir, ref+1, spool.TypeSIP, "pcap")); err == nil {
		t.Errorf("call started after Close was stored")
	}
}

// TestNoGoroutineLeak: in a synctest bubble, every goroutine the spool
// starts must have exited when Close returns (synctest.Test fails on a
// goroutine left blocked); outside one, no I/O goroutine outlives Close.
func TestNoGoroutineLeak(t *testing.T) {
	dir := t.TempDir()
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sp, err := spool.New(spool.Config{Dir: dir, SaveSIP: true, SaveRTP: spool.RTPFull, Location: time.UTC, IOWorkers: workers})
				if err != nil {
					t.Fatal(err)
				}
				spool.Start(t, sp)
				d := newCallDriver(t, sp)
				d.begin(uint64(workers))
				for i := range 100 {
					d.packet(uint64(workers), i)
				}
				if err := sp.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	t.Run("stacks", func(t *testing.T) {
		for range 20 {
			sp, err := spool.New(spool.Config{Dir: dir, SaveRTP: spool.RTPFull, IOWorkers: 2})
			if err != nil {
				t.Fatal(err)
			}
			spool.Start(t, sp)
			if err := sp.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		// Close joins the workers; a worker may still be unwinding its
		// deferred calls, so look a bounded number of times.
		var stacks string
		for range 1000 {
			buf := make([]byte, 1<<20)
			stacks = string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, "spool.(*worker).run") {
				return
			}
			runtime.Gosched()
		}
		t.Errorf("I/O goroutines left after Close:\n%s", stacks)
	})
}

// TestLifecycle: New starts nothing (in a synctest bubble a goroutine
// left running fails the test); what was queued before Run is written
// once it runs; a spool never run is written out by Close itself; a
// Run after Close has nothing to do, a second Run is refused.
func TestLifecycle(t *testing.T) {
	for _, run := range []bool{true, false} {
		t.Run(fmt.Sprintf("run=%v", run), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				sp, err := spool.New(spool.Config{Dir: dir, SaveRTP: spool.RTPFull, Location: time.UTC})
				if err != nil {
					t.Fatal(err)
				}
				d := newCallDriver(t, sp)
				d.begin(1)
				d.packet(1, 0)
				d.end(1)
				synctest.Wait()
				if _, err := os.Stat(d.path(dir, 1, spool.TypeRTP, "pcap")); err == nil {
					t.Fatal("a file written before Run")
				}
				if run {
					spool.Start(t, sp)
				}
				if err := sp.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(d.path(dir, 1, spool.TypeRTP, "pcap")); err != nil {
					t.Fatal(err)
				}
				if err := sp.Run(context.Background()); err != nil {
					t.Errorf("Run after Close: %v", err)
				}
			})
		})
	}
}

// TestRunTwice: of two Runs of one spool, one is refused with
// ErrRunning; the other returns once Close is done.
func TestRunTwice(t *testing.T) {
	sp, err := spool.New(spool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- sp.Run(context.Background()) }()
	}
	first := <-errs
	if !errors.Is(first, spool.ErrRunning) {
		t.Fatalf("first Run to return: %v, want ErrRunning", first)
	}
	if err := sp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestWaitForDisk: with WaitForDisk (capture-file replay) the packet side
// waits for room instead of dropping: a slow disk and an 8 KiB queue lose
// nothing.
func TestWaitForDisk(t *testing.T) {
	const calls, perCall = 4, 300
	dir := t.TempDir()
	g := &gateFS{sleep: time.Millisecond}
	cfg := spool.Config{Dir: dir, SaveSIP: true, SaveRTP: spool.RTPFull, Location: time.UTC, BufferSize: 1024, MaxQueued: 8 << 10, WaitForDisk: true}
	sp := startOnFS(t, cfg, g)
	d := newCallDriver(t, sp)
	d.interleave(calls, perCall)
	// Ending a call queues its last buffers whatever the queue holds
	// (that memory is already in use): look at the peak before.
	if st := sp.Stats(); st.PeakQueued > cfg.MaxQueued {
		t.Errorf("peak queued %d > cap %d", st.PeakQueued, cfg.MaxQueued)
	}
	for ref := uint64(1); ref <= calls; ref++ {
		d.end(ref)
	}
	if err := sp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := sp.Stats()
	if st.DroppedRTP+st.DroppedSIP != 0 {
		t.Errorf("dropped %d RTP, %d SIP with WaitForDisk", st.DroppedRTP, st.DroppedSIP)
	}
	for ref := uint64(1); ref <= calls; ref++ {
		if _, pkts := readPcap(t, d.path(dir, ref, spool.TypeRTP, "pcap")); len(pkts) != perCall {
			t.Errorf("call %d: %d RTP packets stored, want %d", ref, len(pkts), perCall)
		}
	}
}

// TestMediaAfterClose: media handed over after Close, one datagram at a
// time or in a batch, is ignored as SIP is: nothing stored, counted or
// queued, and the packet side never waits. "abandoned" is a Close whose
// ctx ended before the calls were completed: they are still tracked, the
// I/O goroutines are gone and the queue is full, so storing would queue
// work nobody writes (with WaitForDisk, wait for room forever).
func TestMediaAfterClose(t *testing.T) {
	tests := []struct {
		name      string
		abandoned bool
		wait      bool // Config.WaitForDisk
		batch     bool // HandleMediaBatch instead of HandleMedia
	}{
		{name: "closed"},
		{name: "closed batch", batch: true},
		{name: "abandoned", abandoned: true},
		{name: "abandoned batch", abandoned: true, batch: true},
		{name: "abandoned wait for disk", abandoned: true, wait: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := spool.Config{Dir: t.TempDir(), SaveSIP: true, SaveRTP: spool.RTPFull, SaveRTCP: true, SaveAudio: "wav",
				Location: time.UTC, BufferSize: 1024, MaxQueued: 8 << 10, WaitForDisk: tt.wait}
			sp, err := spool.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			spool.Start(t, sp)
			d := newCallDriver(t, sp)
			d.begin(1)
			for i := range 10 {
				d.packet(1, i)
			}
			ctx := context.Background()
			if tt.abandoned {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			err = sp.Close(ctx)
			if tt.abandoned {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Close = %v, want context.Canceled", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			before := sp.Stats()
			if tt.abandoned && before.Calls == 0 {
				t.Fatal("abandoned Close completed the call: the case is not tested")
			}

			rtcp := d.media
			rtcp.Payload = []byte{0x81, 200, 0, 6, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0}
			ms := make([]call.Media, 0, 600)
			for i := range 300 {
				d.media.Time = d.start.Add(time.Duration(10+i) * 20 * time.Millisecond)
				for _, p := range []*decode.Packet{&d.media, &rtcp} {
					md := call.Media{Packet: p, Ref: 1, Party: call.PartyCallee, ToParty: true}
					md.Classify()
					ms = append(ms, md)
				}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				if tt.batch {
					sp.HandleMediaBatch(ms)
					return
				}
				for i := range ms {
					sp.HandleMedia(&ms[i])
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("media after Close blocked the packet side")
			}
			if after := sp.Stats(); after != before {
				t.Errorf("media after Close changed the stats:\n got %+v\nwant %+v", after, before)
			}
			// The call's end and a listener after Close: nothing queued
			// for stopped workers, no decoder started.
			d.end(1)
			if after := sp.Stats(); after != before {
				t.Errorf("CallEnded after Close changed the stats:\n got %+v\nwant %+v", after, before)
			}
			if _, err := sp.Subscribe(ctx, 1, 8); !errors.Is(err, spool.ErrClosed) {
				t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
			}
		})
	}
}
