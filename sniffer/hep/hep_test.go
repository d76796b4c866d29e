package hep_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/hep"
	"pbx-agent/sniffer/hep/heptest"
	"pbx-agent/sniffer/rtp"
)

// asteriskHEP returns the 40 HEP3 datagrams the real Asterisk 20.20.1 sent
// in the hep-tls recording (testdata/pcap/asterisk-call-hep-tls.pcap).
func asteriskHEP(t testing.TB) []heptest.Datagram {
	t.Helper()
	ds, err := heptest.ReadUDP(fixture.Repo(t, "testdata", "pcap", "asterisk-call-hep-tls.pcap"), 9060)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 40 {
		t.Fatalf("%d HEP datagrams in the recording, want 40", len(ds))
	}
	return ds
}

// TestAsteriskHEP decodes what res_hep sent: the facts of the fixture's
// README (32 SIP, 8 RTCP JSON, capture id 4711, password, Call-IDs as
// correlation ids, TLS SIP labelled TCP 54042 → 5061).
func TestAsteriskHEP(t *testing.T) {
	var p hep.Packet
	kinds := map[uint8]int{}
	cids := map[string]int{}
	for i, d := range asteriskHEP(t) {
		if err := p.Unmarshal(d.Payload); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if err := heptest.Check(d.Payload); err != nil {
			t.Errorf("datagram %d fails the HEP3 check: %v", i, err)
		}
		if p.Version != 3 || p.CaptureID != 4711 || string(p.AuthKey) != "hepsecret" || p.Family != hep.FamilyIPv4 {
			t.Errorf("datagram %d: version %d capture id %d auth %q family %d", i, p.Version, p.CaptureID, p.AuthKey, p.Family)
		}
		kinds[p.ProtoType]++
		cids[string(p.CorrelationID)]++
		if d := p.Time().Sub(d.Packet.Time); d < -10*time.Millisecond || d > 10*time.Millisecond {
			t.Errorf("datagram %d: HEP time %v is %v from the capture time", i, p.Time(), d)
		}
		if p.ProtoType == hep.ProtoSIP && !bytes.Contains(p.Payload, []byte("Call-ID: "+string(p.CorrelationID))) {
			t.Errorf("datagram %d: correlation id %q is not the SIP Call-ID", i, p.CorrelationID)
		}
	}
	if kinds[hep.ProtoSIP] != 32 || kinds[hep.ProtoRTCPJSON] != 8 {
		t.Errorf("payload types %v, want 32 SIP and 8 RTCP JSON", kinds)
	}
	for _, id := range []string{"3b5a193e80f4d691", "a588a11b-2f9b-4179-924e-64e8d496c28c", "4ac79a7a0a03b3f8", "e8269b90571f2016"} {
		if cids[id] == 0 {
			t.Errorf("no HEP packet correlated to %s", id)
		}
	}
	// The first one: Alice's REGISTER over TLS, as Asterisk received it.
	if err := p.Unmarshal(asteriskHEP(t)[0].Payload); err != nil {
		t.Fatal(err)
	}
	want := hep.Packet{Version: 3, Family: hep.FamilyIPv4, IPProto: hep.IPProtoTCP,
		Src: netip.MustParseAddrPort("127.0.0.1:54042"), Dst: netip.MustParseAddrPort("127.0.0.1:5061"),
		TimeSec: 1796603506, TimeUsec: 767000, ProtoType: hep.ProtoSIP, CaptureID: 4711}
	got := p
	got.AuthKey, got.CorrelationID, got.Payload = nil, nil, nil
	if !equal(&got, &want) || !bytes.HasPrefix(p.Payload, []byte("REGISTER sip:127.0.0.1;transport=tls SIP/2.0\r\n")) {
		t.Errorf("first packet\n got %+v\nwant %+v", got, want)
	}
}

// TestMarshalRoundTrip: every Asterisk packet re-encoded passes the chunk
// check and decodes back to the same fields.
func TestMarshalRoundTrip(t *testing.T) {
	var p, q hep.Packet
	for i, d := range asteriskHEP(t) {
		if err := p.Unmarshal(d.Payload); err != nil {
			t.Fatal(err)
		}
		p.NodeName, p.VLAN = []byte("node-a"), 42
		b, err := hep.AppendMarshal(nil, &p)
		if err != nil {
			t.Fatal(err)
		}
		if err := heptest.Check(b); err != nil {
			t.Errorf("packet %d: %v", i, err)
		}
		if err := q.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if !equal(&p, &q) {
			t.Errorf("packet %d: round trip\n got %+v\nwant %+v", i, q, p)
		}
	}
	// IPv6 too.
	p = hep.Packet{IPProto: hep.IPProtoUDP, Src: netip.MustParseAddrPort("[2001:db8::1]:5060"), Dst: netip.MustParseAddrPort("[2001:db8::2]:5062"),
		TimeSec: 1, TimeUsec: 2, ProtoType: hep.ProtoSIP, CaptureID: 9, Payload: []byte("BYE sip:x SIP/2.0\r\n\r\n")}
	b, err := hep.AppendMarshal(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	if err := heptest.Check(b); err != nil {
		t.Error(err)
	}
	if err := q.Unmarshal(b); err != nil || q.Family != hep.FamilyIPv6 || q.Src != p.Src || q.Dst != p.Dst {
		t.Errorf("IPv6: %v %+v", err, q)
	}
}

func equal(a, b *hep.Packet) bool {
	return a.Version == b.Version && a.Family == b.Family && a.IPProto == b.IPProto && a.Src == b.Src && a.Dst == b.Dst &&
		a.TimeSec == b.TimeSec && a.TimeUsec == b.TimeUsec && a.ProtoType == b.ProtoType && a.CaptureID == b.CaptureID &&
		a.VLAN == b.VLAN && bytes.Equal(a.AuthKey, b.AuthKey) && bytes.Equal(a.CorrelationID, b.CorrelationID) &&
		bytes.Equal(a.NodeName, b.NodeName) && bytes.Equal(a.Payload, b.Payload)
}

// TestChunkBytes pins the encoding byte by byte: network byte order, vendor
// 0, chunk lengths with their 6-byte header.
func TestChunkBytes(t *testing.T) {
	p := hep.Packet{IPProto: hep.IPProtoUDP, Src: netip.MustParseAddrPort("10.0.0.1:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5070"),
		TimeSec: 0x01020304, TimeUsec: 0x00050607, ProtoType: hep.ProtoSIP, CaptureID: 0x0a0b0c0d, AuthKey: []byte("pw"), Payload: []byte("X")}
	b, err := hep.AppendMarshal([]byte("prefix"), &p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatal("dst not appended to")
	}
	b = b[len("prefix"):]
	want := []byte("HEP3\x00\x00" +
		"\x00\x00\x00\x01\x00\x07\x02" + "\x00\x00\x00\x02\x00\x07\x11" +
		"\x00\x00\x00\x07\x00\x08\x13\xc4" + "\x00\x00\x00\x08\x00\x08\x13\xce" +
		"\x00\x00\x00\x09\x00\x0a\x01\x02\x03\x04" + "\x00\x00\x00\x0a\x00\x0a\x00\x05\x06\x07" +
		"\x00\x00\x00\x0b\x00\x07\x01" + "\x00\x00\x00\x0c\x00\x0a\x0a\x0b\x0c\x0d" +
		"\x00\x00\x00\x03\x00\x0a\x0a\x00\x00\x01" + "\x00\x00\x00\x04\x00\x0a\x0a\x00\x00\x02" +
		"\x00\x00\x00\x0e\x00\x08pw" + "\x00\x00\x00\x0f\x00\x07X")
	binary.BigEndian.PutUint16(want[4:], uint16(len(want)))
	if !bytes.Equal(b, want) {
		t.Errorf("encoding\n got %q\nwant %q", b, want)
	}
}

// TestBadHEP: malformed input gives its sentinel error, never a panic.
func TestBadHEP(t *testing.T) {
	good := asteriskHEP(t)[0].Payload
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, hep.ErrTooShort},
		{"not HEP", []byte("INVITE sip:x SIP/2.0"), hep.ErrVersion},
		{"header only", []byte("HEP3"), hep.ErrTooShort},
		{"truncated", good[:100], hep.ErrLength},
		{"total length below header", mod(func(b []byte) []byte { b[4], b[5] = 0, 3; return b }), hep.ErrLength},
		{"chunk length past the end", mod(func(b []byte) []byte { b[10], b[11] = 0xff, 0xff; return b }), hep.ErrChunkLength},
		{"chunk length below header", mod(func(b []byte) []byte { b[10], b[11] = 0, 2; return b }), hep.ErrChunkLength},
		{"family chunk of 2 bytes", mod(func(b []byte) []byte {
			// shift: make the family chunk 8 long and eat the protocol chunk's first byte
			b[11] = 8
			return b
		}), hep.ErrChunkSize},
		{"cut inside a chunk header", mod(func(b []byte) []byte {
			b = b[:6+7+3]
			binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
			return b
		}), hep.ErrChunkLength},
		{"no payload", mod(func(b []byte) []byte {
			i := bytes.Index(b, []byte("\x00\x00\x00\x0f"))
			b = b[:i]
			binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
			return b
		}), hep.ErrNoPayload},
		{"v2 short", []byte{2, 16, 2, 17, 0, 1, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8}, hep.ErrTooShort},
		{"v2 bad family", append([]byte{2, 16, 7, 17, 0, 1, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8}, filler(20)...), hep.ErrFamily},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p hep.Packet
			if err := p.Unmarshal(c.in); !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func filler(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }

// TestHEPv2 decodes the fixed v2 header (time header little-endian).
func TestHEPv2(t *testing.T) {
	b := []byte{2, 16, 2, 17, 0x13, 0xc4, 0x13, 0xce, 10, 0, 0, 1, 10, 0, 0, 2}
	b = binary.LittleEndian.AppendUint32(b, 1700000000)
	b = binary.LittleEndian.AppendUint32(b, 123456)
	b = binary.LittleEndian.AppendUint16(b, 7)
	b = append(b, "OPTIONS sip:a@b SIP/2.0\r\n\r\n"...)
	var p hep.Packet
	if err := p.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if p.Version != 2 || p.Src.String() != "10.0.0.1:5060" || p.Dst.String() != "10.0.0.2:5070" || p.TimeSec != 1700000000 ||
		p.TimeUsec != 123456 || p.CaptureID != 7 || p.ProtoType != hep.ProtoSIP || !strings.HasPrefix(string(p.Payload), "OPTIONS") {
		t.Errorf("v2: %+v", p)
	}
	if !hep.IsHEP(b) {
		t.Error("IsHEP(v2) = false")
	}
}

// TestUnmarshalAllocs: decoding allocates nothing.
func TestUnmarshalAllocs(t *testing.T) {
	b := asteriskHEP(t)[5].Payload
	var p hep.Packet
	if n := testing.AllocsPerRun(100, func() { _ = p.Unmarshal(b) }); n != 0 {
		t.Errorf("Unmarshal: %v allocs, want 0", n)
	}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf, _ = hep.AppendMarshal(buf[:0], &p) }); n != 0 {
		t.Errorf("AppendMarshal into a large enough buffer: %v allocs, want 0", n)
	}
}

// TestRTCPJSON: the reports res_hep_rtcp sent parse, and what the agent
// writes from a wire RTCP packet parses back to the same blocks.
func TestRTCPJSON(t *testing.T) {
	var p hep.Packet
	var rep hep.RTCPReport
	n := 0
	for _, d := range asteriskHEP(t) {
		if err := p.Unmarshal(d.Payload); err != nil || p.ProtoType != hep.ProtoRTCPJSON {
			continue
		}
		if err := rep.Parse(p.Payload); err != nil {
			t.Fatal(err)
		}
		var rr [4]rtp.ReceptionReport
		if rep.Type != 200 || rep.Blocks(rr[:]) != 1 || rr[0].SSRC == 0 || rr[0].LastSeq == 0 {
			t.Errorf("report %s: %+v", p.Payload, rr[0])
		}
		n++
	}
	if n != 8 {
		t.Errorf("%d RTCP JSON reports, want 8", n)
	}
	c := rtp.Compound{NSenders: 1, NReports: 1}
	c.Senders[0] = rtp.SenderInfo{SSRC: 7, NTPTime: 3913056000<<32 | 1<<31, RTPTime: 160, PacketCount: 50, OctetCount: 8000}
	c.Reports[0] = rtp.ReceptionReport{Reporter: 7, SSRC: 9, FractionLost: 3, TotalLost: -1, LastSeq: 70000, Jitter: 12, LSR: 5, DLSR: 6}
	js := hep.AppendRTCPJSON(nil, &c)
	want := `{"ssrc":7,"type":200,"report_count":1,"sender_information":{"ntp_timestamp_sec":"3913056000","ntp_timestamp_usec":"500000","rtp_timestamp":160,"packets":50,"octets":8000},"report_blocks":[{"source_ssrc":9,"fraction_lost":3,"packets_lost":-1,"highest_seq_no":70000,"ia_jitter":12,"lsr":"5","dlsr":6}]}`
	if string(js) != want {
		t.Errorf("JSON\n got %s\nwant %s", js, want)
	}
	if err := rep.Parse(js); err != nil {
		t.Fatal(err)
	}
	var rr [1]rtp.ReceptionReport
	if rep.Blocks(rr[:]); rr[0] != c.Reports[0] {
		t.Errorf("parsed back %+v, want %+v", rr[0], c.Reports[0])
	}
	if err := rep.Parse([]byte(`{"ssrc":"x"}`)); !errors.Is(err, hep.ErrRTCPJSON) {
		t.Errorf("bad JSON: %v", err)
	}
}

// FuzzUnmarshal: any input decodes or fails with an error, never panics;
// what decodes as HEP3 re-encodes to a packet that passes the chunk check
// and decodes to the same fields.
func FuzzUnmarshal(f *testing.F) {
	for _, d := range asteriskHEP(f)[:3] {
		f.Add(d.Payload)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p, q hep.Packet
		if p.Unmarshal(b) != nil {
			return
		}
		out, err := hep.AppendMarshal(nil, &p)
		if err != nil {
			return // e.g. an unspecified address
		}
		if err := heptest.Check(out); err != nil {
			t.Fatalf("re-encoded packet fails the check: %v", err)
		}
		if err := q.Unmarshal(out); err != nil {
			t.Fatalf("re-encoded packet does not decode: %v", err)
		}
		p.Version, p.Family = 3, q.Family
		if !equal(&p, &q) {
			t.Fatalf("round trip\n got %+v\nwant %+v", q, p)
		}
	})
}

// BenchmarkUnmarshal: decoding one of Asterisk's SIP HEP packets.
func BenchmarkUnmarshal(b *testing.B) {
	d := asteriskHEP(b)[12].Payload
	var p hep.Packet
	b.SetBytes(int64(len(d)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Unmarshal(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendMarshal: encoding one SIP message as HEP3.
func BenchmarkAppendMarshal(b *testing.B) {
	d := asteriskHEP(b)[12].Payload
	var p hep.Packet
	if err := p.Unmarshal(d); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = hep.AppendMarshal(buf[:0], &p)
	}
}
