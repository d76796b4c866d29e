package rtp

import (
	"testing"
	"unsafe"
)

// TestStreamSize pins the per-stream memory (two per call), so growth is a
// conscious decision: a 10,000-call sniffer holds 20,000 Streams.
func TestStreamSize(t *testing.T) {
	const limit = 8 << 10
	if n := unsafe.Sizeof(Stream{}); n > limit {
		t.Errorf("Stream is %d bytes, limit %d", n, limit)
	} else {
		t.Logf("Stream is %d bytes", n)
	}
}
