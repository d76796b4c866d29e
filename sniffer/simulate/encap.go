package simulate

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/gopacket/layers"
)

// Encapsulations accepted in Options.Encap: every frame the generator makes
// is wrapped as a mirror session or a tunnel would carry it, so a decoder is
// checked against the same calls in each shape.
const (
	EncapNone    = ""
	EncapGRE     = "gre"     // outer IPv4 + GRE (0x0800/0x86dd) + the inner IP packet
	EncapGRETEB  = "gre-teb" // outer IPv4 + GRE 0x6558 + the inner Ethernet frame
	EncapERSPAN2 = "erspan2" // outer IPv4 + GRE 0x88be with sequence + ERSPAN II + inner frame
	EncapERSPAN3 = "erspan3" // outer IPv4 + GRE 0x22eb with sequence + ERSPAN III + inner frame
	EncapVXLAN   = "vxlan"   // outer IPv4 + UDP 4789 + VXLAN + inner frame
	EncapMPLS    = "mpls"    // Ethernet 0x8847 + two labels + the inner IP packet
	EncapQinQ    = "qinq"    // 802.1ad S-tag 100 in front of the frame's own tagging
)

// Encaps lists every encapsulation the generator writes.
var Encaps = []string{EncapGRE, EncapGRETEB, EncapERSPAN2, EncapERSPAN3, EncapVXLAN, EncapMPLS, EncapQinQ}

// TunnelAddrs are the outer IP addresses of every encapsulation (the
// mirror session's or the tunnel's own): they must never become call parties.
var TunnelAddrs = [2]netip.Addr{netip.AddrFrom4(encapSrcIP), netip.AddrFrom4(encapDstIP)}

var (
	encapSrcIP  = [4]byte{192, 0, 2, 1}
	encapDstIP  = [4]byte{192, 0, 2, 2}
	encapSrcMAC = [6]byte{0x02, 0xee, 0, 0, 0, 1}
	encapDstMAC = [6]byte{0x02, 0xee, 0, 0, 0, 2}
)

// encapsulate wraps frame (an Ethernet frame from the builder) as b.encap
// says, into b.outer; the result is valid until the next call.
func (b *builder) encapsulate(frame []byte) []byte {
	innerIP := frame[14:] // the IP packet, after the Ethernet header and tag
	etype := binary.BigEndian.Uint16(frame[12:14])
	if etype == uint16(layers.EthernetTypeDot1Q) {
		etype, innerIP = binary.BigEndian.Uint16(frame[16:18]), frame[18:]
	}
	o := b.outer[:0]
	eth := func(et uint16) {
		o = append(o, encapDstMAC[:]...)
		o = append(o, encapSrcMAC[:]...)
		o = binary.BigEndian.AppendUint16(o, et)
	}
	ip4 := func(proto byte, payload int) {
		start := len(o)
		b.encapID++
		o = append(o, 0x45, 0)
		o = binary.BigEndian.AppendUint16(o, uint16(20+payload))
		o = binary.BigEndian.AppendUint16(o, b.encapID)
		o = append(o, 0x40, 0, 64, proto, 0, 0)
		o = append(o, encapSrcIP[:]...)
		o = append(o, encapDstIP[:]...)
		binary.BigEndian.PutUint16(o[start+10:], ipChecksum(o[start:start+20]))
	}
	gre := func(proto uint16, seq bool) {
		if seq {
			b.encapSeq++
			o = append(o, 0x10, 0)
			o = binary.BigEndian.AppendUint16(o, proto)
			o = binary.BigEndian.AppendUint32(o, b.encapSeq)
			return
		}
		o = append(o, 0, 0)
		o = binary.BigEndian.AppendUint16(o, proto)
	}
	switch b.encap {
	case EncapGRE:
		eth(uint16(layers.EthernetTypeIPv4))
		ip4(47, 4+len(innerIP))
		gre(etype, false)
		o = append(o, innerIP...)
	case EncapGRETEB:
		eth(uint16(layers.EthernetTypeIPv4))
		ip4(47, 4+len(frame))
		gre(0x6558, false)
		o = append(o, frame...)
	case EncapERSPAN2:
		eth(uint16(layers.EthernetTypeIPv4))
		ip4(47, 8+8+len(frame))
		gre(0x88be, true)
		// ver 1, vlan 0 | cos 0, en 3 (tag kept), t 0, session 7 | index 0
		o = append(o, 0x10, 0x00, 0x18, 0x07, 0, 0, 0, 0)
		o = append(o, frame...)
	case EncapERSPAN3:
		eth(uint16(layers.EthernetTypeIPv4))
		ip4(47, 8+12+len(frame))
		gre(0x22eb, true)
		// ver 2, vlan 0 | cos, bso, t, session 7 | timestamp | sgt 0, p 0, ft 0 (Ethernet), hwid 1, d 0, gra 1, o 0
		o = append(o, 0x20, 0x00, 0x00, 0x07)
		o = binary.BigEndian.AppendUint32(o, b.encapSeq*20000)
		o = append(o, 0, 0, 0x00, 0x04|0x02)
		o = append(o, frame...)
	case EncapVXLAN:
		eth(uint16(layers.EthernetTypeIPv4))
		ip4(17, 8+8+len(frame))
		o = binary.BigEndian.AppendUint16(o, 49152+b.encapID%16384) // source port: a flow hash in real VTEPs
		o = binary.BigEndian.AppendUint16(o, 4789)
		o = binary.BigEndian.AppendUint16(o, uint16(8+8+len(frame)))
		o = append(o, 0, 0)                            // no UDP checksum (RFC 7348 allows 0)
		o = append(o, 0x08, 0, 0, 0, 0, 0x10, 0x01, 0) // I flag, VNI 4097
		o = append(o, frame...)
	case EncapMPLS:
		eth(0x8847)
		o = append(o, 0x00, 0x01, 0x00, 64) // label 16, not bottom of stack
		o = append(o, 0x00, 0x02, 0x11, 64) // label 33, bottom of stack
		o = append(o, innerIP...)
	case EncapQinQ:
		o = append(o, frame[:12]...)
		o = append(o, 0x88, 0xa8, 0x00, 100) // S-tag, VLAN 100
		if binary.BigEndian.Uint16(frame[12:14]) != uint16(layers.EthernetTypeDot1Q) {
			o = append(o, 0x81, 0x00, 0x00, 42) // C-tag 42 when the frame had none
		}
		o = append(o, frame[12:]...)
	default:
		return frame
	}
	b.outer = o
	return o
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
