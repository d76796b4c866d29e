package rtp

import (
	"encoding/binary"
	"fmt"
)

// RTCP packet types (RFC 3550 §12.1, RFC 3611).
const (
	TypeSR   = 200
	TypeRR   = 201
	TypeSDES = 202
	TypeBYE  = 203
	TypeAPP  = 204
	TypeXR   = 207
)

// Limits of what one Compound keeps. Extra items are counted in
// Compound.Truncated and otherwise skipped.
const (
	MaxReports   = 31 // reception report blocks over all SR/RR in the datagram
	MaxByeSSRC   = 31
	MaxXRMetrics = 4
)

// SenderInfo is the sender-information part of an SR (RFC 3550 §6.4.1).
type SenderInfo struct {
	SSRC        uint32
	NTPTime     uint64 // 32.32 fixed point seconds since 1900
	RTPTime     uint32
	PacketCount uint32
	OctetCount  uint32
}

// ReceptionReport is one report block of an SR or RR (RFC 3550 §6.4.1),
// with the SSRC of the reporter that sent it.
type ReceptionReport struct {
	Reporter     uint32 // SSRC of the packet sender (the peer that reports)
	SSRC         uint32 // source the block is about
	FractionLost uint8  // lost fraction since the last report, ×256
	TotalLost    int32  // cumulative lost (24-bit signed)
	LastSeq      uint32 // extended highest sequence number received
	Jitter       uint32 // interarrival jitter, RTP timestamp units
	LSR          uint32 // middle 32 bits of the last SR's NTP time
	DLSR         uint32 // delay since last SR, 1/65536 s
}

// VoIPMetrics is an RTCP XR VoIP Metrics report block (RFC 3611 §4.7).
type VoIPMetrics struct {
	Reporter       uint32
	SSRC           uint32
	LossRate       uint8 // fraction ×256
	DiscardRate    uint8
	BurstDensity   uint8
	GapDensity     uint8
	BurstDuration  uint16 // ms
	GapDuration    uint16
	RoundTripDelay uint16
	EndSystemDelay uint16
	SignalLevel    int8
	NoiseLevel     int8
	RERL           uint8
	Gmin           uint8
	RFactor        uint8
	ExtRFactor     uint8
	MOSLQ          uint8 // MOS ×10, 127 = unavailable
	MOSCQ          uint8
	RXConfig       uint8
	JBNominal      uint16
	JBMaximum      uint16
	JBAbsMax       uint16
}

// Compound is everything of interest in one RTCP datagram (a compound
// packet): sender reports, reception report blocks, BYE SSRCs and XR VoIP
// metrics. SDES, APP, feedback and unknown types are skipped. Reuse one
// Compound across datagrams; Unmarshal resets it.
type Compound struct {
	Packets   int // RTCP packets in the datagram
	Senders   [MaxReports]SenderInfo
	NSenders  int
	Reports   [MaxReports]ReceptionReport
	NReports  int
	Bye       [MaxByeSSRC]uint32
	NBye      int
	XR        [MaxXRMetrics]VoIPMetrics
	NXR       int
	SDES      int // SDES packets seen (content skipped)
	Truncated int // report blocks, BYE SSRCs or XR blocks dropped for lack of room
	Trailing  int // bytes after the last packet, too few for a header (seen in the wild)
}

// Unmarshal parses a compound RTCP datagram into c. It checks every
// packet's version and length (RFC 3550 §6.1, A.2 without requiring SR/RR
// first, since RTCP-mux and reduced-size RTCP exist). It does not allocate.
func (c *Compound) Unmarshal(buf []byte) error {
	*c = Compound{}
	if len(buf) < 4 {
		return fmt.Errorf("%w: %d < 4", ErrShortPacket, len(buf))
	}
	for off := 0; off < len(buf); {
		rest := buf[off:]
		if len(rest) < 4 {
			if c.Packets > 0 { // some stacks pad the datagram: keep what parsed
				c.Trailing = len(rest)
				return nil
			}
			return fmt.Errorf("%w: %d trailing bytes at offset %d", ErrShortPacket, len(rest), off)
		}
		if v := rest[0] >> 6; v != 2 {
			return fmt.Errorf("%w: %d at offset %d", ErrBadVersion, v, off)
		}
		pt := rest[1]
		if pt < 192 || pt > 223 {
			return fmt.Errorf("%w: type %d at offset %d", ErrNotRTCP, pt, off)
		}
		size := 4 * (int(binary.BigEndian.Uint16(rest[2:4])) + 1)
		if size > len(rest) {
			return fmt.Errorf("%w: packet of %d bytes at offset %d, %d left", ErrBadLength, size, off, len(rest))
		}
		body := rest[4:size]
		if rest[0]&0x20 != 0 { // padding: only meaningful on the last packet
			p := int(rest[size-1])
			if p == 0 || p > len(body) {
				return fmt.Errorf("%w: RTCP padding %d of %d at offset %d", ErrBadPadding, p, len(body), off)
			}
			body = body[:len(body)-p]
		}
		count := int(rest[0] & 0x1f)
		var err error
		switch pt {
		case TypeSR:
			err = c.parseSR(body, count)
		case TypeRR:
			err = c.parseRR(body, count)
		case TypeSDES:
			c.SDES++
		case TypeBYE:
			err = c.parseBye(body, count)
		case TypeXR:
			err = c.parseXR(body)
		}
		if err != nil {
			return fmt.Errorf("type %d at offset %d: %w", pt, off, err)
		}
		c.Packets++
		off += size
	}
	return nil
}

func (c *Compound) parseSR(b []byte, count int) error {
	if len(b) < 24+24*count {
		return fmt.Errorf("%w: SR body %d < %d", ErrShortPacket, len(b), 24+24*count)
	}
	si := SenderInfo{
		SSRC:        binary.BigEndian.Uint32(b[0:]),
		NTPTime:     binary.BigEndian.Uint64(b[4:]),
		RTPTime:     binary.BigEndian.Uint32(b[12:]),
		PacketCount: binary.BigEndian.Uint32(b[16:]),
		OctetCount:  binary.BigEndian.Uint32(b[20:]),
	}
	if c.NSenders < len(c.Senders) {
		c.Senders[c.NSenders] = si
		c.NSenders++
	} else {
		c.Truncated++
	}
	c.addBlocks(si.SSRC, b[24:], count)
	return nil
}

func (c *Compound) parseRR(b []byte, count int) error {
	if len(b) < 4+24*count {
		return fmt.Errorf("%w: RR body %d < %d", ErrShortPacket, len(b), 4+24*count)
	}
	c.addBlocks(binary.BigEndian.Uint32(b[0:]), b[4:], count)
	return nil
}

func (c *Compound) addBlocks(reporter uint32, b []byte, count int) {
	for i := 0; i < count; i++ {
		if c.NReports == len(c.Reports) {
			c.Truncated += count - i
			return
		}
		blk := b[24*i:]
		lost := int32(binary.BigEndian.Uint32(blk[4:]) & 0x00ffffff)
		if lost&0x800000 != 0 { // sign-extend the 24-bit field
			lost -= 1 << 24
		}
		c.Reports[c.NReports] = ReceptionReport{
			Reporter:     reporter,
			SSRC:         binary.BigEndian.Uint32(blk[0:]),
			FractionLost: blk[4],
			TotalLost:    lost,
			LastSeq:      binary.BigEndian.Uint32(blk[8:]),
			Jitter:       binary.BigEndian.Uint32(blk[12:]),
			LSR:          binary.BigEndian.Uint32(blk[16:]),
			DLSR:         binary.BigEndian.Uint32(blk[20:]),
		}
		c.NReports++
	}
}

func (c *Compound) parseBye(b []byte, count int) error {
	if len(b) < 4*count {
		return fmt.Errorf("%w: BYE body %d < %d", ErrShortPacket, len(b), 4*count)
	}
	for i := 0; i < count; i++ {
		if c.NBye == len(c.Bye) {
			c.Truncated += count - i
			break
		}
		c.Bye[c.NBye] = binary.BigEndian.Uint32(b[4*i:])
		c.NBye++
	}
	return nil // the optional reason text is ignored
}

const xrVoIPMetrics = 7

func (c *Compound) parseXR(b []byte) error {
	if len(b) < 4 {
		return fmt.Errorf("%w: XR body %d < 4", ErrShortPacket, len(b))
	}
	reporter := binary.BigEndian.Uint32(b)
	for off := 4; off < len(b); {
		if len(b)-off < 4 {
			return fmt.Errorf("%w: XR block header at %d", ErrShortPacket, off)
		}
		bt := b[off]
		blen := 4 * int(binary.BigEndian.Uint16(b[off+2:]))
		blk := b[off+4:]
		if blen > len(blk) {
			return fmt.Errorf("%w: XR block of %d bytes, %d left", ErrBadLength, blen, len(blk))
		}
		blk = blk[:blen]
		if bt == xrVoIPMetrics {
			if len(blk) < 32 {
				return fmt.Errorf("%w: XR VoIP metrics %d < 32", ErrShortPacket, len(blk))
			}
			if c.NXR == len(c.XR) {
				c.Truncated++
			} else {
				c.XR[c.NXR] = VoIPMetrics{
					Reporter:       reporter,
					SSRC:           binary.BigEndian.Uint32(blk[0:]),
					LossRate:       blk[4],
					DiscardRate:    blk[5],
					BurstDensity:   blk[6],
					GapDensity:     blk[7],
					BurstDuration:  binary.BigEndian.Uint16(blk[8:]),
					GapDuration:    binary.BigEndian.Uint16(blk[10:]),
					RoundTripDelay: binary.BigEndian.Uint16(blk[12:]),
					EndSystemDelay: binary.BigEndian.Uint16(blk[14:]),
					SignalLevel:    int8(blk[16]),
					NoiseLevel:     int8(blk[17]),
					RERL:           blk[18],
					Gmin:           blk[19],
					RFactor:        blk[20],
					ExtRFactor:     blk[21],
					MOSLQ:          blk[22],
					MOSCQ:          blk[23],
					RXConfig:       blk[24],
					JBNominal:      binary.BigEndian.Uint16(blk[26:]),
					JBMaximum:      binary.BigEndian.Uint16(blk[28:]),
					JBAbsMax:       binary.BigEndian.Uint16(blk[30:]),
				}
				c.NXR++
			}
		}
		off += 4 + blen
	}
	return nil
}
