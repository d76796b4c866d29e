package sniffer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/simulate"
)

// benchCapture returns a generated 1,000-call capture: $PBX_BENCH_PCAP when
// set (scripts/bench.sh makes one to time cat and tshark on the same file),
// else a 1,000 calls × 10 s capture written to a temp dir.
func benchCapture(b *testing.B) string {
	if p := os.Getenv("PBX_BENCH_PCAP"); p != "" {
		return p
	}
	path := filepath.Join(b.TempDir(), "bench.pcap")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	opts := simulate.Options{Calls: 1000, Concurrency: 1000, Duration: 10e9, Seed: 1}
	if _, err := simulate.WritePcap(context.Background(), f, opts); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkPacketPath measures decode + SIP parse + call tracking + RTP
// lookup per packet, reading a 1,000-call capture (reopened at EOF, with a
// fresh sniffer, so b.N may exceed the file). One op = one packet.
func BenchmarkPacketPath(b *testing.B) {
	benchPacketPath(b, benchCapture(b), Config{})
}

// BenchmarkPacketPathFaxDetect is BenchmarkPacketPath with faxdetect on:
// every G.711 packet also goes through its stream's fax tone detector.
func BenchmarkPacketPathFaxDetect(b *testing.B) {
	benchPacketPath(b, benchCapture(b), Config{FaxDetect: true})
}

var loadOnce struct {
	sync.Once
	path string
	err  error
}

// loadCapture returns the 300-call × 60 s G.711 capture `pbx-agent gen
// -calls 300 -duration 60 -cps 50` writes: $PBX_LOAD_PCAP when set, else
// generated once per test binary into a temp dir (≈ 415 MB).
func loadCapture(b *testing.B) string {
	if p := os.Getenv("PBX_LOAD_PCAP"); p != "" {
		return p
	}
	loadOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pbx-load")
		if err != nil {
			loadOnce.err = err
			return
		}
		loadOnce.path = filepath.Join(dir, "load300.pcap")
		f, err := os.Create(loadOnce.path)
		if err != nil {
			loadOnce.err = err
			return
		}
		defer f.Close()
		opts := simulate.Options{Calls: 300, Duration: 60 * time.Second, CPS: 50, Seed: 1}
		_, loadOnce.err = simulate.WritePcap(context.Background(), f, opts)
	})
	if loadOnce.err != nil {
		b.Fatal(loadOnce.err)
	}
	return loadOnce.path
}

// BenchmarkSIPDetection compares the packet path with SIP found by content
// on every port (the default) against SIP on the configured ports only
// (sip_detect = no, the path before detection existed), on the 300-call ×
// 60 s G.711 load capture, in one run:
//
//	go test -run '^$' -bench SIPDetection -count 6 ./sniffer/
func BenchmarkSIPDetection(b *testing.B) {
	path := loadCapture(b)
	b.Run("sipport-only", func(b *testing.B) { benchPacketPath(b, path, Config{SIPByPortOnly: true}) })
	b.Run("detect", func(b *testing.B) { benchPacketPath(b, path, Config{}) })
}

func benchPacketPath(b *testing.B, path string, cfg Config) {
	ps, _ := ParsePorts("5060")
	var calls int
	newSniffer := func() *Sniffer {
		c := cfg
		c.SIPPorts = ps
		c.Call = call.Config{IdleTimeout: -1, OnCallEnd: func(*call.CDR) { calls++ }}
		return New(c)
	}
	open := func() capture.Source {
		src, err := capture.OpenFile(path)
		if err != nil {
			b.Fatal(err)
		}
		return src
	}
	src, sn := open(), newSniffer()
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		data, ci, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			sn.Flush()
			src.Close()
			src, sn = open(), newSniffer()
			i--
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(data))
		if err := sn.HandleFrame(src.LinkType(), data, ci.Timestamp); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := cputime.Process() - cpu0
	src.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	// CPU seconds are what a shared machine's other load disturbs least.
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "packets/cpu-s")
	b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
}

// BenchmarkActiveCalls measures, with 1,000 and 10,000 concurrent
// generated calls (PBX_BENCH_CALLS lists the counts instead, e.g.
// 1000,10000,100000), what the packet path costs per call followed:
//
//   - cpu-ns/packet: the CPU time per packet of the packet path (decode,
//     call lookup, RTP statistics with the three jitter-buffer simulators)
//     once every call is set up and streaming. The frames of a window
//     (activeWindow packets: 10 s of 1,000 calls' traffic, 0.2 s of
//     100,000 calls') are generated first, the generator is dropped, and
//     only the sniffer's handling of them is timed, with the garbage
//     collector paused (the path allocates nothing per packet; a GC
//     cycle's cost follows the heap, not the packets). Flat from 1,000 to
//     100,000 calls means the per-packet cost does not grow with the calls
//     followed. p10-cpu-ns/packet and p50-cpu-ns/packet are the 10th and
//     50th percentiles of the thread CPU time per packet of each 1 MiB
//     chunk of frames (≈ 5,000): on a shared machine the low percentile is
//     the cost undisturbed by other processes, which take the core and
//     evict the sniffer's data from its caches.
//   - heap-bytes/call: the live heap after GC once the window is handled
//     (call table entry, SIP strings, media index, two RTP streams with
//     their jitter-buffer simulators), the generator freed first, divided
//     by the active calls; inuse-bytes/call counts the heap's in-use spans
//     instead (with the holes the generator's objects left).
//
// PBX_BENCH_JB=off runs it with the three jitter-buffer simulators off
// (jitterbuffer_f1, _f2, _adapt = no).
func BenchmarkActiveCalls(b *testing.B) {
	sizes := []int{1000, 10000}
	if list := os.Getenv("PBX_BENCH_CALLS"); list != "" {
		sizes = sizes[:0]
		for _, f := range strings.Split(list, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("PBX_BENCH_CALLS: bad count %q", f)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("calls=%d", n), func(b *testing.B) {
			for b.Loop() {
				activeCalls(b, n)
			}
		})
	}
}

// activeWindow is the packets BenchmarkActiveCalls times, at every size:
// at 100,000 calls ten packets per stream (≈ 430 MB of G.711 frames; the
// arena is reserved for frames of up to 256 bytes on average, and only the
// pages written take memory). PBX_BENCH_CPUPROFILE=FILE writes a CPU
// profile of the window (FILE.calls).
const activeWindow = 2_000_000

// activeFrames are a window's frames, generated before they are timed.
type activeFrames struct {
	arena []byte
	end   []uint32 // frame i is arena[end[i-1]:end[i]]
	ts    []int64  // capture time, ns since the epoch
	chunk []byte   // frames are handled out of it, as out of the pcap reader's buffer
}

func activeCalls(b *testing.B, calls int) {
	// Calls are set up over 4 s and each talks 30 s after its answer: all
	// are active from about 5 s on.
	gen, err := simulate.New(simulate.Options{Calls: calls, Concurrency: calls, CPS: float64(calls) / 4,
		Duration: 30 * time.Second, Seed: 3})
	if err != nil {
		b.Fatal(err)
	}
	link := gen.LinkType()
	// The window's buffers are in the heap before the sniffer is: the
	// heap's growth is then the sniffer's alone once the generator is gone.
	w := activeFrames{arena: make([]byte, 0, activeWindow*256), end: make([]uint32, 0, activeWindow),
		ts: make([]int64, 0, activeWindow), chunk: make([]byte, 1<<20)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ps, _ := ParsePorts("5060")
	cfg := Config{SIPPorts: ps, Call: call.Config{IdleTimeout: -1}}
	if os.Getenv("PBX_BENCH_JB") == "off" {
		off := rtp.JBConfig{Size: -1}
		cfg.F1, cfg.F2, cfg.Adapt = off, off, off
	}
	sn := New(cfg)
	epoch := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	from, to := epoch.Add(5500*time.Millisecond), epoch.Add(30*time.Second)
	read := func() ([]byte, time.Time) {
		data, ci, err := gen.ZeroCopyReadPacketData()
		if err != nil { // io.EOF too: the window ends before the calls do
			b.Fatal(err)
		}
		return data, ci.Timestamp
	}
	data, ts := read()
	for ts.Before(from) {
		_ = sn.HandleFrame(link, data, ts)
		data, ts = read()
	}
	if active := sn.Table().ActiveCount(); active < calls*9/10 {
		b.Fatalf("only %d calls active at the window", active)
	}
	for len(w.ts) < activeWindow && ts.Before(to) && len(w.arena)+len(data) <= cap(w.arena) {
		w.arena = append(w.arena, data...)
		w.end = append(w.end, uint32(len(w.arena)))
		w.ts = append(w.ts, ts.UnixNano())
		data, ts = read()
	}
	gen = nil // its heap is not the packet path's
	runtime.GC()
	gcPercent := debug.SetGCPercent(-1)
	stop := profileWindow(b, calls)
	cpu, wall, perChunk := w.handle(sn, link)
	stop()
	debug.SetGCPercent(gcPercent)
	runtime.GC()
	runtime.ReadMemStats(&after)
	active := float64(sn.Table().ActiveCount())
	packets := float64(len(w.ts))
	b.ReportMetric(float64(cpu.Nanoseconds())/packets, "cpu-ns/packet")
	b.ReportMetric(float64(wall.Nanoseconds())/packets, "wall-ns/packet")
	b.ReportMetric(perChunk[len(perChunk)/10], "p10-cpu-ns/packet")
	b.ReportMetric(perChunk[len(perChunk)/2], "p50-cpu-ns/packet")
	b.ReportMetric(packets, "packets")
	b.ReportMetric(active, "active-calls")
	// Live objects; in-use spans also count the holes the generator's
	// objects left between the sniffer's.
	b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/active, "heap-bytes/call")
	b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/active, "inuse-bytes/call")
	if path := os.Getenv("PBX_BENCH_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, fmt.Sprintf("%s.%d", path, calls))
	}
	runtime.KeepAlive(w)
}

// handle runs the window's frames through sn, copying them a megabyte at a
// time into the chunk first (not timed), and returns the CPU and wall time
// sn took, and the CPU time per packet of each chunk (≈ 5,000 frames),
// sorted: on a shared machine the fast chunks are the ones another process
// did not disturb (it takes the core, and its data evicts the sniffer's
// from the caches).
func (w *activeFrames) handle(sn *Sniffer, link layers.LinkType) (cpu, wall time.Duration, perChunk []float64) {
	runtime.LockOSThread() // thread CPU time per chunk
	defer runtime.UnlockOSThread()
	var frames []Frame
	for i := 0; i < len(w.end); {
		first, base := i, uint32(0)
		if i > 0 {
			base = w.end[i-1]
		}
		for i < len(w.end) && int(w.end[i]-base) <= len(w.chunk) {
			i++
		}
		copy(w.chunk, w.arena[base:w.end[i-1]])
		frames = frames[:0]
		start := uint32(0)
		for j := first; j < i; j++ {
			end := w.end[j] - base
			frames = append(frames, Frame{w.chunk[start:end], time.Unix(0, w.ts[j])})
			start = end
		}
		cpu0, wall0 := cputime.Thread(), time.Now()
		if os.Getenv("PBX_BENCH_ONEBYONE") != "" {
			for _, f := range frames {
				_ = sn.HandleFrame(link, f.Data, f.Time)
			}
		} else {
			_ = sn.HandleFrames(link, frames)
		}
		dc := cputime.Thread() - cpu0
		cpu += dc
		wall += time.Since(wall0)
		perChunk = append(perChunk, float64(dc.Nanoseconds())/float64(len(frames)))
	}
	slices.Sort(perChunk)
	return cpu, wall, perChunk
}

// profileWindow starts a CPU profile of the timed window when
// PBX_BENCH_CPUPROFILE names a file (one per call count, suffixed with it)
// and returns what stops it.
func profileWindow(b *testing.B, calls int) func() {
	path := os.Getenv("PBX_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, calls))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// writeHeapProfile writes the heap profile (what is held now, by where it
// was allocated) for `go tool pprof -sample_index=inuse_space`.
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.MemProfileRate = 1
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}
