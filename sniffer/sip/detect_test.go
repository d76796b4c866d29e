package sip

import "testing"

func TestLooksLikeMessage(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"INVITE sip:bob@biloxi.com SIP/2.0\r\nVia: x\r\n\r\n", true},
		{"REGISTER sips:ss2.biloxi.example.com SIP/2.0\r\n", true},
		{"INVITE tel:+12125551212 SIP/2.0\n", true},
		{"OPTIONS SIP:host SIP/2.0\r\n", true},
		{"SIP/2.0 200 OK\r\nVia: x\r\n", true},
		{"SIP/2.0 100 \r\n", true},
		{"SIP/2.0 180\r\n", true},
		{"SIP/2.0 20 OK\r\n", false},
		{"SIP/3.0 200 OK\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\n", false},
		{"HTTP/1.1 200 OK\r\n", false},
		{"INVITE sip:bob@biloxi.com SIP/2.0", false},    // no end of line yet
		{"INVITE http://bob@biloxi SIP/2.0\r\n", false}, // not a SIP URI
		{"INVITE sip:bob@biloxi.com HTTP/1.1\r\n", false},
		{"invite sip:bob@biloxi.com SIP/2.0\r\n", false},
		{"\x80\x00\x12\x34\x00\x00\x00\xa0\x11\x22\x33\x44 rtp", false},
		{"\r\n\r\n", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := LooksLikeMessage([]byte(tt.in)); got != tt.want {
			t.Errorf("LooksLikeMessage(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzLooksLikeMessage: never panics, and whatever it accepts has a SIP
// start line that the stream framer recognises too.
func FuzzLooksLikeMessage(f *testing.F) {
	f.Add([]byte("INVITE sip:bob@biloxi.com SIP/2.0\r\n"))
	f.Add([]byte("SIP/2.0 486 Busy Here\r\n"))
	f.Add([]byte("\x80\x08\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !LooksLikeMessage(b) {
			return
		}
		nl := 0
		for nl < len(b) && b[nl] != '\n' {
			nl++
		}
		if nl == len(b) && b[0] != 'S' {
			t.Fatalf("accepted a request without an end of line: %q", b)
		}
		if nl < len(b) && !isStartLine(b[:nl+1]) {
			t.Fatalf("accepted %q, which the framer's start-line test refuses", b[:nl+1])
		}
	})
}

func BenchmarkLooksLikeMessage(b *testing.B) {
	rtp := []byte("\x80\x00\x12\x34\x00\x00\x00\xa0\x11\x22\x33\x44" + string(make([]byte, 160)))
	inv := []byte("INVITE sip:bob@biloxi.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.atlanta.com\r\n\r\n")
	b.Run("rtp", func(b *testing.B) {
		for b.Loop() {
			if LooksLikeMessage(rtp) {
				b.Fatal("rtp taken for SIP")
			}
		}
	})
	b.Run("invite", func(b *testing.B) {
		for b.Loop() {
			if !LooksLikeMessage(inv) {
				b.Fatal("INVITE missed")
			}
		}
	})
}
