package sip

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"pbx-agent/internal/cputime"
)

// TestStreamTrickledHead: a head arriving a byte per TCP segment is
// scanned once, not again after every Write: a 64 KiB head (never ended)
// cost 1.58 s of CPU in 1-byte segments (387 ms in 10-byte ones), a
// sender's segments pinning the packet path; now about 3 ms.
func TestStreamTrickledHead(t *testing.T) {
	head := []byte("INVITE sip:a@b SIP/2.0\r\n" + strings.Repeat("X-Pad: 0123456789012345678901234567890123456789\r\n", 1300))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var s Stream
	start := cputime.Thread()
	for i := range head {
		s.Write(head[i : i+1])
		if _, err := s.Next(); err == nil {
			t.Fatal("a message framed from a head without its end")
		}
	}
	if cpu := cputime.Thread() - start; cpu > 300*time.Millisecond {
		t.Errorf("a %d-byte head in 1-byte segments took %v of CPU", len(head), cpu)
	}
}
