package rtp

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/fixture"
)

// TestCDRJitter: the CDR's jitter columns are VoIPmonitor's jitter, started
// after RFC 3550's probation (rtp.cpp update_seq: MIN_SEQUENTIAL 2) and the
// first voice packet after it (update_stats), while AvgJitter and
// MaxJitter stay tshark's (rtp,streams: mean and max jitter). Expected
// columns are what the real VoIPmonitor 2026.04.0 wrote for these captures
// (voipmonitor-ref): register-invite-reinvite-bye's first two packets of
// each G.711 stream are 21 µs apart (frames 8, 9: tshark's max 1.249 ms is
// that packet), aaa.pcap's 11894297 stream (frames 624-632, 9 packets) has
// 70 ms between its first two.
func TestCDRJitter(t *testing.T) {
	type want struct {
		src, dst             string
		ssrc                 uint32
		opus                 bool
		avg10, maxMs, max10  int     // VoIPmonitor's columns (avg10, maxMs -1: no a_/b_ columns)
		tsharkAvg, tsharkMax float64 // tshark -z rtp,streams
	}
	for _, tc := range []struct {
		name    string
		path    func(testing.TB) string
		streams []want
	}{
		{"register-invite-reinvite-bye", func(t testing.TB) string {
			return fixture.Repo(t, "testdata", "pcap", "register-invite-reinvite-bye.pcap")
		}, []want{
			{"127.0.0.1:5084", "127.0.0.1:5094", 0x0a0a0002, false, 1, 1, 1, 0.302, 1.249},
			{"127.0.0.1:5094", "127.0.0.1:5084", 0x0a0a0001, false, 1, 1, 3, 0.309, 1.249},
			{"127.0.0.1:5084", "127.0.0.1:5094", 0x0eef0002, true, -1, -1, 0, 0.581, 1.248},
			{"127.0.0.1:5094", "127.0.0.1:5084", 0x0eef0001, true, -1, -1, 4, 0.794, 1.254},
		}},
		{"aaa", func(t testing.TB) string { return fixture.Shared(t, "public", "aaa.pcap") }, []want{
			{"192.168.1.2:30000", "212.242.33.36:40392", 0x3796cb71, false, 28, 6, 51, 5.646, 7.799},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgs := map[streamKey]StreamConfig{}
			for _, w := range tc.streams {
				cfg := StreamConfig{EventPT: 101}
				if w.opus {
					cfg.Codec = CodecOpus
				}
				cfgs[streamKey{netip.MustParseAddrPort(w.src), netip.MustParseAddrPort(w.dst), w.ssrc}] = cfg
			}
			got := feedStreams(t, tc.path(t), cfgs)
			for _, w := range tc.streams {
				st := got[streamKey{netip.MustParseAddrPort(w.src), netip.MustParseAddrPort(w.dst), w.ssrc}]
				if st == nil {
					t.Errorf("%s → %s 0x%08x: no stream", w.src, w.dst, w.ssrc)
					continue
				}
				s := st.Summary()
				if s.MaxJitterMult10() != w.max10 || w.avg10 >= 0 && (s.AvgJitterMult10() != w.avg10 || s.MaxJitterMs() != w.maxMs) {
					t.Errorf("%s → %s 0x%08x: avgjitter_mult10 %d, maxjitter %d, maxjitter_mult10 %d (CDR jitter %.3f/%.3f); VoIPmonitor %d, %d, %d",
						w.src, w.dst, w.ssrc, s.AvgJitterMult10(), s.MaxJitterMs(), s.MaxJitterMult10(), s.CDRAvgJitter, s.CDRMaxJitter, w.avg10, w.maxMs, w.max10)
				}
				if math.Abs(s.AvgJitter-w.tsharkAvg) > 0.0005 || math.Abs(s.MaxJitter-w.tsharkMax) > 0.0005 {
					t.Errorf("%s → %s 0x%08x: jitter mean/max %.3f/%.3f, tshark %.3f/%.3f", w.src, w.dst, w.ssrc, s.AvgJitter, s.MaxJitter, w.tsharkAvg, w.tsharkMax)
				}
			}
		})
	}
}

// TestCDRJitterStart: where VoIPmonitor's jitter starts. A packet late by
// 10 ms gives transits of +10 ms into it and -10 ms out of it; VoIPmonitor
// counts them only from its fourth packet (two in RFC 3550's probation,
// then the first voice packet, against which the fourth's transit is
// taken), or one later when the would-be first has the marker bit (its
// RTP::read restarts the sequence). tshark's figures count them all.
func TestCDRJitterStart(t *testing.T) {
	late := func(i int, mod func(p []pkt)) []pkt {
		p := regular(100, 50, nil)
		p[i].at += 10 * time.Millisecond
		if mod != nil {
			mod(p)
		}
		return p
	}
	one := 10.0 / 16         // J after one 10 ms transit
	two := one + (10-one)/16 // after two
	for _, tc := range []struct {
		name   string
		pkts   []pkt
		cdrMax float64
	}{
		{"second packet late", late(1, nil), 0},
		{"third packet late", late(2, nil), one}, // only its transit out of it, at the fourth
		{"fourth packet late", late(3, nil), two},
		{"third packet marked, fourth late", late(3, func(p []pkt) { p[2].marker = true }), one},
		{"tenth packet late", late(9, nil), two},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := run(StreamConfig{EventPT: 101}, tc.pkts)
			if math.Abs(s.MaxJitter-two) > 1e-9 {
				t.Errorf("tshark's max jitter %.4f, want %.4f", s.MaxJitter, two)
			}
			if math.Abs(s.CDRMaxJitter-tc.cdrMax) > 1e-9 {
				t.Errorf("CDR max jitter %.4f (avg %.4f), want %.4f", s.CDRMaxJitter, s.CDRAvgJitter, tc.cdrMax)
			}
		})
	}
}
