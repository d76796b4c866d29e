package sniffer

import (
	"context"
	"io"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/simulate"
)

// TestJitterBufferConfig: Config.F1/F2/Adapt reach every stream (the
// daemon's jitterbuffer_f1, _f2, _adapt and their sizes). Packets arrive up
// to 120 ms late: the default 50-ms fixed buffer loses frames, the 200-ms
// one and the adaptive one do not; a simulator turned off reports 4.5, one
// made larger loses less, and the others are the same as with defaults.
func TestJitterBufferConfig(t *testing.T) {
	off := rtp.JBConfig{Size: -1}
	path := fixture.File(t, "jitter.pcap", func(w io.Writer) error {
		_, err := simulate.WritePcap(context.Background(), w, simulate.Options{Calls: 1, Duration: 30 * time.Second, Seed: 5, Jitter: 120 * time.Millisecond})
		return err
	})
	mos := func(t *testing.T, workers int, f1, f2, adapt rtp.JBConfig) (m [3]float64) {
		t.Helper()
		var cdrs []call.CDR
		ps, _ := ParsePorts("5060")
		sn := New(Config{SIPPorts: ps, F1: f1, F2: f2, Adapt: adapt, Workers: workers,
			Call: call.Config{IdleTimeout: -1, OnCallEnd: func(c *call.CDR) { cdrs = append(cdrs, *c) }}})
		if err := sn.ReplayFile(context.Background(), path, RunOptions{}); err != nil {
			t.Fatal(err)
		}
		sn.Flush()
		if len(cdrs) != 1 || len(cdrs[0].Streams) != 2 {
			t.Fatalf("%d CDRs, want 1 with 2 streams: %+v", len(cdrs), cdrs)
		}
		s := cdrs[0].Streams[0]
		return [3]float64{s.MOSF1, s.MOSF2, s.MOSAdapt}
	}
	def := mos(t, 1, rtp.JBConfig{}, rtp.JBConfig{}, rtp.JBConfig{})
	if def[0] >= rtp.MOSMax || def[1] != rtp.MOSMax {
		t.Fatalf("defaults: MOS f1/f2/adapt %v, want f1 below %v (frames lost in 50 ms) and f2 %v", def, rtp.MOSMax, rtp.MOSMax)
	}
	tests := []struct {
		name          string
		f1, f2, adapt rtp.JBConfig
		want          [3]float64
	}{
		{"f1 off", off, rtp.JBConfig{}, rtp.JBConfig{}, [3]float64{rtp.MOSMax, def[1], def[2]}},
		{"f1 sized as f2", rtp.DefaultF2, rtp.JBConfig{}, rtp.JBConfig{}, [3]float64{def[1], def[1], def[2]}},
		{"all off", off, off, off, [3]float64{rtp.MOSMax, rtp.MOSMax, rtp.MOSMax}},
		{"f2 as f1", rtp.JBConfig{}, rtp.DefaultF1, rtp.JBConfig{}, [3]float64{def[0], def[0], def[2]}},
	}
	for _, tt := range tests {
		for _, workers := range []int{1, 2} {
			if got := mos(t, workers, tt.f1, tt.f2, tt.adapt); got != tt.want {
				t.Errorf("%s, %d workers: MOS f1/f2/adapt %v, want %v", tt.name, workers, got, tt.want)
			}
		}
	}
}
