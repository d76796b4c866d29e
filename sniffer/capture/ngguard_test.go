package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// ngFile is a pcapng section (byte order bo) with one Ethernet interface
// (snap length snap) and the given blocks after it.
func ngFile(bo binary.ByteOrder, snap uint32, blocks ...[]uint32) []byte {
	var b bytes.Buffer
	w := func(vs ...uint32) {
		for _, v := range vs {
			_ = binary.Write(&b, bo, v)
		}
	}
	w(0x0a0d0d0a, 28, 0x1a2b3c4d, 1, 0xffffffff, 0xffffffff, 28) // version 1.0, section length -1
	w(1, 20, 1, snap, 20)                                        // link type 1, reserved 0
	for _, bl := range blocks {
		w(bl...)
	}
	return b.Bytes()
}

// TestPcapngClaimedLength: a packet block claiming more bytes than it has
// (or than any frame) is refused before the pcapng reader allocates them:
// an 84-byte file made it allocate 4 GiB (HeapAlloc 4,096 MB), kept as
// its packet buffer. Blocks that hold what they claim read as before.
func TestPcapngClaimedLength(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"EPB claims 4 GiB", ngFile(binary.LittleEndian, 0, []uint32{6, 36, 0, 0, 0, 0xfffffff0, 0xfffffff0, 0, 36}), ErrFormat},
		{"EPB claims 4 GiB, big-endian", ngFile(binary.BigEndian, 0, []uint32{6, 36, 0, 0, 0, 0xfffffff0, 0xfffffff0, 0, 36}), ErrFormat},
		{"EPB claims more than its block", ngFile(binary.LittleEndian, 0, []uint32{6, 36, 0, 0, 0, 8, 8, 0, 36}), ErrFormat},
		{"PB claims 4 GiB", ngFile(binary.LittleEndian, 0, []uint32{2, 36, 0, 0, 0, 0xfffffff0, 0xfffffff0, 0, 36}), ErrFormat},
		{"SPB claims 4 GiB, no snap length", ngFile(binary.LittleEndian, 0, []uint32{3, 20, 0xfffffff0, 0, 20}), ErrFormat},
		{"block shorter than its header", ngFile(binary.LittleEndian, 0, []uint32{6, 8, 0, 0, 0, 0, 0}), ErrFormat},
		{"EPB of 4 bytes", ngFile(binary.LittleEndian, 0, []uint32{6, 36, 0, 0, 0, 4, 4, 0xdeadbeef, 36}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			src, err := NewReader(bytes.NewReader(tc.in))
			if err == nil {
				_, _, err = src.ReadPacket()
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
				t.Errorf("reading it allocated %d MB", grown>>20)
			}
		})
	}
}

// TestPcapngGuardSameFrames: a pcapng file written by pcapgo (options,
// several interfaces' blocks, statistics) reads the same frames through
// the guard, whatever the sizes of the reads beneath it.
func TestPcapngGuardSameFrames(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := range 200 {
		frame := bytes.Repeat([]byte{byte(i)}, 14+i*7)
		want = append(want, frame)
		if err := w.WritePacket(gopacket.CaptureInfo{CaptureLength: len(frame), Length: len(frame) + i%3}, frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 3, 7, 4096} {
		g := &ngGuard{r: &chunked{b: buf.Bytes(), n: chunk}}
		ng, err := pcapgo.NewNgReader(g, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range want {
			got, _, err := ng.ReadPacketData()
			if err != nil || !bytes.Equal(got, f) {
				t.Fatalf("reads of %d: frame %d: %v", chunk, i, err)
			}
		}
	}
}

// chunked reads b n bytes at a time.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}
