// Package hep decodes and encodes HEP (Homer Encapsulation Protocol), the
// wire format of HOMER/heplify and of Asterisk's res_hep: version 3 (chunks,
// "HEP3") and the older versions 1 and 2 (fixed header). Unmarshal fills a
// caller-owned Packet whose byte slices alias the input: decoding allocates
// nothing. AppendMarshal writes HEP3.
package hep

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Payload types (HEP3 chunk 0x000b, "protocol type").
const (
	ProtoSIP       = 1
	ProtoXMPP      = 2
	ProtoSDP       = 3
	ProtoRTP       = 4
	ProtoRTCPJSON  = 5
	ProtoMGCP      = 6
	ProtoMEGACO    = 7
	ProtoM2UA      = 8
	ProtoM3UA      = 9
	ProtoIAX       = 10
	ProtoH322      = 11
	ProtoH321      = 12
	ProtoQoSJSON   = 32 // JSON QoS statistics
	ProtoQoSReport = 34 // per-stream quality report (JSON, "RTP agent" report)
	ProtoLog       = 100
)

// IP families (chunk 0x0001) and protocols (chunk 0x0002).
const (
	FamilyIPv4 = 2
	FamilyIPv6 = 10
	IPProtoTCP = 6
	IPProtoUDP = 17
)

// HEP3 chunk type ids of the generic vendor (0x0000).
const (
	ChunkFamily        = 0x0001
	ChunkIPProto       = 0x0002
	ChunkIPv4Src       = 0x0003
	ChunkIPv4Dst       = 0x0004
	ChunkIPv6Src       = 0x0005
	ChunkIPv6Dst       = 0x0006
	ChunkSrcPort       = 0x0007
	ChunkDstPort       = 0x0008
	ChunkTimeSec       = 0x0009
	ChunkTimeUsec      = 0x000a
	ChunkProtoType     = 0x000b
	ChunkCaptureID     = 0x000c
	ChunkKeepAlive     = 0x000d
	ChunkAuthKey       = 0x000e
	ChunkPayload       = 0x000f
	ChunkCompressed    = 0x0010
	ChunkCorrelationID = 0x0011
	ChunkVLAN          = 0x0012
	ChunkNodeName      = 0x0013
)

// HeaderLen is the HEP3 header ("HEP3" + total length); ChunkHeaderLen the
// header of each chunk (vendor id, type id, length).
const (
	HeaderLen      = 6
	ChunkHeaderLen = 6
)

// Packet is one HEP message. Byte slices alias the buffer given to
// Unmarshal and are valid only as long as it is.
type Packet struct {
	Version   uint8 // 1, 2 or 3
	Family    uint8 // FamilyIPv4 or FamilyIPv6
	IPProto   uint8 // IPProtoUDP, IPProtoTCP, ...
	Src, Dst  netip.AddrPort
	TimeSec   uint32
	TimeUsec  uint32
	ProtoType uint8
	CaptureID uint32
	KeepAlive uint16
	VLAN      uint16
	// AuthKey is the capture password (chunk 0x000e), as sent: Asterisk
	// sends it without a terminating NUL, some agents with one.
	AuthKey       []byte
	CorrelationID []byte
	NodeName      []byte
	Payload       []byte
}

// Time is the capture time the packet carries (UTC).
func (p *Packet) Time() time.Time {
	return time.Unix(int64(p.TimeSec), int64(p.TimeUsec)*1000).UTC()
}

// SetTime sets TimeSec/TimeUsec from t.
func (p *Packet) SetTime(t time.Time) {
	p.TimeSec = uint32(t.Unix())
	p.TimeUsec = uint32(t.Nanosecond() / 1000)
}

// Reset clears p for reuse.
func (p *Packet) Reset() { *p = Packet{} }

// IsHEP tells whether b starts like a HEP packet (a cheap test before
// Unmarshal, for datagrams that may be something else).
func IsHEP(b []byte) bool {
	if len(b) >= 4 && b[0] == 'H' && b[1] == 'E' && b[2] == 'P' && b[3] == '3' {
		return true
	}
	return len(b) >= 16 && (b[0] == 1 || b[0] == 2) && (b[1] == 16 || b[1] == 40) && (b[2] == FamilyIPv4 || b[2] == FamilyIPv6)
}

// FrameLen returns the length of the HEP3 packet at the start of b (from
// its header), for framing a TCP stream; ok is false when b holds fewer
// than HeaderLen bytes. err is set when b does not start with "HEP3" or the
// length is below the header's.
func FrameLen(b []byte) (n int, ok bool, err error) {
	if len(b) < HeaderLen {
		return 0, false, nil
	}
	if b[0] != 'H' || b[1] != 'E' || b[2] != 'P' || b[3] != '3' {
		return 0, true, ErrVersion
	}
	n = int(binary.BigEndian.Uint16(b[4:6]))
	if n < HeaderLen {
		return 0, true, ErrLength
	}
	return n, true, nil
}

// Unmarshal decodes one HEP packet (v3, or v1/v2) into p. For HEP3, bytes
// past the header's total length are ignored; unknown chunks and chunks of
// other vendors are skipped. It allocates nothing.
func (p *Packet) Unmarshal(b []byte) error {
	*p = Packet{}
	if len(b) >= 4 && b[0] == 'H' && b[1] == 'E' && b[2] == 'P' && b[3] == '3' {
		return p.unmarshal3(b)
	}
	if len(b) >= 1 && (b[0] == 1 || b[0] == 2) {
		return p.unmarshal2(b)
	}
	if len(b) < 4 {
		return ErrTooShort
	}
	return ErrVersion
}

func (p *Packet) unmarshal3(b []byte) error {
	if len(b) < HeaderLen {
		return ErrTooShort
	}
	total := int(binary.BigEndian.Uint16(b[4:6]))
	if total < HeaderLen || total > len(b) {
		return ErrLength
	}
	p.Version = 3
	b = b[:total]
	var src4, dst4 [4]byte
	var src6, dst6 [16]byte
	var has4, has6 uint8 // bit 0 src, bit 1 dst
	var sport, dport uint16
	havePayload := false
	for off := HeaderLen; off < total; {
		if total-off < ChunkHeaderLen {
			return ErrChunkLength
		}
		vendor := binary.BigEndian.Uint16(b[off:])
		typ := binary.BigEndian.Uint16(b[off+2:])
		n := int(binary.BigEndian.Uint16(b[off+4:]))
		if n < ChunkHeaderLen || n > total-off {
			return ErrChunkLength
		}
		body := b[off+ChunkHeaderLen : off+n]
		off += n
		if vendor != 0 {
			continue
		}
		var err error
		switch typ {
		case ChunkFamily:
			p.Family, err = u8(body)
		case ChunkIPProto:
			p.IPProto, err = u8(body)
		case ChunkIPv4Src:
			err = copyAddr(src4[:], body)
			has4 |= 1
		case ChunkIPv4Dst:
			err = copyAddr(dst4[:], body)
			has4 |= 2
		case ChunkIPv6Src:
			err = copyAddr(src6[:], body)
			has6 |= 1
		case ChunkIPv6Dst:
			err = copyAddr(dst6[:], body)
			has6 |= 2
		case ChunkSrcPort:
			sport, err = u16(body)
		case ChunkDstPort:
			dport, err = u16(body)
		case ChunkTimeSec:
			p.TimeSec, err = u32(body)
		case ChunkTimeUsec:
			p.TimeUsec, err = u32(body)
		case ChunkProtoType:
			p.ProtoType, err = u8(body)
		case ChunkCaptureID:
			p.CaptureID, err = u32(body)
		case ChunkKeepAlive:
			p.KeepAlive, err = u16(body)
		case ChunkAuthKey:
			p.AuthKey = body
		case ChunkPayload:
			p.Payload, havePayload = body, true
		case ChunkCompressed:
			return ErrCompressed
		case ChunkCorrelationID:
			p.CorrelationID = body
		case ChunkVLAN:
			p.VLAN, err = u16(body)
		case ChunkNodeName:
			p.NodeName = body
		}
		if err != nil {
			return err
		}
	}
	switch {
	case p.Family == FamilyIPv4 || (p.Family == 0 && has4 != 0):
		p.Family = FamilyIPv4
		p.Src = netip.AddrPortFrom(netip.AddrFrom4(src4), sport)
		p.Dst = netip.AddrPortFrom(netip.AddrFrom4(dst4), dport)
	case p.Family == FamilyIPv6 || (p.Family == 0 && has6 != 0):
		p.Family = FamilyIPv6
		p.Src = netip.AddrPortFrom(netip.AddrFrom16(src6), sport)
		p.Dst = netip.AddrPortFrom(netip.AddrFrom16(dst6), dport)
	default:
		return ErrFamily
	}
	if !havePayload {
		return ErrNoPayload
	}
	return nil
}

// unmarshal2 decodes HEP v1/v2: an 8-byte header (version, header length,
// family, protocol, ports in network order), the addresses, then for v2 a
// time header in the sender's byte order (little-endian on every agent
// known: x86/ARM), then the payload (SIP: v1/v2 carry nothing else).
func (p *Packet) unmarshal2(b []byte) error {
	if len(b) < 16 {
		return ErrTooShort
	}
	p.Version, p.Family, p.IPProto = b[0], b[2], b[3]
	hl := int(b[1])
	sport, dport := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	switch {
	case p.Family == FamilyIPv4 && hl == 16:
		p.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[8:12])), sport)
		p.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[12:16])), dport)
	case p.Family == FamilyIPv6 && hl == 40:
		if len(b) < 40 {
			return ErrTooShort
		}
		p.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), sport)
		p.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[24:40])), dport)
	default:
		return ErrFamily
	}
	b = b[hl:]
	if p.Version == 2 {
		if len(b) < 10 {
			return ErrTooShort
		}
		p.TimeSec = binary.LittleEndian.Uint32(b)
		p.TimeUsec = binary.LittleEndian.Uint32(b[4:])
		p.CaptureID = uint32(binary.LittleEndian.Uint16(b[8:]))
		b = b[10:]
	}
	p.ProtoType = ProtoSIP
	p.Payload = b
	if len(b) == 0 {
		return ErrNoPayload
	}
	return nil
}

func u8(b []byte) (uint8, error) {
	if len(b) != 1 {
		return 0, ErrChunkSize
	}
	return b[0], nil
}

func u16(b []byte) (uint16, error) {
	if len(b) != 2 {
		return 0, ErrChunkSize
	}
	return binary.BigEndian.Uint16(b), nil
}

func u32(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, ErrChunkSize
	}
	return binary.BigEndian.Uint32(b), nil
}

func copyAddr(dst, b []byte) error {
	if len(b) != len(dst) {
		return ErrChunkSize
	}
	copy(dst, b)
	return nil
}

// AppendMarshal appends p encoded as HEP3 to dst: the chunks Asterisk and
// heplify send (family, protocol, ports, time, protocol type, capture id,
// addresses, then auth key, correlation id, node name, VLAN when set, and
// the payload). Family comes from Src's address; Version is ignored.
func AppendMarshal(dst []byte, p *Packet) ([]byte, error) {
	src, dstA := p.Src.Addr().Unmap(), p.Dst.Addr().Unmap()
	if src.Is4() != dstA.Is4() || !src.IsValid() {
		return dst, ErrBadAddress
	}
	start := len(dst)
	dst = append(dst, 'H', 'E', 'P', '3', 0, 0)
	fam := uint8(FamilyIPv6)
	if src.Is4() {
		fam = FamilyIPv4
	}
	dst = chunk8(dst, ChunkFamily, fam)
	dst = chunk8(dst, ChunkIPProto, p.IPProto)
	dst = chunk16(dst, ChunkSrcPort, p.Src.Port())
	dst = chunk16(dst, ChunkDstPort, p.Dst.Port())
	dst = chunk32(dst, ChunkTimeSec, p.TimeSec)
	dst = chunk32(dst, ChunkTimeUsec, p.TimeUsec)
	dst = chunk8(dst, ChunkProtoType, p.ProtoType)
	dst = chunk32(dst, ChunkCaptureID, p.CaptureID)
	if fam == FamilyIPv4 {
		s, d := src.As4(), dstA.As4()
		dst = chunkBytes(dst, ChunkIPv4Src, s[:])
		dst = chunkBytes(dst, ChunkIPv4Dst, d[:])
	} else {
		s, d := src.As16(), dstA.As16()
		dst = chunkBytes(dst, ChunkIPv6Src, s[:])
		dst = chunkBytes(dst, ChunkIPv6Dst, d[:])
	}
	if len(p.AuthKey) > 0 {
		dst = chunkBytes(dst, ChunkAuthKey, p.AuthKey)
	}
	if len(p.CorrelationID) > 0 {
		dst = chunkBytes(dst, ChunkCorrelationID, p.CorrelationID)
	}
	if len(p.NodeName) > 0 {
		dst = chunkBytes(dst, ChunkNodeName, p.NodeName)
	}
	if p.VLAN != 0 {
		dst = chunk16(dst, ChunkVLAN, p.VLAN)
	}
	if p.KeepAlive != 0 {
		dst = chunk16(dst, ChunkKeepAlive, p.KeepAlive)
	}
	dst = chunkBytes(dst, ChunkPayload, p.Payload)
	n := len(dst) - start
	if n > 0xffff {
		return dst[:start], ErrTooLarge
	}
	binary.BigEndian.PutUint16(dst[start+4:], uint16(n))
	return dst, nil
}

func chunkHeader(dst []byte, typ uint16, bodyLen int) []byte {
	return append(dst, 0, 0, byte(typ>>8), byte(typ), byte((bodyLen+ChunkHeaderLen)>>8), byte(bodyLen+ChunkHeaderLen))
}

func chunk8(dst []byte, typ uint16, v uint8) []byte {
	return append(chunkHeader(dst, typ, 1), v)
}

func chunk16(dst []byte, typ uint16, v uint16) []byte {
	return binary.BigEndian.AppendUint16(chunkHeader(dst, typ, 2), v)
}

func chunk32(dst []byte, typ uint16, v uint32) []byte {
	return binary.BigEndian.AppendUint32(chunkHeader(dst, typ, 4), v)
}

func chunkBytes(dst []byte, typ uint16, b []byte) []byte {
	if len(b) > 0xffff-ChunkHeaderLen {
		b = b[:0xffff-ChunkHeaderLen] // AppendMarshal then fails with ErrTooLarge
	}
	return append(chunkHeader(dst, typ, len(b)), b...)
}
