package rtp

import (
	"math/rand/v2"
	"testing"
	"time"
)

// adaptiveInput is one frame fed to the adaptive buffer.
type adaptiveInput struct {
	ts, seq, now int64
	quiet        bool
}

// jitteryFrames returns n 20-ms frames arriving with the given jitter (ms),
// with occasional losses, reorders, talkspurts and timestamp jumps of
// minutes (saturating the int16 history) when jumps is set.
func jitteryFrames(r *rand.Rand, n int, jitter int, jumps bool) []adaptiveInput {
	out := make([]adaptiveInput, 0, n)
	var ts, seq int64
	now := int64(1_000_000)
	for i := 0; i < n; i++ {
		ts += 20
		seq++
		now += 20
		quiet := false
		switch x := r.IntN(1000); {
		case x < 10: // lost
			continue
		case x < 15:
			quiet = true
		case x < 17 && jumps:
			ts += int64(r.IntN(200_000)) - 100_000
		}
		arrival := now + int64(r.IntN(2*jitter+1)) - int64(jitter)
		if r.IntN(100) == 0 {
			arrival += int64(r.IntN(300)) // a late burst
		}
		out = append(out, adaptiveInput{ts, seq, arrival, quiet})
	}
	return out
}

// TestAdaptiveOrderCounts: the adaptive buffer that skips the history scan
// when its counts settle the answer plays exactly as the one that scans the
// history at every recompute (the algorithm before the counts), on streams
// without jitter, with little and much of it, and with timestamp jumps.
func TestAdaptiveOrderCounts(t *testing.T) {
	type stream struct {
		jitter int // ms
		jumps  bool
	}
	for name, tt := range map[string]stream{"no jitter": {0, false}, "2 ms": {2, false}, "40 ms": {40, false}, "jumps": {5, true}} {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(tt.jitter)))
			var fast, scan adaptiveJB
			var fd, sd delayHistory
			fast.cfg, scan.cfg = DefaultAdapt.params(), DefaultAdapt.params()
			skipped := 0
			for i, f := range jitteryFrames(r, 20000, tt.jitter, tt.jumps) {
				scan.order.valid = false // scan every time
				if fast.started && fast.sinceRe == 15 && settled(fast, fd, f.now-f.ts) {
					skipped++
				}
				fast.put(&fd, f.ts, f.seq, f.now, f.quiet)
				scan.put(&sd, f.ts, f.seq, f.now, f.quiet)
				fo, so := fast.order, scan.order
				fast.order, scan.order = delayOrder{}, delayOrder{}
				if fast != scan || fd != sd {
					t.Fatalf("frame %d: counted %+v\nscanned %+v", i, fast, scan)
				}
				fast.order, scan.order = fo, so
			}
			if tt.jitter <= 2 && skipped < 1000 {
				t.Errorf("%d of ~1,230 recomputes without a scan on a stream with %d ms of jitter", skipped, tt.jitter)
			}
			t.Logf("%d recomputes without a scan", skipped)
		})
	}
}

// settled reports whether jb's next recompute, after d is pushed, takes its
// answer from the counts (on copies: jb is not changed).
func settled(jb adaptiveJB, d delayHistory, delay int64) bool {
	jb.push(&d, delay)
	k := int16(jb.nd*adaptDropPct/100 + 1)
	o := jb.order
	return o.valid && o.zeros > 0 && o.above < k && o.above+o.at >= k
}

// BenchmarkAdaptivePut: one frame through the adaptive buffer, on a stream
// with 2 ms of jitter.
func BenchmarkAdaptivePut(b *testing.B) {
	frames := jitteryFrames(rand.New(rand.NewPCG(1, 1)), 100000, 2, false)
	var jb adaptiveJB
	var d delayHistory
	jb.cfg = DefaultAdapt.params()
	i := 0
	for b.Loop() {
		f := frames[i%len(frames)]
		jb.put(&d, f.ts, f.seq+int64(i/len(frames))*1e6, f.now+int64(i/len(frames))*3e6, f.quiet)
		i++
	}
}

// TestClockJumpDoesNotSpin: a capture whose clock jumps by decades in the
// middle of a stream (voipmonitor-ref's sip_ipv6_udp.pcap jumps from 2012
// to 2092) must not make the jitter-buffer simulators play out every 20 ms
// of the gap: the stream goes on from the new time, and the loss the
// simulators count stays that of the stream's packets.
func TestClockJumpDoesNotSpin(t *testing.T) {
	for _, jump := range []time.Duration{21 * time.Second, time.Hour, 80 * 365 * 24 * time.Hour} {
		s := NewStream(StreamConfig{})
		at := t0
		var h Header
		for i := range 200 {
			if i == 100 {
				at = at.Add(jump)
			}
			pkt := rtpPacket(PTPCMU, uint16(i), uint32(i*160), 7, false, make([]byte, 160))
			m, err := h.Unmarshal(pkt)
			if err != nil {
				t.Fatal(err)
			}
			s.Update(&h, len(pkt)-m, at)
			at = at.Add(20 * time.Millisecond)
		}
		sum := s.Summary()
		if sum.Received != 200 || sum.Lost != 0 {
			t.Errorf("jump %v: received %d lost %d, want 200 and 0", jump, sum.Received, sum.Lost)
		}
	}
}
