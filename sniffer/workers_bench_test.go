package sniffer

import (
	"fmt"
	"runtime"
	"testing"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/spool"
)

// BenchmarkWorkers replays a generated capture (1,000 calls × 10 s, or
// $PBX_BENCH_PCAP) whole per op with 1, 2 and 4 media workers, in one run,
// without a spool (replay) and with per-call SIP and RTP pcaps compressed
// (the daemon's default spool): packets per second of wall time and of CPU
// time (user+sys of the process). With N workers on N idle cores the
// wall-time rate is what scales; on a shared machine compare the CPU
// columns too (the price of the hand-off between stages).
//
//	go test -run '^$' -bench Workers -benchtime 3x -cpuprofile cpu.prof ./sniffer/
//	go tool pprof -tags cpu.prof   # CPU per stage (reader, packet path, worker)
func BenchmarkWorkers(b *testing.B) {
	path := benchCapture(b)
	for _, spooled := range []bool{false, true} {
		for _, n := range []int{1, 2, 4} {
			name := fmt.Sprintf("spool=none/workers=%d", n)
			if spooled {
				name = fmt.Sprintf("spool=pcap.gz/workers=%d", n)
			}
			b.Run(name, func(b *testing.B) { benchWorkers(b, path, n, spooled) })
		}
	}
}

func benchWorkers(b *testing.B, path string, n int, spooled bool) {
	ps, _ := ParsePorts("5060")
	var packets uint64
	cpu0 := cputime.Process()
	for b.Loop() {
		cfg := Config{SIPPorts: ps, Workers: n, Call: call.Config{IdleTimeout: -1}}
		var sp *spool.Spool
		if spooled {
			var err error
			sp, err = spool.New(spool.Config{Dir: b.TempDir(), SaveSIP: true, SaveRTP: spool.RTPFull, SaveRTCP: true,
				ZipSIP: 6, ZipRTP: 1, WaitForDisk: true, IOWorkers: runtime.GOMAXPROCS(0)})
			if err != nil {
				b.Fatal(err)
			}
			go sp.Run(b.Context())
			cfg.Media, cfg.SIPHook, cfg.Call.OnCallEnd = sp, sp.SIP, sp.CallEnded
		}
		sn := New(cfg)
		if err := sn.ReplayFile(b.Context(), path, RunOptions{}); err != nil {
			b.Fatal(err)
		}
		sn.Flush()
		if sp != nil {
			if err := sp.Close(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
		packets += sn.Stats().Frames
	}
	cpu := cputime.Process() - cpu0
	b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(packets)/cpu.Seconds(), "packets/cpu-s")
}
