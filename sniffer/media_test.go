package sniffer

import (
	"errors"
	"io"
	"testing"
	"time"
	"unsafe"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/spool"
)

// TestMediaPathNoAlloc: an RTP packet of a known call — decode, the one
// call-table lookup, the header parsed once, stream statistics with the
// three jitter-buffer simulators, the spool's packet side — allocates
// nothing.
func TestMediaPathNoAlloc(t *testing.T) {
	g, err := simulate.New(simulate.Options{Calls: 2, Concurrency: 2, Duration: 30 * time.Second, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	type frame struct {
		data []byte
		ts   time.Time
	}
	var frames []frame
	for {
		data, ci, err := g.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, frame{data, ci.Timestamp})
	}
	sp, err := spool.New(spool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sp.Run(t.Context()) }()
	defer sp.Close(t.Context())
	ps, _ := ParsePorts("5060")
	sn := New(Config{SIPPorts: ps, Media: sp, SIPHook: sp.SIP, Call: call.Config{IdleTimeout: -1, OnCallEnd: sp.CallEnded}})
	// Through the set-up and the first seconds of RTP (streams started).
	i := 0
	for ; i < len(frames) && frames[i].ts.Sub(frames[0].ts) < 5*time.Second; i++ {
		if err := sn.HandleFrame(g.LinkType(), frames[i].data, frames[i].ts); err != nil {
			t.Fatal(err)
		}
	}
	media := sn.Stats().Media
	allocs := testing.AllocsPerRun(1000, func() {
		f := frames[i]
		i++
		_ = sn.HandleFrame(g.LinkType(), f.data, f.ts)
	})
	sn.Tick(frames[i].ts.Add(time.Second))
	if got := sn.Stats().Media - media; got < 1000 {
		t.Fatalf("only %d media packets in the measured run", got)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per RTP packet, want 0", allocs)
	}
}

// TestStreamFootprint pins the per-stream memory behind "≤ 8 KiB per active
// call": a stream with its statistics and the three jitter-buffer
// simulators fits the runtime's 2,688-byte size class (two per call).
func TestStreamFootprint(t *testing.T) {
	if n := unsafe.Sizeof(mediaStream{}); n > 2688 {
		t.Errorf("mediaStream is %d bytes, want ≤ 2688 (one 2,688-byte allocation per stream)", n)
	}
}
