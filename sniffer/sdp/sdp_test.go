package sdp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"pbx-agent/internal/testkit"
)

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

const offer = `v=0
o=alice 2890844526 2890844527 IN IP4 192.0.2.101
s=-
c=IN IP4 192.0.2.101
t=0 0
a=sendrecv
m=audio 49170 RTP/AVP 0 8 9 18 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=rtcp:49180 IN IP4 192.0.2.102
m=video 51372/2 RTP/AVP 99
c=IN IP6 2001:db8::2
a=rtpmap:99 h264/90000
a=recvonly
m=audio 0 RTP/SAVP 111
a=rtpmap:111 opus/48000/2
a=rtcp-mux
a=inactive
m=image 5000 udptl t38
`

func TestParse(t *testing.T) {
	var s Session
	if err := Parse(crlf(offer), &s); err != nil {
		t.Fatal(err)
	}
	if s.NMedia != 4 || s.Conn != netip.MustParseAddr("192.0.2.101") || string(s.Origin.Username) != "alice" ||
		string(s.Origin.SessVersion) != "2890844527" || s.Origin.Addr != netip.MustParseAddr("192.0.2.101") || string(s.Name) != "-" {
		t.Fatalf("session: %+v", s)
	}
	a := &s.Media[0]
	if string(a.Type) != "audio" || !a.Audio() || a.Port != 49170 || a.NPorts != 1 || string(a.Proto) != "RTP/AVP" ||
		a.NPayloads != 5 || a.Payloads[4] != 101 || a.Ptime != 20 || a.Direction != SendRecv || a.Conn != s.Conn ||
		a.RTCPPort != 49180 || a.RTCPAddr != netip.MustParseAddr("192.0.2.102") || a.RTCPMux {
		t.Errorf("audio: %+v", a)
	}
	v := &s.Media[1]
	if v.Port != 51372 || v.NPorts != 2 || v.Conn != netip.MustParseAddr("2001:db8::2") || v.Direction != RecvOnly || v.Audio() {
		t.Errorf("video: %+v", v)
	}
	o := &s.Media[2]
	if o.Port != 0 || !o.RTCPMux || o.Direction != Inactive || o.NRTPMap != 1 || o.RTPMap[0].Channels != 2 {
		t.Errorf("opus: %+v", o)
	}
	if im := &s.Media[3]; im.NPayloads != 0 || string(im.Proto) != "udptl" {
		t.Errorf("image: %+v", im)
	}
	codecs := []struct {
		m     *Media
		pt    uint8
		name  string
		clock int
	}{
		{a, 0, "PCMU", 8000}, {a, 8, "PCMA", 8000}, {a, 9, "G722", 8000}, {a, 18, "G729", 8000},
		{a, 101, "telephone-event", 8000}, {a, 3, "GSM", 8000}, {a, 4, "G723", 8000}, {a, 13, "CN", 8000},
		{v, 99, "H264", 90000}, {o, 111, "opus", 48000}, {a, 96, "", 0}, {a, 200, "", 0},
	}
	for _, c := range codecs {
		if n, k := c.m.Codec(c.pt); n != c.name || k != c.clock {
			t.Errorf("Codec(%d) = %q %d, want %q %d", c.pt, n, k, c.name, c.clock)
		}
	}
}

func TestParseTable(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(t *testing.T, s *Session)
		wantErr error
	}{
		{
			name: "hold with 0.0.0.0 and session sendonly",
			in:   "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\na=sendonly\nm=audio 4000 RTP/AVP 8\n",
			check: func(t *testing.T, s *Session) {
				m := &s.Media[0]
				if !m.Conn.IsValid() || !m.Conn.IsUnspecified() || m.Direction != SendOnly || s.Direction != SendOnly {
					t.Errorf("%+v", m)
				}
			},
		},
		{
			name: "IPv6 session, multicast ttl, LF only, trailing spaces",
			in:   "v=0\no=- 1 2 IN IP6 ::1\ns=x \nc=IN IP6 fe80::1:2:3\nm=audio 4000 RTP/AVP 0\nc=IN IP4 224.2.1.1/127/3\nm=audio 4002 RTP/AVP 0\n",
			check: func(t *testing.T, s *Session) {
				if s.Media[0].Conn != netip.MustParseAddr("224.2.1.1") || s.Media[1].Conn != netip.MustParseAddr("fe80::1:2:3") || s.Origin.Addr != netip.MustParseAddr("::1") {
					t.Errorf("%v %v %v", s.Media[0].Conn, s.Media[1].Conn, s.Origin.Addr)
				}
			},
		},
		{
			name: "FQDN c= is left invalid",
			in:   "v=0\nc=IN IP4 host.example.com\nm=audio 4000 RTP/AVP 0\n",
			check: func(t *testing.T, s *Session) {
				if s.Media[0].Conn.IsValid() {
					t.Errorf("%v", s.Media[0].Conn)
				}
			},
		},
		{
			name: "too many media and payloads are counted, not stored",
			in:   "v=0\n" + strings.Repeat("m=audio 1 RTP/AVP "+strings.Repeat("0 ", 40)+"\n", 10),
			check: func(t *testing.T, s *Session) {
				if s.NMedia != MaxMedia || s.MediaDropped != 2 || s.Media[0].NPayloads != MaxPayloads {
					t.Errorf("%d %d %d", s.NMedia, s.MediaDropped, s.Media[0].NPayloads)
				}
			},
		},
		{name: "not v=0", in: "o=- 1 2 IN IP4 1.2.3.4\n", wantErr: ErrVersion},
		{name: "empty", in: "\r\n", wantErr: ErrEmpty},
		{name: "garbage line", in: "v=0\nhello\n", wantErr: ErrLine},
		{name: "bad port", in: "v=0\nm=audio 70000 RTP/AVP 0\n", wantErr: ErrMedia},
		{name: "short m=", in: "v=0\nm=audio\n", wantErr: ErrMedia},
		{name: "short c=", in: "v=0\nc=IN IP4\n", wantErr: ErrConn},
		{name: "bad rtpmap", in: "v=0\nm=audio 1 RTP/AVP 0\na=rtpmap:0 PCMU\n", wantErr: ErrLine},
		{name: "short o=", in: "v=0\no=- 1\n", wantErr: ErrOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Session
			err := Parse(crlf(tt.in), &s)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && tt.check != nil {
				tt.check(t, &s)
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	good := []string{"0.0.0.0", "192.0.2.1", "255.255.255.255", "::", "::1", "2001:db8::1", "fe80::", "1:2:3:4:5:6:7:8",
		"::ffff:192.0.2.1", "2001:DB8:0:0:8:800:200C:417A", "1::8", "1:2:3:4:5:6:7::"}
	for _, s := range good {
		got, ok := parseAddr([]byte(s))
		if want := netip.MustParseAddr(s); !ok || got != want {
			t.Errorf("parseAddr(%q) = %v %v, want %v", s, got, ok, want)
		}
	}
	bad := []string{"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.1.1.1", "1..2.3", ":::", "1:2:3:4:5:6:7:8:9",
		"1::2::3", "12345::", "::g", "1:", ":1", "1:2:3:4:5:6:7:8::", "::1.2.3", "host.example.com", "1:2:3:4:5:6:7:1.2.3.4"}
	for _, s := range bad {
		if got, ok := parseAddr([]byte(s)); ok {
			_, err := netip.ParseAddr(s)
			t.Errorf("parseAddr(%q) = %v, want failure (netip: %v)", s, got, err)
		}
	}
}

func TestParseZeroAlloc(t *testing.T) {
	b := crlf(offer)
	var s Session
	testkit.NoAllocs(t, func() {
		if err := Parse(b, &s); err != nil {
			t.Fatal(err)
		}
		_, _ = s.Media[0].Codec(101)
		_, _ = s.Media[2].Codec(111)
	})
}

func BenchmarkSDP(b *testing.B) {
	in := crlf(offer)
	var s Session
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(in, &s); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzSDP: no panic; parsed values stay within their arrays; valid
// addresses agree with net/netip.
func FuzzSDP(f *testing.F) {
	f.Add(crlf(offer))
	f.Add([]byte("v=0\nc=IN IP6 ::ffff:1.2.3.4\nm=audio 1/2 RTP/AVP 0 96\na=rtpmap:96 x/1/2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Session
		if err := Parse(b, &s); err != nil {
			return
		}
		if s.NMedia > MaxMedia {
			t.Fatalf("NMedia %d", s.NMedia)
		}
		for i := 0; i < s.NMedia; i++ {
			m := &s.Media[i]
			if m.NPayloads > MaxPayloads || m.NRTPMap > MaxRTPMap {
				t.Fatalf("media %d: %d %d", i, m.NPayloads, m.NRTPMap)
			}
			for j := 0; j < m.NPayloads; j++ {
				_, _ = m.Codec(m.Payloads[j])
			}
		}
		// The address parser must agree with netip on what it accepts.
		if a, ok := parseAddr(b); ok {
			if want, err := netip.ParseAddr(string(b)); err != nil || want != a {
				t.Fatalf("parseAddr(%q) = %v, netip: %v %v", b, a, want, err)
			}
		}
	})
}
