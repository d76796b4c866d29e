package webui

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

// TestMergeRefusesClaimedLength: a pcapng file in the spool whose packet
// block claims 4 GiB (84 bytes in all) is a bad capture for the pcap
// download and the SIP history, not a 4 GiB allocation: the web side reads
// captures through the sniffer's reader and its checks.
func TestMergeRefusesClaimedLength(t *testing.T) {
	var b bytes.Buffer
	w := func(vs ...uint32) {
		for _, v := range vs {
			_ = binary.Write(&b, binary.LittleEndian, v)
		}
	}
	w(0x0a0d0d0a, 28, 0x1a2b3c4d, 1, 0xffffffff, 0xffffffff, 28) // section header
	w(1, 20, 1, 0, 20)                                           // interface: Ethernet
	w(6, 36, 0, 0, 0, 0xfffffff0, 0xfffffff0, 0, 36)             // packet block claiming 4 GiB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	readers, _, err := prepareMerge([]io.ReadCloser{io.NopCloser(bytes.NewReader(b.Bytes()))})
	if err == nil {
		m := merger{readers: readers}
		_, _, err = m.next()
	}
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrBadCapture) {
		t.Errorf("err = %v, want ErrBadCapture", err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Errorf("reading it allocated %d MB", grown>>20)
	}
	if _, err := readSIPEvents(bytes.NewReader(b.Bytes()), 10); !errors.Is(err, ErrBadCapture) {
		t.Errorf("SIP history: err = %v, want ErrBadCapture", err)
	}
}
