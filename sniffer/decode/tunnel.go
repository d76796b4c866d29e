package decode

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Tunnels and mirror encapsulations, unwrapped down to the inner frame or
// packet: GRE (RFC 2784/2890: IP, transparent Ethernet bridging 0x6558,
// MPLS), ERSPAN type I, II and III (GRE 0x88be / 0x22eb, as Cisco, Juniper
// and Linux mirror sessions send it), VXLAN (RFC 7348, UDP 4789 by
// default), MPLS label stacks (RFC 3032, IP or Ethernet pseudowire
// underneath) and 802.1ad / 802.1Q tag stacks. The addresses that count are
// the innermost ones: a mirror session's outer IP header never names a call
// party.
//
// Hand-written rather than gopacket's GRE/ERSPANII/MPLS layers: those read
// past short input (a truncated GRE or ERSPAN header panics), allocate per
// packet (GRE routing, MPLS through the non-DecodingLayer path) and know
// neither ERSPAN III nor 802.1ad.

// DefaultVXLANPort is the IANA port of VXLAN (voipmonitor.conf udp_port_vxlan).
const DefaultVXLANPort = 4789

// maxEncap bounds the encapsulations unwrapped in one frame (ERSPAN in GRE
// in IP in MPLS is two); more is malformed or hostile.
const maxEncap = 4

// EtherTypes and protocol numbers the unwrapping looks at.
const (
	etIPv4     = 0x0800
	etIPv6     = 0x86dd
	etDot1Q    = 0x8100
	etQinQ     = 0x88a8 // 802.1ad S-tag
	etQinQOld  = 0x9100 // pre-802.1ad S-tag
	etQinQOld2 = 0x9200
	etMPLS     = 0x8847
	etMPLSMult = 0x8848
	etPPPoE    = 0x8864
	etTEB      = 0x6558 // transparent Ethernet bridging (Ethernet in GRE)
	etERSPAN2  = 0x88be // ERSPAN type I (no GRE sequence) and II
	etERSPAN3  = 0x22eb
	ipGRE      = 47
	ipSCTP     = 132
)

// Encap is a bit set of the encapsulations a packet was found in.
type Encap uint8

const (
	EncapGRE Encap = 1 << iota
	EncapERSPAN
	EncapVXLAN
	EncapMPLS
	EncapQinQ // an 802.1ad (or older 0x9100) service tag
)

// inner is the next thing to decode after an encapsulation header: a layer
// gopacket decodes (Ethernet, IPv4, IPv6) and its bytes.
type inner struct {
	first gopacket.LayerType
	data  []byte
}

// greInner unwraps one GRE header (version 0; RFC 2890 key and sequence
// number allowed, source routing not) and what it carries.
func greInner(b []byte, p *Packet) (inner, bool) {
	if len(b) < 4 || b[1]&0x07 != 0 || b[0]&0x40 != 0 {
		return inner{}, false
	}
	n := 4
	if b[0]&0x80 != 0 { // checksum
		n += 4
	}
	if b[0]&0x20 != 0 { // key
		n += 4
	}
	seq := b[0]&0x10 != 0
	if seq {
		n += 4
	}
	if len(b) < n {
		return inner{}, false
	}
	proto, b := binary.BigEndian.Uint16(b[2:4]), b[n:]
	p.Encap |= EncapGRE
	switch proto {
	case etERSPAN2:
		p.Encap |= EncapERSPAN
		if !seq { // type I: the mirrored frame follows the GRE header
			return inner{layers.LayerTypeEthernet, b}, true
		}
		// Type II: ver(4)=1 vlan(12) | cos(3) en(2) t(1) session(10) | reserved(12) index(20).
		if len(b) < 8 || b[0]>>4 != 1 {
			return inner{}, false
		}
		return inner{layers.LayerTypeEthernet, b[8:]}, true
	case etERSPAN3:
		p.Encap |= EncapERSPAN
		// Type III: ver(4)=2 vlan(12) | cos bso t session | timestamp(32) |
		// sgt(16) p(1) ft(5) hwid(6) d(1) gra(2) o(1) [+ 8-byte platform sub-header when o].
		if len(b) < 12 || b[0]>>4 != 2 {
			return inner{}, false
		}
		n, ft := 12, b[10]>>2&0x1f
		if b[11]&0x01 != 0 {
			n += 8
		}
		if len(b) < n {
			return inner{}, false
		}
		switch ft {
		case 0:
			return inner{layers.LayerTypeEthernet, b[n:]}, true
		case 2: // IP frame type: the version nibble tells which
			return ipByVersion(b[n:])
		}
		return inner{}, false
	}
	return etherInner(proto, b, p)
}

// etherInner maps an EtherType and its payload to what to decode next,
// unwrapping 802.1ad/802.1Q tags, MPLS and PPPoE on the way.
func etherInner(et uint16, b []byte, p *Packet) (inner, bool) {
	for range maxEncap {
		switch et {
		case etIPv4:
			return inner{layers.LayerTypeIPv4, b}, true
		case etIPv6:
			return inner{layers.LayerTypeIPv6, b}, true
		case etTEB:
			return inner{layers.LayerTypeEthernet, b}, true
		case etQinQ, etQinQOld, etQinQOld2, etDot1Q:
			if len(b) < 4 {
				return inner{}, false
			}
			if et != etDot1Q {
				p.Encap |= EncapQinQ
			}
			p.VLAN = binary.BigEndian.Uint16(b[0:2]) & 0x0fff
			et, b = binary.BigEndian.Uint16(b[2:4]), b[4:]
		case etMPLS, etMPLSMult:
			return mplsInner(b, p)
		case etPPPoE:
			// 6 bytes of PPPoE session header, 2 of PPP protocol, then IP.
			if len(b) < 8 {
				return inner{}, false
			}
			switch binary.BigEndian.Uint16(b[6:8]) {
			case 0x0021:
				return inner{layers.LayerTypeIPv4, b[8:]}, true
			case 0x0057:
				return inner{layers.LayerTypeIPv6, b[8:]}, true
			}
			return inner{}, false
		default:
			return inner{}, false
		}
	}
	return inner{}, false
}

// mplsInner pops an MPLS label stack (4 bytes per label, S bit on the last)
// and guesses what is underneath, as routers' own dissectors do: IPv4 or
// IPv6 by the version nibble, an Ethernet pseudowire after a zero control
// word (RFC 4385).
func mplsInner(b []byte, p *Packet) (inner, bool) {
	p.Encap |= EncapMPLS
	for labels := 0; ; labels++ {
		if len(b) < 4 || labels >= 16 {
			return inner{}, false
		}
		bottom := b[2]&0x01 != 0
		b = b[4:]
		if bottom {
			break
		}
	}
	if len(b) > 0 && b[0]>>4 == 0 {
		if len(b) < 4 {
			return inner{}, false
		}
		return inner{layers.LayerTypeEthernet, b[4:]}, true
	}
	return ipByVersion(b)
}

func ipByVersion(b []byte) (inner, bool) {
	if len(b) == 0 {
		return inner{}, false
	}
	switch b[0] >> 4 {
	case 4:
		return inner{layers.LayerTypeIPv4, b}, true
	case 6:
		return inner{layers.LayerTypeIPv6, b}, true
	}
	return inner{}, false
}

// vxlanInner unwraps a VXLAN header (flags with the I bit, 24-bit VNI): an
// Ethernet frame follows.
func vxlanInner(b []byte, p *Packet) (inner, bool) {
	if len(b) < 8+14 || b[0]&0x08 == 0 {
		return inner{}, false
	}
	p.Encap |= EncapVXLAN
	return inner{layers.LayerTypeEthernet, b[8:]}, true
}

// linkPayload returns the EtherType and payload of the last link layer
// decoded when gopacket stopped there (a type it does not decode).
func (d *Decoder) linkPayload(last gopacket.LayerType) (uint16, []byte, bool) {
	switch last {
	case layers.LayerTypeEthernet:
		return uint16(d.eth.EthernetType), d.eth.Payload, true
	case layers.LayerTypeDot1Q:
		return uint16(d.dot1q.Type), d.dot1q.Payload, true
	case layers.LayerTypeLinuxSLL:
		return uint16(d.sll.EthernetType), d.sll.Payload, true
	}
	return 0, nil, false
}

// ipPayload returns the protocol and payload of the innermost IP header
// decoded.
func (d *Decoder) ipPayload() (uint8, []byte) {
	for i := len(d.decoded) - 1; i >= 0; i-- {
		switch d.decoded[i] {
		case layers.LayerTypeIPv4:
			return uint8(d.ip4.Protocol), d.ip4.Payload
		case layers.LayerTypeIPv6:
			return uint8(d.ip6.NextHeader), d.ip6.Payload
		}
	}
	return 0, nil
}

// SCTPData is one DATA chunk of an SCTP packet (RFC 9260 §3.3.1).
type SCTPData struct {
	TSN        uint32
	Stream     uint16
	SSN        uint16
	PPID       uint32
	Begin, End bool // B and E flags: both set = a whole user message
	Unordered  bool
	Data       []byte // aliases the packet
}

// NextSCTPData finds the first DATA chunk in b (an SCTP packet's chunks,
// Packet.Payload), skipping chunks of other types, and returns what follows
// it. ok is false when no (well-formed) DATA chunk is left.
func NextSCTPData(b []byte, c *SCTPData) (rest []byte, ok bool) {
	for len(b) >= 4 {
		typ, flags := b[0], b[1]
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if n < 4 || n > len(b) {
			return nil, false
		}
		chunk := b[:n]
		if padded := (n + 3) &^ 3; padded <= len(b) {
			b = b[padded:]
		} else {
			b = b[n:]
		}
		if typ != 0 || len(chunk) < 16 {
			continue
		}
		*c = SCTPData{
			TSN:       binary.BigEndian.Uint32(chunk[4:8]),
			Stream:    binary.BigEndian.Uint16(chunk[8:10]),
			SSN:       binary.BigEndian.Uint16(chunk[10:12]),
			PPID:      binary.BigEndian.Uint32(chunk[12:16]),
			Unordered: flags&0x04 != 0,
			Begin:     flags&0x02 != 0,
			End:       flags&0x01 != 0,
			Data:      chunk[16:],
		}
		return b, true
	}
	return nil, false
}

// sctp fills p from an SCTP packet: the ports of its common header and its
// chunks as the payload (NextSCTPData walks them).
func sctp(b []byte, src, dst netip.Addr, p *Packet) bool {
	if len(b) < 12 {
		return false
	}
	p.Transport = SCTP
	p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2]))
	p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:4]))
	p.Payload = b[12:]
	return true
}
