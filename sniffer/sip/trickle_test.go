package sip

import (
	"strings"
	"testing"
)

// trickledHead is a 64 KiB head that never ends.
var trickledHead = []byte("INVITE sip:a@b SIP/2.0\r\n" + strings.Repeat("X-Pad: 0123456789012345678901234567890123456789\r\n", 1300))

// TestStreamTrickledHead: a head arriving a byte per TCP segment is
// scanned once, not again after every Write: a 64 KiB head (never ended)
// cost 1.58 s of CPU in 1-byte segments (387 ms in 10-byte ones), a
// sender's segments pinning the packet path; now about 3 ms
// (BenchmarkStreamTrickledHead). After every byte the scan stands at the
// end of the last complete line.
func TestStreamTrickledHead(t *testing.T) {
	head := trickledHead
	var s Stream
	lineEnd := 0
	for i := range head {
		s.Write(head[i : i+1])
		if _, err := s.Next(); err == nil {
			t.Fatal("a message framed from a head without its end")
		}
		if head[i] == '\n' {
			lineEnd = i + 1
		}
		at := s.headAt
		if s.start == 0 { // the start line is not complete yet: scanned up to here
			at = s.scanned - (i + 1) + lineEnd
		}
		if at != lineEnd {
			t.Fatalf("byte %d: the scan stands at %d, want %d (the end of the last complete line)", i, at, lineEnd)
		}
	}
}

func BenchmarkStreamTrickledHead(b *testing.B) {
	b.SetBytes(int64(len(trickledHead)))
	for b.Loop() {
		var s Stream
		for i := range trickledHead {
			s.Write(trickledHead[i : i+1])
			_, _ = s.Next()
		}
	}
}
