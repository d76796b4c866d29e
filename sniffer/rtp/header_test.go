package rtp

import (
	"encoding/binary"
	"errors"
	"testing"
)

// rtpPacket builds an RTP packet for tests.
func rtpPacket(pt uint8, seq uint16, ts, ssrc uint32, marker bool, payload []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(payload))
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	return append(b, payload...)
}

func TestHeaderUnmarshal(t *testing.T) {
	base := rtpPacket(8, 1000, 160, 0xdeadbeef, true, []byte{1, 2, 3, 4})
	withCSRC := append([]byte{0x82, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 10, 0, 0, 0, 11}, 9, 9)
	withExt := []byte{0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 7}
	withPad := []byte{0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 5, 6, 0, 0, 3}
	tests := []struct {
		name        string
		in          []byte
		wantN       int
		wantPayload int
		check       func(t *testing.T, h *Header)
		wantErr     error
	}{
		{name: "plain", in: base, wantN: 12, wantPayload: 4, check: func(t *testing.T, h *Header) {
			if h.PayloadType != 8 || h.SequenceNumber != 1000 || h.Timestamp != 160 || h.SSRC != 0xdeadbeef || !h.Marker {
				t.Errorf("header = %+v", h)
			}
		}},
		{name: "csrc", in: withCSRC, wantN: 20, wantPayload: 2, check: func(t *testing.T, h *Header) {
			if h.CSRCCount != 2 || h.CSRC[0] != 10 || h.CSRC[1] != 11 {
				t.Errorf("csrc = %d %v", h.CSRCCount, h.CSRC[:2])
			}
		}},
		{name: "extension", in: withExt, wantN: 20, wantPayload: 1, check: func(t *testing.T, h *Header) {
			if h.ExtensionProfile != 0xbede || len(h.ExtensionPayload) != 4 || h.ExtensionPayload[0] != 0xaa {
				t.Errorf("ext = %x %x", h.ExtensionProfile, h.ExtensionPayload)
			}
		}},
		{name: "padding", in: withPad, wantN: 12, wantPayload: 2},
		{name: "short", in: base[:11], wantErr: ErrShortPacket},
		{name: "version 1", in: append([]byte{0x40}, base[1:]...), wantErr: ErrBadVersion},
		{name: "csrc truncated", in: withCSRC[:16], wantErr: ErrShortPacket},
		{name: "extension truncated", in: withExt[:18], wantErr: ErrShortPacket},
		{name: "padding zero", in: []byte{0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 5, 0}, wantErr: ErrBadPadding},
		{name: "padding too large", in: []byte{0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 5, 9}, wantErr: ErrBadPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Header
			n, err := h.Unmarshal(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if n != tt.wantN {
				t.Errorf("n = %d, want %d", n, tt.wantN)
			}
			if got := len(h.Payload(tt.in, n)); got != tt.wantPayload {
				t.Errorf("payload len = %d, want %d", got, tt.wantPayload)
			}
			if tt.check != nil {
				tt.check(t, &h)
			}
		})
	}
}

func TestLooksLike(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		rtp, rtcp bool
	}{
		{"rtp pcmu", rtpPacket(0, 1, 2, 3, false, nil), true, false},
		{"rtp dynamic", rtpPacket(101, 1, 2, 3, true, nil), true, false},
		{"rtcp sr", []byte{0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0}, false, true},
		{"rtcp rr", []byte{0x81, 201, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0}, false, true},
		{"stun", []byte{0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LooksLikeRTP(tt.in); got != tt.rtp {
				t.Errorf("LooksLikeRTP = %v", got)
			}
			if got := LooksLikeRTCP(tt.in); got != tt.rtcp {
				t.Errorf("LooksLikeRTCP = %v", got)
			}
		})
	}
}

func FuzzHeaderUnmarshal(f *testing.F) {
	f.Add(rtpPacket(8, 1, 160, 42, false, []byte{0xd5, 0xd5}))
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 7})
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 5, 6, 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		n, err := h.Unmarshal(b)
		if err != nil {
			return
		}
		if n < HeaderSize || n > len(b) {
			t.Fatalf("n = %d for %d bytes", n, len(b))
		}
		p := h.Payload(b, n)
		if len(p) > len(b)-n {
			t.Fatalf("payload %d > %d", len(p), len(b)-n)
		}
		var ev Event
		_ = ev.Unmarshal(p)
	})
}

func TestHeaderUnmarshalAllocs(t *testing.T) {
	b := []byte{0x92, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 10, 0, 0, 0, 11, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 9}
	var h Header
	if a := testing.AllocsPerRun(100, func() { _, _ = h.Unmarshal(b) }); a != 0 {
		t.Errorf("Unmarshal allocates %v per run", a)
	}
}

func BenchmarkHeaderUnmarshal(b *testing.B) {
	pkt := rtpPacket(8, 1, 160, 42, false, make([]byte, 160))
	var h Header
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if _, err := h.Unmarshal(pkt); err != nil {
			b.Fatal(err)
		}
	}
}
