package spool

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer/simulate"
)

// BenchmarkGzipMember compresses one generated G.711 call's pcap (30 s,
// both directions, SIP included) the way the spool's I/O goroutines do:
// one gzip member per write buffer, at pcap_dump_ziplevel_rtp's default
// (1), with the standard library's compress/gzip and with the
// klauspost/compress gzip the spool uses, for several buffer sizes.
// MB/cpu-s is raw pcap bytes per CPU second of the compressing thread
// (MB/s the same by wall time); ratio is raw ÷ compressed. Run the variants interleaved to compare them on a shared
// machine:
//
//	for i in 1 2 3; do go test -run '^$' -bench GzipMember -benchtime 20x ./sniffer/spool; done
func BenchmarkGzipMember(b *testing.B) {
	var pcap bytes.Buffer
	o := simulate.Options{Calls: 1, Duration: 30 * time.Second, Seed: 1}
	if _, err := simulate.WritePcap(context.Background(), &pcap, o); err != nil {
		b.Fatal(err)
	}
	raw := pcap.Bytes()
	std, err := stdgzip.NewWriterLevel(nil, 1)
	if err != nil {
		b.Fatal(err)
	}
	var stdOut bytes.Buffer
	libs := []struct {
		name   string
		member func([]byte) ([]byte, error)
	}{
		{"compress-gzip", func(p []byte) ([]byte, error) {
			stdOut.Reset()
			std.Reset(&stdOut)
			if _, err := std.Write(p); err != nil {
				return nil, err
			}
			err := std.Close()
			return stdOut.Bytes(), err
		}},
		{"klauspost", (&gzipper{level: 1}).member},
	}
	for _, size := range []int{16 << 10, 32 << 10, 64 << 10} {
		for _, lib := range libs {
			b.Run(fmt.Sprintf("size=%dK/lib=%s", size>>10, lib.name), func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				var out int
				// One goroutine on its thread: the thread's CPU time is
				// the compression's, whatever else the machine runs.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := cputime.Thread()
				for b.Loop() {
					out = 0
					for p := raw; len(p) > 0; {
						n := min(size, len(p))
						z, err := lib.member(p[:n])
						if err != nil {
							b.Fatal(err)
						}
						out += len(z)
						p = p[n:]
					}
				}
				b.ReportMetric(float64(b.N)*float64(len(raw))/1e6/(cputime.Thread()-cpu0).Seconds(), "MB/cpu-s")
				b.ReportMetric(float64(len(raw))/float64(out), "ratio")
			})
		}
	}
}
