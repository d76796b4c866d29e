package sniffer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
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
// generated calls (and 100,000 with PBX_BENCH_100K=1; PBX_BENCH_CALLS lists
// the counts instead), the heap held per
// active call (call table entry, SIP strings, RTP address map, two RTP
// streams with their jitter-buffer simulators), sampled once every call is
// set up and streaming, and the CPU time per packet of the packet path over
// the next 2.5 s of traffic (1 s above 10,000 calls), when every call is active (frames are copied
// in batches first, so the generator's own time is not counted). Flat
// cpu-ns/packet from 1,000 to 100,000 calls means the per-packet cost does
// not grow with the calls followed.
func BenchmarkActiveCalls(b *testing.B) {
	sizes := []int{1000, 10000}
	if os.Getenv("PBX_BENCH_100K") != "" {
		sizes = append(sizes, 100000)
	}
	if list := os.Getenv("PBX_BENCH_CALLS"); list != "" { // e.g. 1000,10000,100000
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

func activeCalls(b *testing.B, calls int) {
	// Calls are set up over 4 s and each talks 8 s after its answer: all
	// are active from about 5 s to 8 s.
	gen, err := simulate.New(simulate.Options{Calls: calls, Concurrency: calls, CPS: float64(calls) / 4,
		Duration: 8 * time.Second, Seed: 3})
	if err != nil {
		b.Fatal(err)
	}
	ps, _ := ParsePorts("5060")
	sn := New(Config{SIPPorts: ps, Call: call.Config{IdleTimeout: -1}})
	epoch := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	from, to := epoch.Add(5500*time.Millisecond), epoch.Add(8*time.Second)
	if calls > 10000 {
		to = from.Add(time.Second) // 10 M packets are enough, and cheaper to set up than 25 M
	}
	genHeap := generatorHeap(b, calls, from)
	const batchLen = 4096
	arena := make([]byte, 0, batchLen*512)
	type frame struct {
		off, n int
		ts     time.Time
	}
	batch := make([]frame, 0, batchLen)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var cpu time.Duration
	var packets int
	flush := func() {
		t0 := cputime.Process()
		for _, f := range batch {
			_ = sn.HandleFrame(gen.LinkType(), arena[f.off:f.off+f.n], f.ts)
		}
		cpu += cputime.Process() - t0
		packets += len(batch)
		batch, arena = batch[:0], arena[:0]
	}
	sampled := false
	for {
		data, ci, err := gen.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		ts := ci.Timestamp
		if !sampled && !ts.Before(from) {
			sampled = true
			runtime.GC()
			runtime.ReadMemStats(&after)
			active := sn.Table().ActiveCount()
			if active < calls*9/10 {
				b.Fatalf("only %d calls active at the sample", active)
			}
			// The generator's own state is not the packet path's.
			b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse)-genHeap)/float64(active), "heap-bytes/call")
			b.ReportMetric(float64(active), "active-calls")
			if path := os.Getenv("PBX_BENCH_HEAPPROFILE"); path != "" {
				writeHeapProfile(b, fmt.Sprintf("%s.%d", path, calls))
			}
		}
		if sampled && ts.Before(to) {
			if len(batch) == batchLen || len(arena)+len(data) > cap(arena) {
				flush()
			}
			batch = append(batch, frame{len(arena), len(data), ts})
			arena = append(arena, data...)
			continue
		}
		if len(batch) > 0 {
			flush()
		}
		_ = sn.HandleFrame(gen.LinkType(), data, ts)
	}
	if packets == 0 {
		b.Fatal("no packet in the measured window")
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(packets), "cpu-ns/packet")
	sn.Flush()
}

// generatorHeap is the heap the generator of activeCalls holds when its
// packets reach from (run alone, without a sniffer).
func generatorHeap(b *testing.B, calls int, from time.Time) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	gen, err := simulate.New(simulate.Options{Calls: calls, Concurrency: calls, CPS: float64(calls) / 4,
		Duration: 8 * time.Second, Seed: 3})
	if err != nil {
		b.Fatal(err)
	}
	for {
		_, ci, err := gen.ZeroCopyReadPacketData()
		if err != nil {
			b.Fatal(err)
		}
		if !ci.Timestamp.Before(from) {
			break
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(gen)
	return float64(after.HeapInuse) - float64(before.HeapInuse)
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
