package rtp

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// feedSeries sends n packets of 20 ms from t0 (plus start), skipping those
// drop reports, and returns the stream.
func feedSeries(t testing.TB, n int, start time.Duration, drop func(i int) bool) *Stream {
	t.Helper()
	s := NewStream(StreamConfig{Series: true})
	pktb := rtpPacket(PTPCMU, 0, 0, 7, false, make([]byte, 160))
	var h Header
	for i := range n {
		if drop != nil && drop(i) {
			continue
		}
		setSeqTS(pktb, i)
		m, err := h.Unmarshal(pktb)
		if err != nil {
			t.Fatal(err)
		}
		s.Update(&h, len(pktb)-m, t0.Add(start+time.Duration(i)*20*time.Millisecond+time.Duration(i%3)*time.Millisecond))
	}
	return s
}

func setSeqTS(pktb []byte, i int) {
	ts := uint32(i * 160)
	pktb[2], pktb[3] = byte(i>>8), byte(i)
	pktb[4], pktb[5], pktb[6], pktb[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
}

// TestSeriesLossAtItsSecond: packets lost in a second are counted in that
// second, also when the whole second is missing (the loss shows only when
// the next packet arrives) and when a burst spans two seconds.
func TestSeriesLossAtItsSecond(t *testing.T) {
	tests := []struct {
		name     string
		drop     func(i int) bool // packet i is due at i×20 ms
		wantLost map[uint32]uint16
		lowMOS   []uint32 // seconds whose MOS must be below 4.5
	}{
		{"none", nil, map[uint32]uint16{}, nil},
		{"whole second 3", func(i int) bool { return i >= 150 && i < 200 }, map[uint32]uint16{3: 50}, []uint32{3}},
		{"10 in second 7", func(i int) bool { return i >= 360 && i < 370 }, map[uint32]uint16{7: 10}, []uint32{7}},
		{"burst over 4|5", func(i int) bool { return i >= 245 && i < 255 }, map[uint32]uint16{4: 5, 5: 5}, nil},
		{"every 10th", func(i int) bool { return i > 0 && i%10 == 0 && i < 499 }, map[uint32]uint16{0: 4, 1: 5, 2: 5, 3: 5, 4: 5, 5: 5, 6: 5, 7: 5, 8: 5, 9: 5}, []uint32{1, 5, 9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := feedSeries(t, 500, 0, tc.drop)
			sr := s.Series()
			if sr.Step != 1 || !sr.Start.Equal(t0) || len(sr.Points) != 10 {
				t.Fatalf("series start %v step %d, %d points; want %v, 1, 10", sr.Start, sr.Step, len(sr.Points), t0)
			}
			total := 0
			for _, p := range sr.Points {
				if p.Lost != tc.wantLost[p.T] {
					t.Errorf("second %d: lost %d, want %d", p.T, p.Lost, tc.wantLost[p.T])
				}
				total += int(p.Received)
				low := slices.Contains(tc.lowMOS, p.T)
				if low && p.MOS >= MOSMax || !low && p.Lost == 0 && p.MOS != MOSMax {
					t.Errorf("second %d (lost %d): MOS %.1f", p.T, p.Lost, p.MOS)
				}
			}
			if sum := s.Summary(); total != sum.Received {
				t.Errorf("points hold %d packets, the stream %d", total, sum.Received)
			}
		})
	}
}

// TestSeriesBounded: a stream of 3 hours keeps at most MaxSeriesPoints
// points, at a coarser step, with every packet and loss still counted.
func TestSeriesBounded(t *testing.T) {
	const n = 3 * 3600 * 50
	s := feedSeries(t, n, 0, func(i int) bool { return i%1000 == 500 })
	sr := s.Series()
	if len(sr.Points) > MaxSeriesPoints || sr.Step != 4 {
		t.Fatalf("%d points at %d s, want at most %d at 4 s", len(sr.Points), sr.Step, MaxSeriesPoints)
	}
	recv, lost := 0, 0
	for _, p := range sr.Points {
		recv += int(p.Received)
		lost += int(p.Lost)
	}
	if recv != n-n/1000 || lost != n/1000 {
		t.Errorf("points hold %d received / %d lost, want %d / %d", recv, lost, n-n/1000, n/1000)
	}
}

// TestSeriesNoAllocPerPacket: after the first seconds the series costs no
// allocation per packet, with loss.
func TestSeriesNoAllocPerPacket(t *testing.T) {
	s := NewStream(StreamConfig{Series: true})
	pktb := rtpPacket(PTPCMU, 0, 0, 7, false, make([]byte, 160))
	var h Header
	i := 0
	step := func() {
		setSeqTS(pktb, i)
		m, _ := h.Unmarshal(pktb)
		if i%50 != 7 && i%300 > 20 { // loss, and gaps of whole seconds' part
			s.Update(&h, len(pktb)-m, t0.Add(time.Duration(i)*20*time.Millisecond))
		}
		i++
	}
	for range 50 * 70 { // past the series' first growth steps
		step()
	}
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Errorf("Update with the series allocates %v per packet", a)
	}
}

func TestSeriesBinary(t *testing.T) {
	s := feedSeries(t, 500, 0, func(i int) bool { return i >= 150 && i < 200 })
	sr := s.Series()
	b, err := sr.MarshalBinary()
	if err != nil || len(b) != len(sr.Points)*pointSize {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	var back Series
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for i, p := range back.Points {
		q := sr.Points[i]
		if p.T != q.T || p.Received != q.Received || p.Lost != q.Lost || p.MOS != q.MOS || p.Jitter-q.Jitter > 0.05 || q.Jitter-p.Jitter > 0.05 {
			t.Errorf("point %d: %+v back as %+v", i, q, p)
		}
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(slices.Clone(b[pointSize:2*pointSize]), b[:pointSize]...)} {
		if err := back.UnmarshalBinary(bad); !errors.Is(err, ErrSeries) {
			t.Errorf("%d bytes: %v, want ErrSeries", len(bad), err)
		}
	}
}

func FuzzSeriesUnmarshal(f *testing.F) {
	sr := feedSeries(f, 300, 0, func(i int) bool { return i%40 == 3 }).Series()
	b, _ := sr.MarshalBinary()
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Series
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || len(again) != len(b) {
			t.Fatalf("re-encoded %d bytes as %d (%v)", len(b), len(again), err)
		}
	})
}

// TestSeriesClockJump: a capture whose clock jumps by decades keeps the
// series bounded (the series alone: the jitter-buffer simulators walk such
// a gap in ptime steps), and a stream without Series keeps none.
func TestSeriesClockJump(t *testing.T) {
	s := NewStream(StreamConfig{Series: true})
	at := t0.UnixNano()
	for i := range 200 {
		if i == 100 {
			at = t0.AddDate(80, 0, 0).UnixNano()
		}
		s.seriesPacket(at, int64(i%2))
		at += int64(20 * time.Millisecond)
	}
	sr := s.Series()
	if len(sr.Points) > MaxSeriesPoints || len(sr.Points) < 2 {
		t.Errorf("%d points at %d s after an 80-year jump", len(sr.Points), sr.Step)
	}
	received := 0
	for _, p := range sr.Points {
		received += int(p.Received)
	}
	if received != 200 {
		t.Errorf("points hold %d packets, want 200", received)
	}
	off := NewStream(StreamConfig{})
	pktb := rtpPacket(PTPCMU, 1, 160, 7, false, make([]byte, 160))
	var h Header
	m, _ := h.Unmarshal(pktb)
	off.Update(&h, len(pktb)-m, t0)
	if got := off.Series(); len(got.Points) != 0 {
		t.Errorf("stream without Series: %d points", len(got.Points))
	}
}

// seriesLossPerPacket is seriesLoss one packet at a time (as it was): the
// reference TestSeriesLossPerSecond compares with.
func (s *Stream) seriesLossPerPacket(now, lost int64) {
	ptime := s.ptimeMs
	if ptime <= 0 {
		ptime = 20
	}
	at := now - ptime*int64(time.Millisecond)
	burstSec := int64(-1)
	for k := int64(0); k < lost; k++ {
		sec := at / int64(time.Second)
		p := s.series.at(sec)
		if p == nil {
			return
		}
		p.lost = satAdd16(p.lost, 1)
		if sec != burstSec {
			p.bursts = satAdd16(p.bursts, 1)
			burstSec = sec
		}
		at -= ptime * int64(time.Millisecond)
	}
}

// TestSeriesLossPerSecond: placing a loss a second at a time gives the
// steps placing it a packet at a time gave, for every ptime, gap and
// position in the second, up to the largest jump a packet can reveal
// (maxDropout), before the series start too.
func TestSeriesLossPerSecond(t *testing.T) {
	start := t0.Unix()
	for _, ptime := range []int64{0, 2, 3, 20, 30, 60, 200} {
		for _, lost := range []int64{1, 2, 49, 50, 51, 333, maxDropout - 1} {
			for _, after := range []time.Duration{0, 1, 7 * time.Millisecond, 999 * time.Millisecond, 3 * time.Second, 200 * time.Second} {
				now := (start+60)*int64(time.Second) + int64(after)
				var a, b Stream
				a.Reset(StreamConfig{Series: true})
				b.Reset(StreamConfig{Series: true})
				for _, s := range []*Stream{&a, &b} {
					s.ptimeMs = ptime
					s.series.start, s.series.step, s.series.cur = start, 1, now/int64(time.Second)
				}
				a.seriesLoss(now, lost)
				b.seriesLossPerPacket(now, lost)
				if a.series.open != b.series.open || !slices.Equal(a.series.steps, b.series.steps) {
					t.Fatalf("ptime %d ms, %d lost, %v into second 60: per second %+v %v, per packet %+v %v",
						ptime, lost, after, a.series.open, a.series.steps, b.series.open, b.series.steps)
				}
			}
		}
	}
}

// BenchmarkSeriesLossJump is a packet revealing maxDropout-1 lost ones
// (20 ms ptime: 1 µs; placed a packet at a time it was 25 µs).
func BenchmarkSeriesLossJump(b *testing.B) {
	var s Stream
	s.Reset(StreamConfig{Series: true})
	now := (t0.Unix() + 120) * int64(time.Second)
	s.series.start, s.series.step, s.series.cur = t0.Unix(), 1, now/int64(time.Second)
	for b.Loop() {
		s.seriesLoss(now, maxDropout-1)
	}
}
