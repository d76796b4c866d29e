package sip

import (
	"errors"
	"strings"
	"testing"

	"pbx-agent/internal/testkit"
)

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

const invite = `INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
User-Agent: baresip v2.0
Content-Type: application/sdp
Content-Length: 149

v=0
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com
s=-
c=IN IP4 192.0.2.101
t=0 0
m=audio 49172 RTP/AVP 0
a=rtpmap:0 PCMU/8000
`

func TestParseFields(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string // header name -> Header() value
		check   func(t *testing.T, m *Message)
		wantErr error
	}{
		{
			name: "invite",
			in:   invite,
			want: map[string]string{"max-forwards": "70", "User-Agent": "baresip v2.0", "v": "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"},
			check: func(t *testing.T, m *Message) {
				if !m.Request || string(m.Method) != "INVITE" || m.CSeq != 314159 || string(m.FromTag) != "1928301774" || m.ToTag != nil {
					t.Errorf("fields: %+v", m)
				}
				if m.ContentLength != 149 || len(m.Body) != 149 || string(m.UserAgent()) != "baresip v2.0" {
					t.Errorf("body %d/%d ua %q", m.ContentLength, len(m.Body), m.UserAgent())
				}
			},
		},
		{
			name: "compact forms",
			in: `BYE sip:a@b SIP/2.0
v: SIP/2.0/UDP h;branch=z9hG4bKx
f: <sip:a@b>;tag=1
t: <sip:c@d>;tag=2
i: abc@h
m: <sip:a@h>
CSeq: 2 BYE
k: timer
s: hello
o: refer
r: <sip:x@y>
u: talk
e: gzip
c: text/plain
l: 3

abc`,
			want: map[string]string{"Via": "SIP/2.0/UDP h;branch=z9hG4bKx", "Contact": "<sip:a@h>", "call-id": "abc@h",
				"Supported": "timer", "Subject": "hello", "Event": "refer", "Refer-To": "<sip:x@y>", "Allow-Events": "talk",
				"Content-Encoding": "gzip", "Content-Type": "text/plain", "Content-Length": "3", "f": "<sip:a@b>;tag=1", "Missing": ""},
			check: func(t *testing.T, m *Message) {
				if string(m.CallID) != "abc@h" || string(m.ToTag) != "2" || string(m.Body) != "abc" || string(m.ContentType) != "text/plain" {
					t.Errorf("fields: %+v", m)
				}
			},
		},
		{
			name: "folded lines",
			in: `SIP/2.0 180 Ringing
Via: SIP/2.0/UDP h;branch=z9hG4bKx
To:
 <sip:c@d>
   ;tag=99
From: <sip:a@b>
	;tag=1
Call-ID: x1
CSeq: 7
 INVITE
Subject: one
  two
Content-Length: 0

`,
			want: map[string]string{"To": "<sip:c@d>\r\n   ;tag=99", "subject": "one\r\n  two"},
			check: func(t *testing.T, m *Message) {
				if m.Request || m.StatusCode != 180 || string(m.Reason) != "Ringing" || string(m.Method) != "INVITE" || m.CSeq != 7 {
					t.Errorf("start: %+v", m)
				}
				if string(m.ToTag) != "99" || string(m.FromTag) != "1" {
					t.Errorf("tags %q %q", m.ToTag, m.FromTag)
				}
			},
		},
		{
			name: "no content-length over UDP: body is the rest",
			in:   "OPTIONS sip:a@b SIP/2.0\nf: <sip:a@b>;tag=1\nt: <sip:a@b>\ni: x\nCSeq: 1 OPTIONS\n\nhello",
			check: func(t *testing.T, m *Message) {
				if m.ContentLength != -1 || string(m.Body) != "hello" {
					t.Errorf("cl %d body %q", m.ContentLength, m.Body)
				}
			},
		},
		{name: "status line only, keep-alive before", in: "\r\n\r\nSIP/2.0 200 OK\n", wantErr: ErrMissingHeader},
		{name: "no empty line, partial last line", in: "SIP/2.0 200 OK\ni: x\nCSeq: 1", wantErr: ErrNoHeaderEnd},
		{name: "missing Call-ID", in: "OPTIONS sip:a@b SIP/2.0\nf: <sip:a@b>;tag=1\nt: <sip:a@b>\nCSeq: 1 OPTIONS\n\n", wantErr: ErrMissingHeader},
		{name: "bad status", in: "SIP/2.0 99 Low\ni: x\n\n", wantErr: ErrStatusCode},
		{name: "status 700", in: "SIP/2.0 700 High\ni: x\n\n", wantErr: ErrStatusCode},
		{name: "header without colon", in: "OPTIONS sip:a@b SIP/2.0\nnocolon\n\n", wantErr: ErrHeader},
		{name: "continuation first", in: "OPTIONS sip:a@b SIP/2.0\n cont\n\n", wantErr: ErrHeader},
		{name: "empty", in: "\r\n\r\n", wantErr: ErrEmpty},
		{name: "body truncated", in: "OPTIONS sip:a@b SIP/2.0\nf: <sip:a@b>;tag=1\nt: <sip:a@b>\ni: x\nCSeq: 1 OPTIONS\nl: 10\n\nabc", wantErr: ErrBodyTruncated},
		{name: "bad via", in: "OPTIONS sip:a@b SIP/2.0\nv: SIP/2.0 host\nf: <sip:a@b>;tag=1\nt: <sip:a@b>\ni: x\nCSeq: 1 OPTIONS\n\n", wantErr: ErrVia},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			b := crlf(tt.in)
			n, err := Parse(b, &m)
			if testkit.WantErr(t, err, tt.wantErr) {
				return
			}
			if n != len(b) {
				t.Errorf("n = %d, want %d", n, len(b))
			}
			for k, v := range tt.want {
				if got := m.Header(k); string(got) != v {
					t.Errorf("Header(%q) = %q, want %q", k, got, v)
				}
			}
			if tt.check != nil {
				tt.check(t, &m)
			}
		})
	}
}

func TestParseBareLF(t *testing.T) {
	b := []byte("\r\nACK sip:a@b SIP/2.0\nf: <sip:a@b>;tag=1\nt: <sip:a@b>;tag=2\ni: lf\nCSeq: 1 ACK\nl: 2\n\nokTRAILING")
	var m Message
	n, err := Parse(b, &m)
	if err != nil || string(m.Body) != "ok" || n != len(b)-len("TRAILING") || string(m.Raw()) != string(b[2:n]) {
		t.Fatalf("n=%d err=%v body=%q", n, err, m.Body)
	}
}

func TestHeadersCommaJoined(t *testing.T) {
	in := crlf(`SIP/2.0 200 OK
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com;branch=z9hG4bK2
v: SIP/2.0/UDP c.example.com;branch=z9hG4bK3
Contact: "Smith, John" <sip:j@h1>;expires=60, <sip:j@h2;x=a,b>
Record-Route: <sip:p1;lr>,<sip:p2;lr>
Allow: INVITE, ACK,BYE
WWW-Authenticate: Digest realm="x", nonce="y"
X-Custom: a, b
X-Custom: c
f: <sip:a@b>;tag=1
t: <sip:a@b>
i: x
CSeq: 1 REGISTER
l: 0

`)
	var m Message
	if _, err := Parse(in, &m); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want []string
	}{
		{"Via", []string{"SIP/2.0/UDP a.example.com;branch=z9hG4bK1", "SIP/2.0/TCP b.example.com;branch=z9hG4bK2", "SIP/2.0/UDP c.example.com;branch=z9hG4bK3"}},
		{"m", []string{`"Smith, John" <sip:j@h1>;expires=60`, "<sip:j@h2;x=a,b>"}},
		{"record-route", []string{"<sip:p1;lr>", "<sip:p2;lr>"}},
		{"Allow", []string{"INVITE", "ACK", "BYE"}},
		{"WWW-Authenticate", []string{`Digest realm="x", nonce="y"`}},
		{"x-custom", []string{"a, b", "c"}},
		{"Nope", nil},
	}
	for _, tt := range tests {
		var got []string
		m.Headers(tt.name, func(v []byte) bool { got = append(got, string(v)); return true })
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Headers(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	n := 0
	m.Headers("Via", func([]byte) bool { n++; return false })
	if n != 1 {
		t.Errorf("stop after first: %d calls", n)
	}
}

func TestParseNameAddr(t *testing.T) {
	tests := []struct {
		name, in                  string
		display, uri, params, tag string
		wantErr                   error
	}{
		{name: "quoted", in: `"Alice A." <sip:alice@a.example>;tag=x1`, display: "Alice A.", uri: "sip:alice@a.example", params: ";tag=x1", tag: "x1"},
		{name: "token display", in: `Bob <sips:bob@b:5061>`, display: "Bob", uri: "sips:bob@b:5061"},
		{name: "no LWS", in: `caller<sip:c@e>;tag=3`, display: "caller", uri: "sip:c@e", params: ";tag=3", tag: "3"},
		{name: "addr-spec", in: `sip:a@b;tag=x;user=phone`, uri: "sip:a@b", params: ";tag=x;user=phone", tag: "x"},
		{name: "lws params", in: "sip:a@b ;  tag  = 7 ", uri: "sip:a@b", params: ";  tag  = 7", tag: "7"},
		{name: "escaped quote", in: `"J \"R\"" <tel:+1555>`, display: `J \"R\"`, uri: "tel:+1555"},
		{name: "unterminated", in: `"Mr. J <sip:j@e>`, wantErr: ErrQuote},
		{name: "comma display", in: `Bell, A <sip:a@b>`, wantErr: ErrNameAddr},
		{name: "spaces in <>", in: `< sip:a@b >`, wantErr: ErrURI},
		{name: "addr-spec with headers", in: `sip:a@b?Route=x`, wantErr: ErrNameAddr},
		{name: "empty param", in: `<sip:a@b>;;`, wantErr: ErrParam},
		{name: "no scheme", in: `<a@b>`, wantErr: ErrURI},
		{name: "no >", in: `<sip:a@b`, wantErr: ErrNameAddr},
		{name: "empty", in: ` `, wantErr: ErrNameAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, u, p, err := ParseNameAddr([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if string(d) != tt.display || string(u) != tt.uri || string(p) != tt.params || string(Param(p, "TAG")) != tt.tag {
				t.Errorf("got %q %q %q tag %q", d, u, p, Param(p, "tag"))
			}
		})
	}
}

func TestParam(t *testing.T) {
	p := []byte(`;tag=abc; expires = 3600 ;lr;+sip.instance="<urn:uuid:1;2>";q=0.5`)
	tests := []struct {
		name string
		want string
		nil_ bool
	}{
		{"tag", "abc", false}, {"EXPIRES", "3600", false}, {"lr", "", false},
		{"+sip.instance", `"<urn:uuid:1;2>"`, false}, {"q", "0.5", false}, {"missing", "", true},
	}
	for _, tt := range tests {
		got := Param(p, tt.name)
		if string(got) != tt.want || (got == nil) != tt.nil_ {
			t.Errorf("Param(%q) = %q (nil %v)", tt.name, got, got == nil)
		}
	}
}

func TestParseURI(t *testing.T) {
	tests := []struct {
		in                 string
		scheme, user, host string
		port               uint16
		wantErr            bool
	}{
		{in: "sip:alice@atlanta.example.com", scheme: "sip", user: "alice", host: "atlanta.example.com"},
		{in: "sips:bob:secret@192.0.2.4:5061;transport=tls", scheme: "sips", user: "bob", host: "192.0.2.4", port: 5061},
		{in: "sip:[2001:db8::1]:5070;lr", scheme: "sip", host: "2001:db8::1", port: 5070},
		{in: "sip:+15551234@gw?Subject=x", scheme: "sip", user: "+15551234", host: "gw"},
		{in: "sip:user;par=u%40example.net@example.com", scheme: "sip", user: "user;par=u%40example.net", host: "example.com"},
		{in: "sip:example.com", scheme: "sip", host: "example.com"},
		{in: "tel:+1-201-555-0123;phone-context=x", scheme: "tel", user: "+1-201-555-0123"},
		{in: "sip:a@b:99999", wantErr: true},
		{in: "sip:a@", wantErr: true},
		{in: "nocolon", wantErr: true},
		{in: "sip:[::1", wantErr: true},
		{in: "tel:", wantErr: true},
	}
	for _, tt := range tests {
		s, u, h, p, err := ParseURI([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if err == nil && (string(s) != tt.scheme || string(u) != tt.user || string(h) != tt.host || p != tt.port) {
			t.Errorf("%q: got %q %q %q %d", tt.in, s, u, h, p)
		}
	}
}

func TestSDPBody(t *testing.T) {
	sdp := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	mixed := "--b1\r\nContent-Type: application/sdp\r\n\r\n" + sdp + "\r\n--b1\r\nContent-Type: application/isup; version=itu-t92+\r\n\r\nxyz\r\n--b1--\r\n"
	nested := "--outer\r\nContent-Type: text/plain\r\n\r\nhi\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"in ner\"\r\n\r\n--in ner\r\ncontent-type: APPLICATION/SDP\r\n\r\n" + sdp + "\r\n--in ner--\r\n\r\n--outer--"
	tests := []struct {
		name, ct, body, want string
	}{
		{"sdp", "application/sdp", sdp, sdp},
		{"sdp params", "Application/SDP ; charset=x", sdp, sdp},
		{"mixed", "multipart/mixed;boundary=b1", mixed, sdp},
		{"nested", `multipart/mixed; boundary=outer`, nested, sdp},
		{"no sdp part", "multipart/mixed;boundary=b1", "--b1\r\nContent-Type: text/plain\r\n\r\nx\r\n--b1--", ""},
		{"no boundary", "multipart/mixed", mixed, ""},
		{"other", "text/plain", sdp, ""},
		{"absent type, looks like SDP", "", sdp, sdp},
	}
	for _, tt := range tests {
		m := Message{Body: []byte(tt.body)}
		if tt.ct != "" {
			m.ContentType = []byte(tt.ct)
		}
		if got := SDPBody(&m); string(got) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestParseErrorOffset(t *testing.T) {
	var m Message
	_, err := Parse(crlf("\nINVITE <sip:a@b> SIP/2.0\n\n"), &m)
	var pe *ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrRequestURI) || pe.Offset != 2+7 {
		t.Fatalf("err = %#v", err)
	}
}

func TestParseZeroAlloc(t *testing.T) {
	b := crlf(invite)
	var m Message
	testkit.NoAllocs(t, func() {
		if _, err := Parse(b, &m); err != nil {
			t.Fatal(err)
		}
		_ = m.Header("Max-Forwards")
		_ = m.UserAgent()
		m.Headers("Via", func([]byte) bool { return true })
		_ = SDPBody(&m)
		_, _, p, _ := ParseNameAddr(m.From)
		_ = Param(p, "tag")
		_, _, _, _, _ = ParseURI(m.RequestURI)
	})
}

func BenchmarkParseInvite(b *testing.B) {
	msg := crlf(invite)
	var m Message
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(msg, &m); err != nil {
			b.Fatal(err)
		}
	}
}
