package sniffer

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

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
	path := benchCapture(b)
	ps, _ := ParsePorts("5060")
	var calls int
	newSniffer := func() *Sniffer {
		return New(Config{SIPPorts: ps, Call: call.Config{IdleTimeout: -1, OnCallEnd: func(*call.CDR) { calls++ }}})
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
	src.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
}
