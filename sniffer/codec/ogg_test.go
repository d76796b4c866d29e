package codec

import (
	"encoding/binary"
	"testing"
)

// The referee (ffmpeg) reads Opus and Speex from Ogg only: a minimal Ogg
// writer (RFC 3533, one packet per page) for the tests.

// oggCRC is Ogg's CRC-32: polynomial 0x04c11db7, not reflected, init 0.
var oggCRC = func() *[256]uint32 {
	var t [256]uint32
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return &t
}()

func oggChecksum(b []byte) uint32 {
	var c uint32
	for _, v := range b {
		c = c<<8 ^ oggCRC[byte(c>>24)^v]
	}
	return c
}

// oggPage appends one page holding packet p.
func oggPage(dst []byte, p []byte, flags byte, granule uint64, serial, seq uint32) []byte {
	start := len(dst)
	dst = append(dst, "OggS"...)
	dst = append(dst, 0, flags)
	dst = binary.LittleEndian.AppendUint64(dst, granule)
	dst = binary.LittleEndian.AppendUint32(dst, serial)
	dst = binary.LittleEndian.AppendUint32(dst, seq)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // CRC, filled below
	lacing := len(p)/255 + 1
	dst = append(dst, byte(lacing))
	for i := 0; i < lacing-1; i++ {
		dst = append(dst, 255)
	}
	dst = append(dst, byte(len(p)%255))
	dst = append(dst, p...)
	binary.LittleEndian.PutUint32(dst[start+22:], oggChecksum(dst[start:]))
	return dst
}

// oggStream writes the two header packets, then every payload on its own
// page with the granule position advancing by step per payload.
func oggStream(t testing.TB, head, tags []byte, payloads [][]byte, step uint64) []byte {
	t.Helper()
	const serial = 0x5042
	out := oggPage(nil, head, 0x02, 0, serial, 0)
	out = oggPage(out, tags, 0, 0, serial, 1)
	var g uint64
	for i, p := range payloads {
		if len(p) > 255*254 {
			t.Fatalf("payload %d of %d bytes does not fit one page", i, len(p))
		}
		g += step
		flags := byte(0)
		if i == len(payloads)-1 {
			flags = 0x04
		}
		out = oggPage(out, p, flags, g, serial, uint32(i+2))
	}
	return out
}

// opusOgg is an Ogg Opus file (RFC 7845), mono, pre-skip 0, of 20 ms
// payloads.
func opusOgg(t testing.TB, payloads [][]byte) []byte {
	head := []byte("OpusHead")
	head = append(head, 1, 1) // version, channels
	head = binary.LittleEndian.AppendUint16(head, 0)
	head = binary.LittleEndian.AppendUint32(head, 48000)
	head = append(head, 0, 0, 0) // gain, mapping family 0
	tags := append([]byte("OpusTags"), 4, 0, 0, 0, 't', 'e', 's', 't', 0, 0, 0, 0)
	return oggStream(t, head, tags, payloads, 960)
}

// speexOgg is an Ogg Speex file (the 80-byte Speex header), one frame per
// payload at rate 8000 (narrowband) or 16000 (wideband).
func speexOgg(t testing.TB, payloads [][]byte, rate int) []byte {
	mode, frame := 0, 160
	if rate == 16000 {
		mode, frame = 1, 320
	}
	head := make([]byte, 0, 80)
	head = append(head, "Speex   "...)
	head = append(head, make([]byte, 20)...) // version string
	copy(head[8:], "1.2.1")
	for _, v := range []int32{1, 80, int32(rate), int32(mode), 4, 1, -1, int32(frame), 0, 1, 0, 0, 0} {
		head = binary.LittleEndian.AppendUint32(head, uint32(v))
	}
	tags := []byte{4, 0, 0, 0, 't', 'e', 's', 't', 0, 0, 0, 0}
	return oggStream(t, head, tags, payloads, uint64(frame))
}
