package sniffer

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

// refWSFlow is wsFlow as it was before it searched the handshake once and
// took frames at an offset: the reference the tests below compare with.
type refWSFlow struct {
	state   wsState
	buf     []byte // unparsed bytes
	msg     []byte // payload of a fragmented message being assembled
	payload []byte // unmasked payload scratch
}

// feed consumes TCP payload bytes and calls deliver for every complete SIP
// message carried in data frames. A malformed or oversized frame resets the
// flow's buffer (the next frame boundary is unknowable, so bytes are lost).
func (w *refWSFlow) feed(data []byte, deliver func([]byte)) {
	if w.state == wsDropped {
		return
	}
	if len(w.buf)+len(data) > maxWSBuffer {
		w.buf, w.msg = w.buf[:0], w.msg[:0]
		return
	}
	w.buf = append(w.buf, data...)
	if w.state == wsHandshake {
		i := bytes.Index(w.buf, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		w.buf = w.buf[:copy(w.buf, w.buf[i+4:])]
		w.state = wsFrames
	}
	for {
		n, ok := w.frame(deliver)
		if !ok {
			return
		}
		w.buf = w.buf[:copy(w.buf, w.buf[n:])]
	}
}

// frame parses one frame at the start of buf; ok is false when incomplete.
func (w *refWSFlow) frame(deliver func([]byte)) (int, bool) {
	b := w.buf
	if len(b) < 2 {
		return 0, false
	}
	fin, op := b[0]&0x80 != 0, b[0]&0x0f
	masked := b[1]&0x80 != 0
	n, hdr := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, false
		}
		n, hdr = uint64(binary.BigEndian.Uint16(b[2:4])), 4
	case 127:
		if len(b) < 10 {
			return 0, false
		}
		n, hdr = binary.BigEndian.Uint64(b[2:10]), 10
	}
	var key []byte
	if masked {
		if len(b) < hdr+4 {
			return 0, false
		}
		key = b[hdr : hdr+4]
		hdr += 4
	}
	if n > maxWSBuffer {
		w.buf, w.msg = w.buf[:0], w.msg[:0]
		return 0, false
	}
	if uint64(len(b)-hdr) < n {
		return 0, false
	}
	w.payload = append(w.payload[:0], b[hdr:hdr+int(n)]...)
	for i := range w.payload {
		if masked {
			w.payload[i] ^= key[i&3]
		}
	}
	switch op {
	case 0x1, 0x2: // text, binary
		if fin {
			deliver(w.payload)
		} else {
			w.msg = append(w.msg[:0], w.payload...)
		}
	case 0x0: // continuation
		if len(w.msg)+len(w.payload) > maxWSMessage {
			w.drop()
			return 0, false
		}
		w.msg = append(w.msg, w.payload...)
		if fin {
			deliver(w.msg)
			w.msg = w.msg[:0]
		}
	}
	return hdr + int(n), true
}

// drop gives up on the flow: buffers are released and later bytes ignored.
func (w *refWSFlow) drop() {
	w.state, w.buf, w.msg, w.payload = wsDropped, nil, nil, nil
}

// wsBoth feeds in, seg bytes at a time, to a wsFlow and a refWSFlow
// starting in state st, and returns what each delivered.
func wsBoth(in []byte, seg int, st wsState) (got, want []string) {
	w, r := wsFlow{state: st}, refWSFlow{state: st}
	for i := 0; i < len(in); i += seg {
		part := in[i:min(i+seg, len(in))]
		w.feed(part, func(m []byte) { got = append(got, string(m)) })
		r.feed(part, func(m []byte) { want = append(want, string(m)) })
	}
	if w.dropped() != (r.state == wsDropped) {
		got = append(got, "dropped mismatch")
	}
	return got, want
}

// TestWebSocketCost: 64 KB of 2-byte ping frames moved the rest of the
// buffer down after each (1 GB per 64 KB segment: 9.7 ms), a handshake in
// 1-byte segments was searched from its start each time (60 KB: 189 ms);
// both are linear now (BenchmarkWebSocketCost: 40 such segments and the
// handshake took about 600 ms of CPU before, 3 ms now). After every byte
// of the handshake the search stands at its end; what is delivered is as
// before, in every segmentation (here and FuzzWebSocketSameAsBefore).
func TestWebSocketCost(t *testing.T) {
	hs := []byte("GET / HTTP/1.1\r\n" + string(bytes.Repeat([]byte("X: y\r\n"), 10000)))
	w := wsFlow{state: wsHandshake}
	for i := range hs {
		w.feed(hs[i:i+1], func([]byte) {})
		if w.scanned != i+1 {
			t.Fatalf("byte %d of the handshake: searched up to %d, want %d", i, w.scanned, i+1)
		}
	}
	frame := func(op byte, payload string) []byte {
		b := []byte{0x80 | op, 0x80 | byte(len(payload)), 1, 2, 3, 4}
		for i := range len(payload) {
			b = append(b, payload[i]^b[2+i&3])
		}
		return b
	}
	in := []byte("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
	for i := range 50 {
		in = append(in, 0x89, 0x00)
		in = append(in, frame(1, "OPTIONS sip:x SIP/2.0\r\nCSeq: "+string(rune('0'+i%10))+" OPTIONS\r\n\r\n")...)
		in = append(in, []byte{0x01, 0x83, 0, 0, 0, 0, 'a', 'b', 'c', 0x80, 0x81, 0, 0, 0, 0, 'd'}...)
	}
	big := binary.BigEndian.AppendUint16([]byte{0x81, 126}, 70000&0xffff)
	for _, seg := range []int{1, 2, 3, 5, 64, 1000, len(in)} {
		got, want := wsBoth(in, seg, wsHandshake)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%d-byte segments: got %d messages, want %d (%v)", seg, len(got), len(want), slices.Equal(got, want))
		}
		if got, want := wsBoth(append(slices.Clone(in[:200]), big...), seg, wsHandshake); !slices.Equal(got, want) {
			t.Errorf("%d-byte segments, a frame past the limit: got %q, want %q", seg, got, want)
		}
	}
}

// FuzzWebSocketSameAsBefore: any bytes, in any segmentation, deliver what
// refWSFlow delivered.
func FuzzWebSocketSameAsBefore(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n\x81\x85\x01\x02\x03\x04abcde\x89\x00"), uint8(3), true)
	f.Add([]byte("\x01\x83\x00\x00\x00\x00abc\x80\x81\x00\x00\x00\x00d"), uint8(0), false)
	f.Fuzz(func(t *testing.T, in []byte, seg uint8, handshake bool) {
		st := wsFrames
		if handshake {
			st = wsHandshake
		}
		if got, want := wsBoth(in, int(seg)+1, st); !slices.Equal(got, want) {
			t.Fatalf("%d-byte segments: got %q, want %q", int(seg)+1, got, want)
		}
	})
}

func BenchmarkWebSocketCost(b *testing.B) {
	pings := bytes.Repeat([]byte{0x89, 0x00}, 32000)
	hs := []byte("GET / HTTP/1.1\r\n" + string(bytes.Repeat([]byte("X: y\r\n"), 10000)))
	for b.Loop() {
		w := wsFlow{state: wsFrames}
		for range 40 {
			w.feed(pings, func([]byte) {})
		}
		w = wsFlow{state: wsHandshake}
		for i := range hs {
			w.feed(hs[i:i+1], func([]byte) {})
		}
	}
}
