package player

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"pbx-agent/sniffer/audio"
)

// The websocket's binary messages: one 20 ms frame each, a 20-byte header
// then the PCM (all little-endian).
//
//	offset size field
//	0      1    version (1)
//	1      1    channel layout: 1 mono (both directions mixed), 2 stereo (interleaved, caller left, callee right)
//	2      1    codec of the payload: 1 = PCM signed 16-bit little-endian
//	3      1    flags: bit 0 = frames were dropped for this listener since the previous message
//	4      2    sample rate: the call's (8000 for G.711, GSM, G.729; 16000 for G.722; 48000 for Opus), at most the listener's rate=
//	6      2    samples per channel: rate/50 (160 at 8 kHz, 320 at 16 kHz, 960 at 48 kHz)
//	8      4    sequence: the frame's index since the call's first RTP packet (gaps = dropped frames)
//	12     8    capture time of the frame's first sample: float64 milliseconds since the Unix epoch
//	20     n    PCM: samples × channels × 2 bytes
const (
	FrameVersion    = 1
	FrameHeaderSize = 20

	LayoutMono   = 1
	LayoutStereo = 2

	CodecPCM16LE = 1

	FlagDropped = 1 << 0
)

// FrameHeader is the decoded header of a binary message.
type FrameHeader struct {
	Version    byte
	Layout     byte
	Codec      byte
	Flags      byte
	SampleRate uint16
	Samples    uint16
	Seq        uint32
	Capture    time.Time
}

// AppendFrame appends one websocket message for f.
func AppendFrame(dst []byte, f *audio.Frame, layout, flags byte) []byte {
	if layout != LayoutMono {
		layout = LayoutStereo
	}
	dst = append(dst, FrameVersion, layout, CodecPCM16LE, flags)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(f.Rate))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(f.Samples()))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(f.Index))
	ms := float64(f.Time.UnixNano()) / 1e6
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(ms))
	if layout == LayoutStereo {
		return f.AppendStereo(dst)
	}
	return f.AppendMono(dst)
}

// ParseFrame splits a binary message into its header and PCM, checking
// that the PCM length matches the header.
func ParseFrame(b []byte) (FrameHeader, []byte, error) {
	var h FrameHeader
	if len(b) < FrameHeaderSize {
		return h, nil, fmt.Errorf("%w: frame of %d bytes", ErrBadRequest, len(b))
	}
	h.Version, h.Layout, h.Codec, h.Flags = b[0], b[1], b[2], b[3]
	h.SampleRate = binary.LittleEndian.Uint16(b[4:])
	h.Samples = binary.LittleEndian.Uint16(b[6:])
	h.Seq = binary.LittleEndian.Uint32(b[8:])
	ms := math.Float64frombits(binary.LittleEndian.Uint64(b[12:]))
	h.Capture = time.UnixMicro(int64(math.Round(ms * 1000)))
	pcm := b[FrameHeaderSize:]
	if h.Version != FrameVersion || h.Codec != CodecPCM16LE || (h.Layout != LayoutMono && h.Layout != LayoutStereo) {
		return h, nil, fmt.Errorf("%w: frame version %d layout %d codec %d", ErrBadRequest, h.Version, h.Layout, h.Codec)
	}
	if h.SampleRate < audio.SampleRate || h.SampleRate > audio.MaxRate || int(h.Samples)*50 != int(h.SampleRate) {
		return h, nil, fmt.Errorf("%w: frame of %d samples at %d Hz", ErrBadRequest, h.Samples, h.SampleRate)
	}
	if want := int(h.Samples) * int(h.Layout) * 2; len(pcm) != want {
		return h, nil, fmt.Errorf("%w: frame PCM %d bytes, want %d", ErrBadRequest, len(pcm), want)
	}
	return h, pcm, nil
}
