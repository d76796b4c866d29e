package rtp

import (
	"math"
	"testing"
	"time"
)

// feed runs a synthetic stream: one packet per entry, 20 ms PCMA frames.
type pkt struct {
	seq    uint16
	ts     uint32
	at     time.Duration // arrival offset
	pt     uint8
	marker bool
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func run(cfg StreamConfig, pkts []pkt) Summary {
	s := NewStream(cfg)
	var h Header
	for _, p := range pkts {
		b := rtpPacket(p.pt, p.seq, p.ts, 7, p.marker, make([]byte, 160))
		n, _ := h.Unmarshal(b)
		s.Update(&h, len(b)-n, t0.Add(p.at))
	}
	return s.Summary()
}

// regular makes n packets starting at seq0, skipping the sequence numbers in drop.
func regular(seq0 uint16, n int, drop map[int]bool) []pkt {
	var out []pkt
	for i := 0; i < n; i++ {
		if drop[i] {
			continue
		}
		out = append(out, pkt{seq: seq0 + uint16(i), ts: uint32(i * 160), at: time.Duration(i) * 20 * time.Millisecond, pt: PTPCMA})
	}
	return out
}

func TestStreamSequence(t *testing.T) {
	tests := []struct {
		name                      string
		in                        []pkt
		wantRx, wantLost, wantExp int
		wantDup, wantReord        int
		wantSL                    [10]int
	}{
		{name: "clean", in: regular(100, 50, nil), wantRx: 50, wantExp: 50},
		{name: "wrap", in: regular(65530, 20, nil), wantRx: 20, wantExp: 20},
		{name: "loss across wrap", in: regular(65530, 20, map[int]bool{5: true, 6: true, 7: true, 12: true}),
			wantRx: 16, wantLost: 4, wantExp: 20, wantSL: [10]int{1, 0, 1}},
		{name: "burst of 12", in: regular(0, 40, func() map[int]bool {
			m := map[int]bool{}
			for i := 10; i < 22; i++ {
				m[i] = true
			}
			return m
		}()), wantRx: 28, wantLost: 12, wantExp: 40, wantSL: [10]int{9: 1}},
		{name: "duplicate", in: append(regular(0, 10, nil), pkt{seq: 9, ts: 9 * 160, at: 200 * time.Millisecond, pt: PTPCMA}, pkt{seq: 5, ts: 800, at: 201 * time.Millisecond, pt: PTPCMA}),
			wantRx: 12, wantExp: 10, wantDup: 2},
		{name: "reordered", in: []pkt{{seq: 1, ts: 0, pt: 8}, {seq: 3, ts: 320, at: 40 * time.Millisecond, pt: 8}, {seq: 2, ts: 160, at: 41 * time.Millisecond, pt: 8}, {seq: 4, ts: 480, at: 60 * time.Millisecond, pt: 8}},
			wantRx: 4, wantExp: 4, wantReord: 1, wantSL: [10]int{1}},
		{name: "restart after big jump", in: append(regular(100, 10, nil), pkt{seq: 40000, ts: 1600, at: 200 * time.Millisecond, pt: 8}, pkt{seq: 40001, ts: 1760, at: 220 * time.Millisecond, pt: 8}),
			wantRx: 12, wantExp: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(StreamConfig{}, tt.in)
			if got.Received != tt.wantRx || got.Lost != tt.wantLost || got.Expected != tt.wantExp {
				t.Errorf("received/lost/expected = %d/%d/%d, want %d/%d/%d", got.Received, got.Lost, got.Expected, tt.wantRx, tt.wantLost, tt.wantExp)
			}
			if got.Duplicates != tt.wantDup || got.Reordered != tt.wantReord {
				t.Errorf("dup/reordered = %d/%d, want %d/%d", got.Duplicates, got.Reordered, tt.wantDup, tt.wantReord)
			}
			if got.SL != tt.wantSL {
				t.Errorf("SL = %v, want %v", got.SL, tt.wantSL)
			}
		})
	}
}

func TestStreamJitterAndBuckets(t *testing.T) {
	// Every 10th packet arrives 120 ms late (the others on time).
	var in []pkt
	for i := 0; i < 300; i++ {
		at := time.Duration(i) * 20 * time.Millisecond
		if i%10 == 5 {
			at += 120 * time.Millisecond
		}
		in = append(in, pkt{seq: uint16(i), ts: uint32(i * 160), at: at, pt: PTPCMA})
	}
	got := run(StreamConfig{}, in)
	// The late packet arrives after the 5 next ones: transit +120 ms against
	// the one before it in arrival order and -120 ms for the one after (d120).
	if got.D != [7]int{3: 60} {
		t.Errorf("D = %v, want 60 in d120", got.D)
	}
	if got.MaxJitter < 120.0/16 || got.MaxJitter > 40 {
		t.Errorf("max jitter = %.3f", got.MaxJitter)
	}
	if got.PTime != 20 || got.Codec != "PCMA" || got.ClockRate != 8000 {
		t.Errorf("ptime/codec = %d/%s/%d", got.PTime, got.Codec, got.ClockRate)
	}
	// 120 ms late beats the 50 ms buffer (loss) but not the 200 ms one.
	if got.MOSF1 >= MOSMax || got.MOSF2 != MOSMax {
		t.Errorf("MOS f1/f2 = %.1f/%.1f, want f1 < 4.5 = f2", got.MOSF1, got.MOSF2)
	}
}

func TestStreamDTXAndEvents(t *testing.T) {
	// 200 packets, a 2 s DTX pause (timestamps jump, sequence does not), then
	// a DTMF run on PT 101 (sequence numbers used by events), then voice.
	in := regular(0, 100, nil)
	for i := 0; i < 100; i++ {
		in = append(in, pkt{seq: uint16(100 + i), ts: uint32((i + 200) * 160), at: time.Duration(i+200) * 20 * time.Millisecond, pt: PTPCMA})
	}
	for i := 0; i < 10; i++ {
		in = append(in, pkt{seq: uint16(200 + i), ts: 300 * 160, at: time.Duration(i+300) * 20 * time.Millisecond, pt: 101, marker: i == 0})
	}
	for i := 0; i < 100; i++ {
		in = append(in, pkt{seq: uint16(210 + i), ts: uint32((i + 310) * 160), at: time.Duration(i+310) * 20 * time.Millisecond, pt: PTPCMA})
	}
	got := run(StreamConfig{EventPT: 101}, in)
	if got.Lost != 0 || got.Events != 10 || got.Received != 310 {
		t.Errorf("lost/events/received = %d/%d/%d", got.Lost, got.Events, got.Received)
	}
	if got.MOSF1 != MOSMax || got.MOSF2 != MOSMax || got.MOSAdapt != MOSMax {
		t.Errorf("MOS = %.1f/%.1f/%.1f, want 4.5: pauses and DTMF are not loss", got.MOSF1, got.MOSF2, got.MOSAdapt)
	}
	if got.MaxJitter > 0.001 {
		t.Errorf("max jitter = %v, want 0 (events skipped, DTX timestamps consistent)", got.MaxJitter)
	}
}

func TestIntervalMOS(t *testing.T) {
	tests := []struct {
		name                   string
		lost, bursts, received int
		codec                  Codec
		want                   float64 // ×10, rounded as VoIPmonitor stores it
	}{
		{"under 5 lost", 4, 4, 500, CodecPCMA, 45},
		{"gensip 5 single in 495", 5, 5, 495, CodecPCMA, 41},
		{"gensip 6 single in 494", 6, 6, 494, CodecPCMA, 41},
		{"over half lost", 300, 10, 500, CodecPCMU, 10},
		{"g729 impairs more", 5, 5, 495, CodecG729, 38},
		{"bursty is worse", 20, 2, 500, CodecPCMU, 36},
		{"random same count", 20, 20, 500, CodecPCMU, 37},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Mult10(IntervalMOS(tt.lost, tt.bursts, tt.received, tt.codec)); float64(got) != tt.want {
				t.Errorf("MOS×10 = %d, want %v", got, tt.want)
			}
		})
	}
	if m := RToMOS(93.2062077233); math.Abs(m-4.30) > 0.01 {
		t.Errorf("RToMOS(R0) = %v", m)
	}
}

// TestMOSLowestAndLast: a clean 10 s, 10 s losing every 8th packet, then
// 15 s losing every 20th: the lowest interval is the second, the last one
// is the mild one, the average lies between the lowest and 4.5.
func TestMOSLowestAndLast(t *testing.T) {
	drop := map[int]bool{}
	for i := 500; i < 1000; i += 8 {
		drop[i] = true
	}
	for i := 1000; i < 1750; i += 20 {
		drop[i] = true
	}
	got := run(StreamConfig{}, regular(0, 1750, drop))
	for _, m := range []struct {
		name              string
		avg, lowest, last float64
	}{
		{"f1", got.MOSF1, got.MOSF1Min, got.MOSF1Last},
		{"f2", got.MOSF2, got.MOSF2Min, got.MOSF2Last},
		{"adapt", got.MOSAdapt, got.MOSAdaptMin, got.MOSAdaptLast},
	} {
		if !(m.lowest < m.last && m.last < MOSMax && m.lowest < m.avg && m.avg < MOSMax) {
			t.Errorf("%s: MOS average %.1f, lowest %.1f, last %.1f; want lowest < last < 4.5 and lowest < average < 4.5",
				m.name, m.avg, m.lowest, m.last)
		}
	}
	clean := run(StreamConfig{}, regular(0, 1750, nil))
	if clean.MOSF1Last != MOSMax || clean.MOSF1Min != MOSMax {
		t.Errorf("clean stream: lowest %.1f, last %.1f, want %v", clean.MOSF1Min, clean.MOSF1Last, MOSMax)
	}
}

func TestSummaryColumns(t *testing.T) {
	s := Summary{CDRAvgJitter: 1.361, CDRMaxJitter: 1.778, Received: 665, Lost: 2}
	if s.AvgJitterMult10() != 14 || s.MaxJitterMs() != 2 || s.MaxJitterMult10() != 17 || s.LossPercentMult1000() != 300 {
		t.Errorf("columns = %d %d %d %d", s.AvgJitterMult10(), s.MaxJitterMs(), s.MaxJitterMult10(), s.LossPercentMult1000())
	}
}

func TestStreamUpdateAllocs(t *testing.T) {
	s := NewStream(StreamConfig{EventPT: 101})
	pktb := rtpPacket(PTPCMA, 0, 0, 7, false, make([]byte, 160))
	var h Header
	i := 0
	at := t0
	a := testing.AllocsPerRun(2000, func() {
		pktb[2], pktb[3] = byte(i>>8), byte(i)
		ts := uint32(i * 160)
		pktb[4], pktb[5], pktb[6], pktb[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		n, _ := h.Unmarshal(pktb)
		if i%50 != 7 { // some loss
			s.Update(&h, len(pktb)-n, at)
		}
		i++
		at = at.Add(20*time.Millisecond + time.Duration(i%7)*time.Millisecond)
	})
	if a != 0 {
		t.Errorf("Update allocates %v per packet", a)
	}
}

// BenchmarkStreamUpdate: one RTP packet's statistics, without and with the
// quality per second (savegraph); the ratio of the two is its cost.
func BenchmarkStreamUpdate(b *testing.B) {
	for _, series := range []bool{false, true} {
		b.Run(map[bool]string{false: "savegraph=no", true: "savegraph=yes"}[series], func(b *testing.B) { benchStreamUpdate(b, series) })
	}
}

func benchStreamUpdate(b *testing.B, series bool) {
	s := NewStream(StreamConfig{Series: series})
	pktb := rtpPacket(PTPCMA, 0, 0, 7, false, make([]byte, 160))
	var h Header
	at := t0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		pktb[2], pktb[3] = byte(i>>8), byte(i)
		ts := uint32(i * 160)
		pktb[4], pktb[5], pktb[6], pktb[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		n, _ := h.Unmarshal(pktb)
		s.Update(&h, len(pktb)-n, at)
		i++
		at = at.Add(20*time.Millisecond + time.Duration(i%5)*time.Millisecond)
	}
}
