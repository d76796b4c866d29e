package sniffer

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

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
	cpu0 := cpuTime()
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
	cpu := cpuTime() - cpu0
	src.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	// CPU seconds are what a shared machine's other load disturbs least.
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "packets/cpu-s")
	b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkActiveCallMemory measures the heap held per active call (call
// table entry, SIP strings, RTP address map, two RTP streams with their
// jitter-buffer simulators) with 10,000 concurrent generated calls, sampled
// once every call is established and streaming.
func BenchmarkActiveCallMemory(b *testing.B) {
	const calls = 10000
	for b.Loop() {
		gen, err := simulate.New(simulate.Options{Calls: calls, Concurrency: calls, CPS: 2000, Duration: 8 * time.Second, Seed: 3})
		if err != nil {
			b.Fatal(err)
		}
		ps, _ := ParsePorts("5060")
		sn := New(Config{SIPPorts: ps, Call: call.Config{IdleTimeout: -1}})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		sampled := false
		for {
			data, ci, err := gen.ZeroCopyReadPacketData()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			_ = sn.HandleFrame(gen.LinkType(), data, ci.Timestamp)
			// All calls are set up after 5 s (2,000/s) and talk until ≥ 8 s.
			if !sampled && ci.Timestamp.Sub(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) > 7*time.Second {
				sampled = true
				runtime.GC()
				runtime.ReadMemStats(&after)
				active := sn.Table().ActiveCount()
				if active < calls*9/10 {
					b.Fatalf("only %d calls active at the sample", active)
				}
				b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(active), "heap-bytes/call")
				b.ReportMetric(float64(active), "active-calls")
			}
		}
		sn.Flush()
	}
}
