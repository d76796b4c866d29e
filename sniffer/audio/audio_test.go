package audio

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"pbx-agent/sniffer/rtp"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// pkt is one RTP packet of a test stream: 160 samples of a constant byte.
type pkt struct {
	dir    Dir
	ssrc   uint32
	ts     uint32
	at     time.Duration
	b      byte
	pt     uint8
	paused bool
}

func feed(c *Call, ps []pkt) {
	for _, p := range ps {
		h := rtp.Header{Version: 2, PayloadType: p.pt, SSRC: p.ssrc, Timestamp: p.ts}
		c.Feed(p.dir, &h, bytes.Repeat([]byte{p.b}, FrameSamples), t0.Add(p.at), p.paused)
	}
}

// collect runs packets through a call and returns every emitted frame.
func collect(ps []pkt) ([]Frame, Stats) {
	var out []Frame
	c := NewCall(Config{Sink: func(f *Frame) { out = append(out, *f.Clone()) }})
	feed(c, ps)
	c.Close()
	return out, c.Stats()
}

// stream returns n packets of one direction every 20 ms from ts, arriving at
// start + i*20ms.
func stream(dir Dir, ssrc, ts uint32, start time.Duration, n int, b byte) []pkt {
	var ps []pkt
	for i := 0; i < n; i++ {
		ps = append(ps, pkt{dir: dir, ssrc: ssrc, ts: ts + uint32(i*FrameSamples), at: start + time.Duration(i)*FrameDuration, b: b})
	}
	return ps
}

// callerAt is a loud packet of the caller's SSRC 1 with timestamp ts,
// arriving ms milliseconds after t0.
func callerAt(ts uint32, ms int) pkt {
	return pkt{dir: FromCaller, ssrc: 1, ts: ts, at: time.Duration(ms) * time.Millisecond, b: 0x80}
}

func level(s []int16) int16 {
	var m int16
	for _, v := range s {
		m = max(m, v, -v)
	}
	return m
}

// loudness is 1 for each side (caller, callee) of f that is loud, else 0.
func loudness(f *Frame) [2]int {
	var l [2]int
	if level(f.Caller[:]) > 0 {
		l[0] = 1
	}
	if level(f.Callee[:]) > 0 {
		l[1] = 1
	}
	return l
}

// audible counts the frames loud on the caller's and on the callee's side.
func audible(frames []Frame) (caller, callee int) {
	for i := range frames {
		l := loudness(&frames[i])
		caller += l[0]
		callee += l[1]
	}
	return caller, callee
}

// twoWay returns n caller packets (SSRC 1, every 20 ms), each followed by
// the callee packet callee(i, at) returns for the caller's arrival at.
func twoWay(n int, callee func(i int, at time.Duration) pkt) []pkt {
	var ps []pkt
	for i := range n {
		at := time.Duration(i) * FrameDuration
		ps = append(ps, pkt{dir: FromCaller, ssrc: 1, ts: uint32(i * FrameSamples), at: at, b: 0x10})
		ps = append(ps, callee(i, at))
	}
	return ps
}

func TestTimeline(t *testing.T) {
	tests := []struct {
		name       string
		in         []pkt
		wantFrames int
		// want[i] is the (caller, callee) loudness expected in frame i: 0 silent, 1 loud.
		want       map[int][2]int
		wantLate   uint64
		wantUndec  uint64
		wantReanch uint64
	}{
		{
			name:       "caller only",
			in:         stream(FromCaller, 1, 1000, 0, 5, 0x80),
			wantFrames: 5,
			want:       map[int][2]int{0: {1, 0}, 4: {1, 0}},
		},
		{
			name:       "both aligned by arrival",
			in:         append(stream(FromCaller, 1, 5000, 0, 3, 0x80), stream(FromCallee, 2, 9, 40*time.Millisecond, 3, 0x80)...),
			wantFrames: 5,
			want:       map[int][2]int{0: {1, 0}, 2: {1, 1}, 4: {0, 1}},
		},
		{
			name:       "gap by timestamp is silence",
			in:         []pkt{callerAt(0, 0), callerAt(3*FrameSamples, 60)},
			wantFrames: 4,
			want:       map[int][2]int{0: {1, 0}, 1: {0, 0}, 2: {0, 0}, 3: {1, 0}},
		},
		{
			name:       "reordered within the delay",
			in:         []pkt{callerAt(0, 0), callerAt(2*FrameSamples, 40), callerAt(FrameSamples, 50)},
			wantFrames: 3,
			want:       map[int][2]int{0: {1, 0}, 1: {1, 0}, 2: {1, 0}},
		},
		{
			name:       "too late is dropped",
			in:         []pkt{callerAt(0, 0), callerAt(20*FrameSamples, 400), callerAt(FrameSamples, 410)},
			wantFrames: 21,
			want:       map[int][2]int{0: {1, 0}, 1: {0, 0}, 20: {1, 0}},
			wantLate:   1,
		},
		{
			name: "paused packets are silent",
			in: []pkt{
				callerAt(0, 0),
				{dir: FromCaller, ssrc: 1, ts: FrameSamples, at: 20 * time.Millisecond, b: 0x80, paused: true},
				callerAt(2*FrameSamples, 40),
			},
			wantFrames: 3,
			want:       map[int][2]int{0: {1, 0}, 1: {0, 0}, 2: {1, 0}},
		},
		{
			name: "new SSRC anchors on arrival",
			in: append(stream(FromCaller, 1, 0, 0, 2, 0x80),
				stream(FromCaller, 7, 123456, 100*time.Millisecond, 2, 0x80)...),
			wantFrames: 7,
			want:       map[int][2]int{1: {1, 0}, 2: {0, 0}, 4: {0, 0}, 5: {1, 0}, 6: {1, 0}},
		},
		{
			name:       "timestamp jump re-anchors",
			in:         []pkt{callerAt(0, 0), callerAt(1<<30, 20)},
			wantFrames: 2,
			want:       map[int][2]int{0: {1, 0}, 1: {1, 0}},
			wantReanch: 1,
		},
		{
			name: "codecs without a decoder (G.728) are silence",
			in: []pkt{
				callerAt(0, 0),
				{dir: FromCallee, ssrc: 2, ts: 0, at: 0, b: 0x80, pt: 15},
				{dir: FromCaller, ssrc: 1, ts: FrameSamples, at: 20 * time.Millisecond, b: 0x80, pt: rtp.PTPCMA},
			},
			wantFrames: 2,
			want:       map[int][2]int{0: {1, 0}, 1: {1, 0}},
			wantUndec:  1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames, st := collect(tc.in)
			if len(frames) != tc.wantFrames {
				t.Fatalf("%d frames, want %d", len(frames), tc.wantFrames)
			}
			for i, f := range frames {
				if f.Index != int64(i) || !f.Time.Equal(t0.Add(time.Duration(i)*FrameDuration)) {
					t.Errorf("frame %d: index %d time %v", i, f.Index, f.Time)
				}
			}
			for i, w := range tc.want {
				if got := loudness(&frames[i]); got != w {
					t.Errorf("frame %d loudness %v, want %v", i, got, w)
				}
			}
			if st.Late != tc.wantLate || st.Undecodable != tc.wantUndec || st.Reanchored != tc.wantReanch {
				t.Errorf("late %d undecodable %d reanchored %d, want %d %d %d", st.Late, st.Undecodable, st.Reanchored, tc.wantLate, tc.wantUndec, tc.wantReanch)
			}
			if st.Frames != uint64(len(frames)) || st.Packets != uint64(len(tc.in)) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestFrameSamplesExact(t *testing.T) {
	frames, _ := collect(stream(FromCallee, 1, 0, 0, 2, 0x80))
	want := rtp.ULawToLinear(0x80)
	for _, f := range frames {
		for i := range f.Callee {
			if f.Callee[i] != want || f.Caller[i] != 0 {
				t.Fatalf("frame %d sample %d: caller %d callee %d, want 0 %d", f.Index, i, f.Caller[i], f.Callee[i], want)
			}
		}
	}
}

func TestFrameEncodings(t *testing.T) {
	var f Frame
	f.Reset(SampleRate)
	f.Caller[0], f.Callee[0] = 30000, 10000
	f.Caller[1], f.Callee[1] = -30000, -10000
	f.Caller[2], f.Callee[2] = 1, -2
	m := f.Mix(make([]int16, FrameSamples))
	if m[0] != 32767 || m[1] != -32768 || m[2] != -1 {
		t.Errorf("mix %v", m[:3])
	}
	st := f.AppendStereo(nil)
	if len(st) != 4*FrameSamples || int16(binary.LittleEndian.Uint16(st[0:])) != 30000 || int16(binary.LittleEndian.Uint16(st[2:])) != 10000 {
		t.Errorf("stereo %v", st[:8])
	}
	mono := f.AppendMono(nil)
	if len(mono) != 2*FrameSamples || int16(binary.LittleEndian.Uint16(mono[4:])) != -1 {
		t.Errorf("mono %v", mono[:6])
	}
	for _, rate := range []int{8000, 16000, 48000} {
		h := AppendWAVHeader(nil, rate, 2, 640)
		if len(h) != WAVHeaderSize || string(h[:4]) != "RIFF" || binary.LittleEndian.Uint32(h[4:]) != 36+640 ||
			binary.LittleEndian.Uint16(h[22:]) != 2 || binary.LittleEndian.Uint32(h[24:]) != uint32(rate) ||
			binary.LittleEndian.Uint32(h[28:]) != uint32(rate*4) || binary.LittleEndian.Uint32(h[40:]) != 640 {
			t.Errorf("%d Hz header % x", rate, h)
		}
	}
}

func TestSubscriptions(t *testing.T) {
	c := NewCall(Config{})
	fast, err := c.Subscribe(100)
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := c.Subscribe(2)
	gone, _ := c.Subscribe(1)
	gone.Close()
	gone.Close() // twice is fine
	feed(c, stream(FromCaller, 1, 0, 0, 10, 0x80))
	c.Close()
	var got []*Frame
	for f := range fast.Frames() {
		got = append(got, f)
	}
	if len(got) != 10 {
		t.Fatalf("fast listener got %d frames, want 10", len(got))
	}
	var slowGot []int64
	for f := range slow.Frames() {
		slowGot = append(slowGot, f.Index)
	}
	// A full queue keeps the newest frames.
	if len(slowGot) != 2 || slowGot[0] != 8 || slowGot[1] != 9 || slow.Dropped() != 8 {
		t.Errorf("slow listener got %v, dropped %d; want [8 9], 8", slowGot, slow.Dropped())
	}
	if fast.Dropped() != 0 {
		t.Errorf("fast listener dropped %d", fast.Dropped())
	}
	if st := c.Stats(); st.Frames != 10 || st.Dropped != 8 || st.Subscribers != 0 {
		t.Errorf("stats %+v", st)
	}
	if _, err := c.Subscribe(1); err != ErrClosed {
		t.Errorf("subscribe after close: %v, want ErrClosed", err)
	}
	slow.Close() // after the call ended: no panic
}

func TestFeedNoAlloc(t *testing.T) {
	c := NewCall(Config{Sink: func(*Frame) {}})
	h := rtp.Header{Version: 2, SSRC: 1}
	payload := bytes.Repeat([]byte{0x80}, FrameSamples)
	var at time.Time = t0
	allocs := testing.AllocsPerRun(1000, func() {
		c.Feed(FromCaller, &h, payload, at, false)
		h.Timestamp += FrameSamples
		at = at.Add(FrameDuration)
	})
	if allocs != 0 {
		t.Errorf("Feed allocates %v per packet, want 0", allocs)
	}
}

func BenchmarkFeed(b *testing.B) {
	for _, subs := range []int{0, 1, 10} {
		b.Run(fmt.Sprint("subscribers=", subs), func(b *testing.B) {
			c := NewCall(Config{Sink: func(*Frame) {}})
			for i := 0; i < subs; i++ {
				s, _ := c.Subscribe(4)
				defer s.Close()
			}
			h := rtp.Header{Version: 2, SSRC: 1}
			payload := bytes.Repeat([]byte{0x80}, FrameSamples)
			at := t0
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dir := Dir(i & 1)
				c.Feed(dir, &h, payload, at, false)
				if dir == FromCallee {
					h.Timestamp += FrameSamples
					at = at.Add(FrameDuration)
				}
			}
		})
	}
}

// TestDriftingSenderStaysAudible: a sender whose packets fall further and
// further behind their timestamps (an overloaded Asterisk feeding the ARI
// tap drifted 0.1–0.6 s in the live run) is re-anchored once its packets keep
// coming after their frames were emitted, instead of being silence until the
// drift reaches a second.
func TestDriftingSenderStaysAudible(t *testing.T) {
	ps := twoWay(250, func(i int, at time.Duration) pkt {
		lag := min(time.Duration(i)*4*time.Millisecond, 600*time.Millisecond)
		return pkt{dir: FromCallee, ssrc: 2, ts: uint32(i * FrameSamples), at: at + lag + time.Millisecond, b: 0x20}
	})
	slices.SortStableFunc(ps, func(a, b pkt) int { return cmp.Compare(a.at, b.at) })
	frames, st := collect(ps)
	caller, callee := audible(frames)
	if callee < caller*8/10 {
		t.Errorf("drifting callee audible in %d frames, caller in %d (stats %+v)", callee, caller, st)
	}
	t.Logf("caller %d, drifting callee %d audible frames; %+v", caller, callee, st)
}

// TestSenderAheadKeepsTheOtherAudible: a sender whose timestamps run ahead
// of its packets' arrival (0 → 600 ms) must not push the timeline forward:
// the other direction's packets would all come after their frames and be
// silence (live: the page heard a silent left channel and saw frames
// stamped 0.5 s in the future).
func TestSenderAheadKeepsTheOtherAudible(t *testing.T) {
	ps := twoWay(250, func(i int, at time.Duration) pkt {
		ahead := min(i*32, 4800) // samples: 4 ms more per packet, up to 600 ms
		return pkt{dir: FromCallee, ssrc: 2, ts: uint32(i*FrameSamples + ahead), at: at + time.Millisecond, b: 0x20}
	})
	var out []Frame
	c := NewCall(Config{Sink: func(f *Frame) { out = append(out, *f.Clone()) }})
	last := time.Duration(0)
	for _, p := range ps {
		feed(c, []pkt{p})
		last = p.at
		if ahead := time.Duration(len(out))*FrameDuration - last; ahead > FrameDuration {
			t.Fatalf("at %v, %d frames emitted: the timeline ran %v ahead of the arrival clock", last, len(out), ahead)
		}
	}
	c.Close()
	caller, callee := audible(out)
	if caller < 200 || callee < 200 {
		t.Errorf("audible frames: caller %d, callee %d of %d (stats %+v)", caller, callee, len(out), c.Stats())
	}
	t.Logf("caller %d, callee %d audible of %d frames; %+v", caller, callee, len(out), c.Stats())
}

// TestClockJumpSkipped: a gap in the capture clock up to maxGapFrames is
// emitted as silence, frame by frame (a call on hold); one past it (a clock
// step, a capture with a forged time: here 10 years) emits what the ring
// holds, skips the rest (Stats.Skipped) and goes on at the new time.
func TestClockJumpSkipped(t *testing.T) {
	for _, c := range []struct {
		name    string
		gap     time.Duration
		skipped bool
	}{
		{"hold of 10 minutes", 10 * time.Minute, false},
		{"10 years", 10 * 365 * 24 * time.Hour, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := stream(FromCaller, 1, 0, 0, 50, 0x10)
			ps = append(ps, stream(FromCaller, 1, 50*FrameSamples, time.Second+c.gap, 50, 0x10)...)
			frames, st := collect(ps)
			gapFrames := uint64(c.gap / FrameDuration)
			loud, _ := audible(frames)
			if loud < 95 {
				t.Errorf("%d loud frames, want the 100 sent (%+v)", loud, st)
			}
			if !c.skipped {
				if st.Skipped != 0 || uint64(len(frames)) < gapFrames+100 {
					t.Errorf("%d frames, %d skipped; want every frame of the gap (%d) and none skipped", len(frames), st.Skipped, gapFrames)
				}
				return
			}
			if st.Skipped < gapFrames-200 || len(frames) > 200 {
				t.Errorf("%d frames, %d skipped; want the gap (%d frames) skipped", len(frames), st.Skipped, gapFrames)
			}
			if last := frames[len(frames)-1].Time; last.Before(t0.Add(c.gap)) {
				t.Errorf("last frame at %v, want after the jump (%v)", last, t0.Add(c.gap))
			}
		})
	}
}
