package cdr

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
)

func TestNormaliseUA(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"version that looks like an address", "Nero SIPPS IP Phone Version 2.0.51.16", "Nero SIPPS IP Phone Version"},
		{"three-part version kept", "Asterisk PBX 20.20.1", "Asterisk PBX 20.20.1"},
		{"baresip kept", "baresip v1.0.0 (x86_64/linux)", "baresip v1.0.0 (x86_64/linux)"},
		{"vendor version kept", "IPP/v.6.20A.027.012", "IPP/v.6.20A.027.012"},
		{"address with port", "Gateway 10.0.0.1:5060 fw2", "Gateway fw2"},
		{"address after at", "MagnusBilling x @200.201.235.196", "MagnusBilling x"},
		{"octet out of range kept", "Phone 1.2.3.456", "Phone 1.2.3.456"},
		{"bad port kept", "Phone 1.2.3.4:x", "Phone 1.2.3.4:x"},
		{"empty", "", ""},
		{"only an address", "192.0.2.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormaliseUA(tc.in); got != tc.want {
				t.Errorf("NormaliseUA(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzNormaliseUA(f *testing.F) {
	for _, s := range []string{"Nero SIPPS IP Phone Version 2.0.51.16", "a @1.2.3.4:5 b", "1.2.3.4", "x\t1.1.1.1 \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormaliseUA(s)
		if len(got) > len(s) {
			t.Fatalf("NormaliseUA(%q) = %q grew", s, got)
		}
		if again := NormaliseUA(got); again != got {
			t.Fatalf("not idempotent: %q → %q → %q", s, got, again)
		}
	})
}

func BenchmarkNormaliseUA(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NormaliseUA("baresip v1.0.0 (x86_64/linux)")
	}
}

func colValue(r row, name string) (any, bool) {
	for _, c := range r {
		if c.name == name {
			return c.v, true
		}
	}
	return nil, false
}

func TestCDRRowSighupAndPostBye(t *testing.T) {
	for _, tc := range []struct {
		name        string
		edit        func(c *call.CDR)
		wantSighup  int64
		wantPostBye any
	}{
		{"BYE and OK, emitted in the capture", func(*call.CDR) {}, 0, "0.004"},
		{"closed by the flush", func(c *call.CDR) { c.ForcedClose = true }, 1, "0.004"},
		{"BYE without OK", func(c *call.CDR) { c.Bye = call.ByeNoOKForBye }, 0, nil},
		{"no BYE", func(c *call.CDR) { c.ByeTime = time.Time{}; c.Bye = call.ByeAnsweredNoBye }, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleCDR(1)
			tc.edit(c)
			r := cdrRow(c, &lookups{}, rowOptions{idSensor: 1})
			if v, _ := colValue(r, "sighup"); v != tc.wantSighup {
				t.Errorf("sighup = %v, want %v", v, tc.wantSighup)
			}
			if v, _ := colValue(r, "post_bye_delay"); v != tc.wantPostBye {
				t.Errorf("post_bye_delay = %v, want %v", v, tc.wantPostBye)
			}
		})
	}
}

func TestLastRTPFromEndSigned(t *testing.T) {
	c := sampleCDR(1)
	c.Streams[0].LastTime = c.CallEnd.Add(1500 * time.Millisecond) // RTP after the last SIP packet
	r := cdrRow(c, &lookups{}, rowOptions{idSensor: 1})
	if v, _ := colValue(r, "a_last_rtp_from_end"); v != "-1.500" {
		t.Errorf("a_last_rtp_from_end = %v, want -1.500", v)
	}
}

// TestMOSColumns: a_mos_*_min_mult10 are the lowest interval's MOS (they
// were the average), mos_min_mult10 the F2 average or, with mosmin_f2 = no,
// the lowest of the three averages (VoIPmonitor's calltable.cpp).
func TestMOSColumns(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    rowOptions
		want map[string]any
	}{
		{"mosmin_f2 = yes", rowOptions{}, map[string]any{
			"b_mos_f1_mult10": int64(41), "b_mos_f2_mult10": int64(43), "b_mos_adapt_mult10": int64(44),
			"b_mos_f1_min_mult10": int64(28), "b_mos_f2_min_mult10": int64(39), "b_mos_adapt_min_mult10": int64(42),
			"b_mos_min_mult10": int64(43), "a_mos_min_mult10": int64(45), "mos_min_mult10": int64(43)}},
		{"mosmin_f2 = no", rowOptions{mosMinAll: true}, map[string]any{
			"b_mos_min_mult10": int64(41), "a_mos_min_mult10": int64(45), "mos_min_mult10": int64(41),
			"b_mos_f1_min_mult10": int64(28)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleCDR(1)
			s := &c.Streams[1]
			s.MOSF1, s.MOSF2, s.MOSAdapt = 4.1, 4.3, 4.4
			s.MOSF1Min, s.MOSF2Min, s.MOSAdaptMin = 2.8, 3.9, 4.2
			r := cdrRow(c, &lookups{}, tc.o)
			for col, want := range tc.want {
				if v, _ := colValue(r, col); v != want {
					t.Errorf("%s = %v, want %v", col, v, want)
				}
			}
		})
	}
}

// TestResponseTimeColumns: response_time_100 and _xxx are the quickest
// INVITE transaction's delay in ms (rounded half up, capped at 65,535),
// NULL without such a response, and with response_time_from_first_invite
// the delay from the call's first INVITE to the call's first such response
// (VoIPmonitor's calltable.cpp).
func TestResponseTimeColumns(t *testing.T) {
	us := time.Microsecond
	for _, tc := range []struct {
		name          string
		r100, rXXX    call.ResponseDelay
		o             rowOptions
		want100, wXXX any
	}{
		{"none", call.ResponseDelay{}, call.ResponseDelay{}, rowOptions{}, nil, nil},
		{"no 100", call.ResponseDelay{}, call.ResponseDelay{First: t0.Add(ms(50)), Min: ms(50)}, rowOptions{}, nil, int64(50)},
		{"rounded half up", call.ResponseDelay{First: t0.Add(1499 * us), Min: 1499 * us},
			call.ResponseDelay{First: t0.Add(2500 * us), Min: 2500 * us}, rowOptions{}, int64(1), int64(3)},
		{"quickest transaction", call.ResponseDelay{First: t0.Add(ms(10)), Min: ms(4)},
			call.ResponseDelay{First: t0.Add(ms(130)), Min: ms(100)}, rowOptions{}, int64(4), int64(100)},
		{"from the first INVITE", call.ResponseDelay{First: t0.Add(ms(10)), Min: ms(4)},
			call.ResponseDelay{First: t0.Add(ms(130)), Min: ms(100)}, rowOptions{fromFirstInvite: true}, int64(10), int64(130)},
		{"no transaction answered", call.ResponseDelay{First: t0.Add(ms(30))}, call.ResponseDelay{}, rowOptions{}, int64(0), nil},
		{"capped", call.ResponseDelay{}, call.ResponseDelay{First: t0.Add(70 * time.Second), Min: 70 * time.Second},
			rowOptions{}, nil, int64(65535)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleCDR(0)
			c.CallDate = t0
			c.Response100, c.ResponseXXX = tc.r100, tc.rXXX
			r := cdrRow(c, &lookups{}, tc.o)
			for _, w := range []struct {
				col  string
				want any
			}{{"response_time_100", tc.want100}, {"response_time_xxx", tc.wXXX}} {
				if v, ok := colValue(r, w.col); !ok || v != w.want {
					t.Errorf("%s = %v (present %v), want %v", w.col, v, ok, w.want)
				}
			}
		})
	}
}

func TestCDRNextRow(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		callID, digest           string
		hold                     []time.Duration
		wantBase                 string
		wantDigest, wantHoldText any
	}{
		{"plain", "abc@host", "", nil, "abc@host", nil, nil},
		{"slash sanitised, digest", "a/b\\c", "1001", nil, "a_b_c", "1001", nil},
		{"hold at start and later", "h", "", []time.Duration{50 * time.Millisecond, 12300 * time.Millisecond}, "h", nil, "+0,+12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleCDR(0)
			c.CallID, c.DigestUsername = tc.callID, tc.digest
			for _, d := range tc.hold {
				c.Hold = append(c.Hold, c.CallDate.Add(d))
			}
			r := cdrNextRow(7, c, rowOptions{})
			for _, want := range []struct {
				col string
				v   any
			}{{"cdr_ID", uint64(7)}, {"fbasename", tc.wantBase}, {"digest_username", tc.wantDigest}, {"hold", tc.wantHoldText}} {
				if v, ok := colValue(r, want.col); !ok || v != want.v {
					t.Errorf("%s = %v (present %v), want %v", want.col, v, ok, want.v)
				}
			}
		})
	}
}

func TestSIPRespRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *call.CDR)
		want []string
	}{
		{"texts as sent", func(c *call.CDR) {
			c.SIPResponses = []call.Response{{Code: 180, Reason: "Ringing"}, {Code: 200, Reason: "Answering"}, {Code: 200, Reason: "OK"}}
		}, []string{"180 Ringing", "200 Answering", "200 OK"}},
		{"older record with codes only", func(c *call.CDR) {
			c.SIPResponses = nil
			c.Responses = []int{100, 180, 200}
			c.LastSIPResponse = "200 Answering"
		}, []string{"100 Trying", "180 Ringing", "200 Answering"}},
		{"unknown code without text", func(c *call.CDR) { c.SIPResponses = []call.Response{{Code: 299}} }, []string{"299"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleCDR(0)
			tc.edit(c)
			ids := &lookups{responses: map[string]uint64{}}
			for i, s := range tc.want {
				ids.responses[s] = uint64(i + 1)
			}
			rows := cdrSIPRespRows(3, c, ids, rowOptions{})
			if len(rows) != len(tc.want) {
				t.Fatalf("%d rows, want %d", len(rows), len(tc.want))
			}
			for i, r := range rows {
				if v, _ := colValue(r, "SIPresponse_id"); v != uint64(i+1) {
					t.Errorf("row %d: SIPresponse_id %v, want %d (%s)", i, v, i+1, tc.want[i])
				}
				if got := responseText(sipResponses(c)[i]); got != tc.want[i] {
					t.Errorf("row %d: text %q, want %q", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestDTMFRows(t *testing.T) {
	c := sampleCDR(0)
	src := netip.MustParseAddrPort("10.1.0.0:20000")
	dst := netip.MustParseAddrPort("192.0.2.10:10000")
	c.DTMF = []call.DTMF{
		{Time: c.CallDate.Add(1500 * time.Millisecond), Digit: '5', Source: "rfc2833", Src: src, Dst: dst},
		{Time: c.CallDate.Add(2 * time.Second), Digit: '#', Source: "sipinfo", Src: src, Dst: dst},
	}
	rows := cdrDTMFRows(9, c, rowOptions{})
	want := []struct {
		first, digit string
		typ          int64
	}{{"1.500", "5", dtmfRFC2833}, {"2.000", "#", dtmfSIPInfo}}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		got := map[string]any{}
		for _, c := range rows[i] {
			got[c.name] = c.v
		}
		if got["firsttime"] != w.first || got["dtmf"] != w.digit || got["type"] != w.typ || got["saddr"] != ip4(src.Addr()) || got["daddr"] != ip4(dst.Addr()) {
			t.Errorf("row %d = %v, want firsttime %s dtmf %s type %d", i, got, w.first, w.digit, w.typ)
		}
	}
}

// TestFaxPayload: a call with UDPTL packets has payload 1000 (T.38), with
// or without RTP streams, as VoIPmonitor writes it; one whose G.711 audio
// carried a fax tone (faxdetect) 1001 (T.30) unless it also had UDPTL or
// a 488/606 answer; otherwise the payload stays the stream's.
func TestFaxPayload(t *testing.T) {
	for _, tc := range []struct {
		name          string
		fax           int
		tones         bool
		notAcceptable bool
		streams       bool
		want          any
	}{
		{"RTP only", 0, false, false, true, int64(8)},
		{"T.38 after G.711", 120, false, false, true, int64(PayloadT38)},
		{"T.38 only", 120, false, false, false, int64(PayloadT38)},
		{"no media", 0, false, false, false, nil},
		{"fax tones", 0, true, false, true, int64(PayloadT30)},
		{"fax tones then T.38", 120, true, false, true, int64(PayloadT38)},
		{"fax tones, T.38 refused 488", 0, true, true, true, int64(8)},
		{"T.38 refused, UDPTL anyway", 120, false, true, true, int64(PayloadT38)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleCDR(1)
			c.FaxPackets, c.FaxTones, c.NotAcceptable = tc.fax, tc.tones, tc.notAcceptable
			if !tc.streams {
				c.Streams = nil
			}
			r := cdrRow(c, &lookups{}, rowOptions{idSensor: 1})
			if v, _ := colValue(r, "payload"); v != tc.want {
				t.Errorf("payload = %v (%T), want %v", v, v, tc.want)
			}
		})
	}
}

// TestJitterColumns: the CDR's jitter columns come from VoIPmonitor's
// jitter (rtp.Summary.CDRAvgJitter/CDRMaxJitter), rounded as its
// calltable.cpp: a_avgjitter_mult10 ceil(avg×10), a_maxjitter ceil(max),
// jitter_mult10 the larger side's, cdr_rtp.maxjitter_mult10 (unsigned)
// (max×10); tshark's AvgJitter/MaxJitter (the stream's statistics) are not
// what they hold (aaa.pcap 11894297: tshark 5.646/7.799, VoIPmonitor's
// 2.720/5.113 gives 28, 6, 51).
func TestJitterColumns(t *testing.T) {
	c := sampleCDR(1)
	s := &c.Streams[0]
	s.AvgJitter, s.MaxJitter = 5.646, 7.799
	s.CDRAvgJitter, s.CDRMaxJitter = 2.7199, 5.1132
	b := &c.Streams[1]
	b.CDRAvgJitter, b.CDRMaxJitter = 0.04, 0.17
	r := cdrRow(c, &lookups{}, rowOptions{})
	for col, want := range map[string]any{"a_avgjitter_mult10": int64(28), "a_maxjitter": int64(6),
		"b_avgjitter_mult10": int64(1), "b_maxjitter": int64(1), "jitter_mult10": int64(28)} {
		if v, _ := colValue(r, col); v != want {
			t.Errorf("%s = %v, want %v", col, v, want)
		}
	}
	rows := cdrRTPRows(1, c, rowOptions{})
	for i, want := range []any{int64(51), int64(1)} {
		if v, _ := colValue(rows[i], "maxjitter_mult10"); v != want {
			t.Errorf("cdr_rtp %d maxjitter_mult10 = %v, want %v", i+1, v, want)
		}
	}
}

// TestLastRTPFromEnd: a_/b_last_rtp_from_end count from the last packet of
// any stream of that side, as VoIPmonitor's last_rtp_a_packet_time_us
// (register-invite-reinvite-bye: the G.711 streams shown as A and B end
// 0.610 s before the call, the Opus ones after the re-INVITE 0.003 s).
func TestLastRTPFromEnd(t *testing.T) {
	c := sampleCDR(1)
	later := c.Streams[0]
	later.SSRC, later.LastTime = 7, c.CallEnd.Add(-3*time.Millisecond)
	later.FirstTime = c.Streams[0].LastTime
	later.Received = 10 // fewer than the first: A stays the first stream
	c.Streams = append(c.Streams, later)
	r := cdrRow(c, &lookups{}, rowOptions{})
	if v, _ := colValue(r, "a_index"); v != int64(0) {
		t.Fatalf("a_index = %v, want 0", v)
	}
	for col, want := range map[string]time.Duration{"a_last_rtp_from_end": 3 * time.Millisecond,
		"b_last_rtp_from_end": c.CallEnd.Sub(c.Streams[1].LastTime)} {
		v, _ := colValue(r, col)
		if fmt.Sprint(v) != fmt.Sprint(dec3Signed(want)) {
			t.Errorf("%s = %v, want %v", col, v, dec3Signed(want))
		}
	}
}
