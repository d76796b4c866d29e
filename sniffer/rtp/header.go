// Package rtp parses RTP and RTCP packets and computes per-stream quality
// figures the way VoIPmonitor stores them (loss, RFC 3550 jitter, delay and
// loss-burst buckets, MOS from a jitter-buffer simulation), plus RFC 4733
// DTMF and G.711 decoding.
//
// Parsers fill caller-owned structs (pion/rtp shape) and never allocate;
// slices they return alias the input buffer.
package rtp

import (
	"encoding/binary"
	"fmt"
)

// HeaderSize is the size of the fixed RTP header.
const HeaderSize = 12

// MaxCSRC is the largest CSRC count the 4-bit CC field can carry.
const MaxCSRC = 15

// Header is a parsed RTP fixed header (RFC 3550 §5.1) with its CSRC list and
// header extension. ExtensionPayload aliases the buffer given to Unmarshal.
type Header struct {
	Version          uint8
	Padding          bool
	Extension        bool
	Marker           bool
	PayloadType      uint8
	SequenceNumber   uint16
	Timestamp        uint32
	SSRC             uint32
	CSRCCount        uint8
	CSRC             [MaxCSRC]uint32
	ExtensionProfile uint16
	ExtensionPayload []byte
	// PaddingSize is the number of padding bytes at the end of the packet
	// (0 when Padding is false).
	PaddingSize uint8
}

// Unmarshal parses the RTP header at the start of buf into h and returns
// the header length; the payload is buf[n : len(buf)-int(h.PaddingSize)].
// It does not allocate.
func (h *Header) Unmarshal(buf []byte) (n int, err error) {
	if len(buf) < HeaderSize {
		return 0, fmt.Errorf("%w: %d < %d", ErrShortPacket, len(buf), HeaderSize)
	}
	h.Version = buf[0] >> 6
	if h.Version != 2 {
		return 0, fmt.Errorf("%w: %d", ErrBadVersion, h.Version)
	}
	h.Padding = buf[0]&0x20 != 0
	h.Extension = buf[0]&0x10 != 0
	h.CSRCCount = buf[0] & 0x0f
	h.Marker = buf[1]&0x80 != 0
	h.PayloadType = buf[1] & 0x7f
	h.SequenceNumber = binary.BigEndian.Uint16(buf[2:4])
	h.Timestamp = binary.BigEndian.Uint32(buf[4:8])
	h.SSRC = binary.BigEndian.Uint32(buf[8:12])
	n = HeaderSize
	if need := n + 4*int(h.CSRCCount); len(buf) < need {
		return 0, fmt.Errorf("%w: %d < %d (CSRC list)", ErrShortPacket, len(buf), need)
	}
	for i := 0; i < int(h.CSRCCount); i++ {
		h.CSRC[i] = binary.BigEndian.Uint32(buf[n:])
		n += 4
	}
	h.ExtensionProfile = 0
	h.ExtensionPayload = nil
	if h.Extension {
		if len(buf) < n+4 {
			return 0, fmt.Errorf("%w: %d < %d (extension header)", ErrShortPacket, len(buf), n+4)
		}
		h.ExtensionProfile = binary.BigEndian.Uint16(buf[n:])
		extLen := 4 * int(binary.BigEndian.Uint16(buf[n+2:]))
		n += 4
		if len(buf) < n+extLen {
			return 0, fmt.Errorf("%w: %d < %d (extension)", ErrShortPacket, len(buf), n+extLen)
		}
		h.ExtensionPayload = buf[n : n+extLen]
		n += extLen
	}
	h.PaddingSize = 0
	if h.Padding {
		p := buf[len(buf)-1]
		if p == 0 || int(p) > len(buf)-n {
			return 0, fmt.Errorf("%w: %d with %d payload bytes", ErrBadPadding, p, len(buf)-n)
		}
		h.PaddingSize = p
	}
	return n, nil
}

// Payload returns the payload of the packet h was parsed from: buf with the
// header (n bytes) and the padding removed.
func (h *Header) Payload(buf []byte, n int) []byte {
	return buf[n : len(buf)-int(h.PaddingSize)]
}

// LooksLikeRTP reports whether buf could be an RTP (not RTCP) packet: version
// 2, at least a fixed header, and a payload type outside the RTCP range
// 72..95 (RFC 5761 §4, for RTP/RTCP multiplexed on one port).
func LooksLikeRTP(buf []byte) bool {
	if len(buf) < HeaderSize || buf[0]>>6 != 2 {
		return false
	}
	pt := buf[1] & 0x7f
	return pt < 72 || pt > 95
}

// LooksLikeRTCP reports whether buf starts like an RTCP packet (version 2,
// packet type 192..223).
func LooksLikeRTCP(buf []byte) bool {
	return len(buf) >= 4 && buf[0]>>6 == 2 && buf[1] >= 192 && buf[1] <= 223
}
