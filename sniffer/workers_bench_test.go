package sniffer

import (
	"fmt"
	"testing"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer/call"
)

// BenchmarkWorkers replays a generated capture (1,000 calls × 10 s, or
// $PBX_BENCH_PCAP) whole per op with 1, 2 and 4 media workers, in one run:
// packets per second of wall time and of CPU time (user+sys of the
// process). With N workers on N idle cores the wall-time rate is what
// scales; on a shared machine compare the CPU columns too (the price of
// the hand-off between stages).
//
//	go test -run '^$' -bench Workers -benchtime 3x -cpuprofile cpu.prof ./sniffer/
//	go tool pprof -tags cpu.prof   # CPU per stage (reader, packet path, worker)
func BenchmarkWorkers(b *testing.B) {
	path := benchCapture(b)
	ps, _ := ParsePorts("5060")
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			var packets uint64
			cpu0 := cputime.Process()
			for b.Loop() {
				sn := New(Config{SIPPorts: ps, Workers: n, Call: call.Config{IdleTimeout: -1}})
				if err := sn.ReplayFile(b.Context(), path, RunOptions{}); err != nil {
					b.Fatal(err)
				}
				sn.Flush()
				packets += sn.Stats().Frames
			}
			cpu := cputime.Process() - cpu0
			b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
			b.ReportMetric(float64(packets)/cpu.Seconds(), "packets/cpu-s")
		})
	}
}
