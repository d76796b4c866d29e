package rtp

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"pbx-agent/sniffer/fixture"
)

// rtcpHdr builds an RTCP packet header + body (length in words - 1).
func rtcpPkt(pt, count uint8, body []byte) []byte {
	b := []byte{0x80 | count, pt, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(len(body)/4))
	return append(b, body...)
}

func reportBlock(ssrc uint32, frac uint8, lost int32, seq, jitter, lsr, dlsr uint32) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint32(b[0:], ssrc)
	binary.BigEndian.PutUint32(b[4:], uint32(lost)&0xffffff)
	b[4] = frac
	binary.BigEndian.PutUint32(b[8:], seq)
	binary.BigEndian.PutUint32(b[12:], jitter)
	binary.BigEndian.PutUint32(b[16:], lsr)
	binary.BigEndian.PutUint32(b[20:], dlsr)
	return b
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func join(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestCompoundUnmarshal(t *testing.T) {
	sr := rtcpPkt(TypeSR, 1, join(u32(0x1111), u32(0xe0000000), u32(0x10000000), u32(1234), u32(160), u32(20),
		reportBlock(0x2222, 25, 7, 70000, 80, 0xabcd, 0x8000)))
	rr := rtcpPkt(TypeRR, 1, join(u32(0x2222), reportBlock(0x1111, 0, -1, 5, 16, 0, 0)))
	sdes := rtcpPkt(TypeSDES, 1, join(u32(0x1111), []byte{1, 2, 'h', 'i', 0, 0, 0, 0}))
	bye := rtcpPkt(TypeBYE, 2, join(u32(0x1111), u32(0x3333)))
	xrBody := join(u32(0x2222), []byte{7, 0, 0, 8}, u32(0x1111),
		[]byte{12, 3, 1, 2, 0, 10, 0, 20, 0, 30, 0, 40, 0xf0, 0xe0, 20, 16, 93, 127, 41, 38, 0, 0, 0, 60, 0, 100, 0, 200})
	xr := rtcpPkt(TypeXR, 0, xrBody)
	tests := []struct {
		name    string
		in      []byte
		check   func(t *testing.T, c *Compound)
		wantErr error
	}{
		{name: "sr+sdes", in: join(sr, sdes), check: func(t *testing.T, c *Compound) {
			if c.Packets != 2 || c.NSenders != 1 || c.NReports != 1 || c.SDES != 1 {
				t.Fatalf("compound = %+v", c)
			}
			if s := c.Senders[0]; s.SSRC != 0x1111 || s.PacketCount != 160 || s.NTPTime != 0xe000000010000000 {
				t.Errorf("sender = %+v", s)
			}
			if r := c.Reports[0]; r.Reporter != 0x1111 || r.SSRC != 0x2222 || r.FractionLost != 25 || r.TotalLost != 7 ||
				r.LastSeq != 70000 || r.Jitter != 80 || r.LSR != 0xabcd || r.DLSR != 0x8000 {
				t.Errorf("report = %+v", r)
			}
		}},
		{name: "rr negative lost", in: rr, check: func(t *testing.T, c *Compound) {
			if c.NReports != 1 || c.Reports[0].TotalLost != -1 || c.Reports[0].Reporter != 0x2222 {
				t.Errorf("report = %+v", c.Reports[0])
			}
		}},
		{name: "bye", in: join(rr, bye), check: func(t *testing.T, c *Compound) {
			if c.NBye != 2 || c.Bye[1] != 0x3333 {
				t.Errorf("bye = %v", c.Bye[:c.NBye])
			}
		}},
		{name: "xr voip metrics", in: join(rr, xr), check: func(t *testing.T, c *Compound) {
			if c.NXR != 1 {
				t.Fatalf("NXR = %d", c.NXR)
			}
			m := c.XR[0]
			if m.SSRC != 0x1111 || m.LossRate != 12 || m.RoundTripDelay != 30 || m.MOSLQ != 41 || m.MOSCQ != 38 || m.JBAbsMax != 200 || m.NoiseLevel != -32 {
				t.Errorf("xr = %+v", m)
			}
		}},
		{name: "empty", in: nil, wantErr: ErrShortPacket},
		{name: "rtp not rtcp", in: rtpPacket(8, 1, 2, 3, false, make([]byte, 8)), wantErr: ErrNotRTCP},
		{name: "bad version", in: append([]byte{0x40}, rr[1:]...), wantErr: ErrBadVersion},
		{name: "length past end", in: rr[:len(rr)-4], wantErr: ErrBadLength},
		{name: "trailing bytes kept count", in: append(append([]byte{}, rr...), 0x80, 0), check: func(t *testing.T, c *Compound) {
			if c.Packets != 1 || c.Trailing != 2 {
				t.Errorf("packets/trailing = %d/%d", c.Packets, c.Trailing)
			}
		}},
		{name: "trailing bytes only", in: []byte{0x80, 0xc9, 0}, wantErr: ErrShortPacket},
		{name: "rr count exceeds body", in: rtcpPkt(TypeRR, 2, join(u32(1), reportBlock(1, 0, 0, 0, 0, 0, 0))), wantErr: ErrShortPacket},
		{name: "xr block past end", in: rtcpPkt(TypeXR, 0, join(u32(1), []byte{7, 0, 0, 9}, make([]byte, 32))), wantErr: ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Compound
			err := c.Unmarshal(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, &c)
			}
		})
	}
}

func TestCompoundCaptures(t *testing.T) {
	tests := []struct {
		name                 string
		dir, file            string
		wantDatagrams        int
		wantMinPkts, wantMin int // RTCP packets, report blocks
	}{
		// tshark decodes 26 by default; 28 when ports 8001/40377/40379/4801 are forced to RTCP
		{"rtp_rtcp", "public", "rtp_rtcp_sip_ipv4_udp.pcap", 28, 28, 1},
		{"compound", "public", "rtcp_multiple_pkts_in_the_same_datagram.pcap", 0, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Compound
			datagrams, pkts, reports, bad := 0, 0, 0, 0
			readUDP(t, fixture.Shared(t, tt.dir, tt.file), func(p udpPacket) {
				if !LooksLikeRTCP(p.payload) {
					return
				}
				if err := c.Unmarshal(p.payload); err != nil {
					bad++
					t.Logf("%v: %v", p.src, err)
					return
				}
				datagrams++
				pkts += c.Packets
				reports += c.NReports
			})
			if bad != 0 {
				t.Errorf("%d RTCP datagrams failed to parse", bad)
			}
			if tt.wantDatagrams != 0 && datagrams != tt.wantDatagrams {
				t.Errorf("datagrams = %d, want %d", datagrams, tt.wantDatagrams)
			}
			if pkts < tt.wantMinPkts || reports < tt.wantMin {
				t.Errorf("packets/reports = %d/%d, want ≥ %d/%d", pkts, reports, tt.wantMinPkts, tt.wantMin)
			}
			t.Logf("%s: %d datagrams, %d RTCP packets, %d report blocks", tt.file, datagrams, pkts, reports)
		})
	}
}

func TestRTCPStats(t *testing.T) {
	arrival := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	// LSR 250 ms before arrival, DLSR 100 ms → RTT 150 ms
	lsr := ntpMiddle(arrival.Add(-250 * time.Millisecond))
	rr := ReceptionReport{SSRC: 1, FractionLost: 51, TotalLost: 12, Jitter: 160, LSR: lsr, DLSR: 6554}
	var s RTCPStats
	s.Update(&rr, arrival, 8000)
	rr.FractionLost, rr.Jitter = 0, 80
	s.Update(&rr, arrival, 8000)
	if s.Reports != 2 || s.Lost != 12 || s.MaxFraction != 51 || s.AvgFraction != 25.5 {
		t.Errorf("loss figures = %+v", s)
	}
	if s.MaxJitter != 20 || s.AvgJitter != 15 {
		t.Errorf("jitter max/avg = %v/%v, want 20/15 ms", s.MaxJitter, s.AvgJitter)
	}
	if s.RTTCount != 2 || s.MaxRTT < 149.9 || s.MaxRTT > 150.1 {
		t.Errorf("rtt = %v (%d)", s.MaxRTT, s.RTTCount)
	}
	s.UpdateXR(&VoIPMetrics{MOSLQ: 41})
	s.UpdateXR(&VoIPMetrics{MOSLQ: 127})
	if s.XRReports != 2 || s.XRMOSLQ != 4.1 || s.XRMOSM != 4.1 {
		t.Errorf("xr = %+v", s)
	}
}

func FuzzCompoundUnmarshal(f *testing.F) {
	f.Add(rtcpPkt(TypeRR, 1, join(u32(0x2222), reportBlock(0x1111, 0, -1, 5, 16, 0, 0))))
	f.Add(join(rtcpPkt(TypeSR, 0, join(u32(1), make([]byte, 20))), rtcpPkt(TypeBYE, 1, u32(1))))
	f.Add(rtcpPkt(TypeXR, 0, join(u32(1), []byte{7, 0, 0, 8}, make([]byte, 32))))
	f.Add(rtcpPkt(TypeSDES, 1, join(u32(1), []byte{1, 1, 'x', 0})))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Compound
		if err := c.Unmarshal(b); err != nil {
			return
		}
		if c.NReports > MaxReports || c.NBye > MaxByeSSRC || c.NXR > MaxXRMetrics || c.Packets == 0 {
			t.Fatalf("bad counts %+v", c)
		}
	})
}

func TestCompoundAllocs(t *testing.T) {
	b := join(rtcpPkt(TypeSR, 1, join(u32(1), make([]byte, 20), reportBlock(2, 0, 0, 0, 0, 0, 0))),
		rtcpPkt(TypeSDES, 1, join(u32(1), []byte{1, 1, 'x', 0})))
	var c Compound
	if a := testing.AllocsPerRun(100, func() { _ = c.Unmarshal(b) }); a != 0 {
		t.Errorf("Unmarshal allocates %v per run", a)
	}
}

func BenchmarkCompoundUnmarshal(b *testing.B) {
	pkt := join(rtcpPkt(TypeSR, 1, join(u32(1), make([]byte, 20), reportBlock(2, 0, 0, 0, 0, 0, 0))),
		rtcpPkt(TypeSDES, 1, join(u32(1), []byte{1, 1, 'x', 0})))
	var c Compound
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Unmarshal(pkt); err != nil {
			b.Fatal(err)
		}
	}
}
