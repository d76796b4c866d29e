package player_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/webui/player"
)

// TestLoad100Listeners: 100 websocket listeners on 10 calls replayed in
// real time (10 per call, all sharing their call's one decode), the calls
// in G.711, in G.722 (16 kHz frames) and in Opus (48 kHz frames). Every
// listener hears its call to the end with no frame dropped on loopback;
// the test prints the CPU time and heap of the process (capture decode,
// agent and the 100 clients together) per second of audio, per codec. A
// figure, not an assertion: compare the rows of one run.
func TestLoad100Listeners(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: load figure skipped")
	}
	for _, tc := range []struct{ name, codec string }{
		{"PCMU", simulate.CodecPCMU},
		{"G722", simulate.CodecG722},
		{"Opus", simulate.CodecOpus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.codec != simulate.CodecPCMU && !codec.Built {
				t.Skip("built without cgo")
			}
			load100Listeners(t, tc.codec)
		})
	}
}

func load100Listeners(t *testing.T, codecName string) {
	const calls, perCall = 10, 10
	pipe := newPipeline(t)
	a := newAgent(t, pipe, nil)
	src := generator(t, simulate.Options{Calls: calls, Concurrency: calls, CPS: 100, Duration: 6 * time.Second, Seed: 5, Codec: codecName})
	var wg sync.WaitGroup
	results := make([]received, calls*perCall)
	subscribed := false
	var cpu0 time.Duration
	var t0 time.Time
	var heap0 runtime.MemStats
	var peakHeap uint64
	var peakMu sync.Mutex
	pipe.replay(context.Background(), t, src, time.Now(), 1, func(time.Time) bool {
		if subscribed {
			return true
		}
		var refs []uint64
		for _, c := range pipe.sn.ActiveCalls() {
			if !c.ConnectTime.IsZero() && len(c.Streams) >= 2 {
				refs = append(refs, c.CallRef)
			}
		}
		if len(refs) < calls {
			return true
		}
		subscribed = true
		runtime.GC()
		runtime.ReadMemStats(&heap0)
		cpu0, t0 = cputime.Process(), time.Now()
		for i, ref := range refs {
			for j := range perCall {
				c, resp, err := dial(t, a.wsURL(ref, aliceQuery), nil)
				if err != nil {
					t.Fatalf("dial %d/%d: %v (%v)", i, j, err, resp)
				}
				k := i*perCall + j
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					results[k] = collect(t, c, -1, func(n int) {
						if n%100 == 0 {
							var ms runtime.MemStats
							runtime.ReadMemStats(&ms)
							peakMu.Lock()
							peakHeap = max(peakHeap, ms.HeapInuse)
							peakMu.Unlock()
						}
					})
				}()
			}
		}
		return true
	})
	pipe.flush()
	wg.Wait()
	cpu, wall := cputime.Process()-cpu0, time.Since(t0)
	if !subscribed {
		t.Fatal("the 10 calls were never all connected")
	}
	var frames int
	rates := map[uint16]int{}
	for i, r := range results {
		for _, h := range r.frames {
			rates[h.SampleRate]++
		}
		if r.end != player.ReasonCallEnded {
			t.Errorf("listener %d: end %q", i, r.end)
		}
		if len(r.frames) < 100 {
			t.Errorf("listener %d: %d frames", i, len(r.frames))
		}
		frames += len(r.frames)
	}
	st := a.pl.Stats()
	if st.Dropped != 0 {
		t.Errorf("%d frames dropped on loopback, want 0", st.Dropped)
	}
	audioSec := float64(frames) / 50
	t.Logf("FIGURE 100 listeners on 10 %s calls (frames by rate %v): %d frames (%.0f s of audio) in %v wall; CPU %v (%.1f%% of one core, agent + clients); CPU per listener-second %.2f ms, per call-second (10 listeners) %.1f ms; heap in use %.1f MB before, peak %.1f MB (+%.1f KB per listener, test clients' receive buffers included); dropped %d",
		codecName, rates, frames, audioSec, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(),
		1000*cpu.Seconds()/audioSec, 1000*cpu.Seconds()/(audioSec/perCall), float64(heap0.HeapInuse)/1e6, float64(peakHeap)/1e6,
		(float64(peakHeap)-float64(heap0.HeapInuse))/1e3/float64(calls*perCall), st.Dropped)
}
