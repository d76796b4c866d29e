package decode

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/gopacket/layers"
)

// The fast path decodes the frames that make up almost all of a VoIP
// capture — Ethernet, at most one 802.1Q tag, a 20-byte IPv4 header that is
// not a fragment, UDP — with a few bounds checks and no layer structs
// (gopacket's DecodingLayerParser costs several times more per frame:
// BenchmarkDecodeUDP). Anything else, or anything the fast path would have
// to judge (options, a length gopacket calls invalid, a fragment, VXLAN),
// goes the general way; FuzzFastPath checks both ways give the same Packet.

const ipUDP = 17

// fastUDP decodes data (a whole Ethernet frame) into p when it is a plain
// UDP/IPv4 frame; false means: use the general decoder.
func (d *Decoder) fastUDP(data []byte, p *Packet) bool {
	if !plainUDP(data, d.vxlan, p) {
		return false
	}
	d.stats.Decoded++
	return true
}

// Peek fills p's addresses and payload from a frame the fast path decodes
// (Ethernet, plain UDP over IPv4), without counting it anywhere; false for
// any other frame. The packet path looks ahead with it at the packets it
// is about to handle, to load their calls' state early.
func (d *Decoder) Peek(data []byte, p *Packet) bool {
	return d.link == layers.LinkTypeEthernet && !d.slow && plainUDP(data, d.vxlan, p)
}

// plainUDP is the fast path's decoding, vxlan the VXLAN port (left to the
// general decoder).
func plainUDP(data []byte, vxlan uint16, p *Packet) bool {
	if len(data) < 14+20+8 {
		return false
	}
	et := binary.BigEndian.Uint16(data[12:14])
	ip := data[14:]
	var vlan uint16
	if et == etDot1Q {
		vlan = binary.BigEndian.Uint16(data[14:16]) & 0x0fff
		et = binary.BigEndian.Uint16(data[16:18])
		ip = data[18:]
	}
	if et != etIPv4 || len(ip) < 20+8 || ip[0]&0x0f != 5 || ip[9] != ipUDP {
		return false
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // more fragments or an offset
		return false
	}
	switch n := int(binary.BigEndian.Uint16(ip[2:4])); {
	case n == 0: // TSO: the length of the captured data (gopacket's reading)
	case n < 20+8:
		return false
	case n < len(ip):
		ip = ip[:n] // Ethernet padding
	}
	u := ip[20:]
	payload := u[8:]
	switch n := int(binary.BigEndian.Uint16(u[4:6])); {
	case n == 0: // jumbogram: the rest
	case n < 8:
		return false
	case n-8 < len(payload):
		payload = payload[:n-8]
	}
	sport, dport := binary.BigEndian.Uint16(u[0:2]), binary.BigEndian.Uint16(u[2:4])
	if vxlan != 0 && dport == vxlan {
		return false
	}
	p.VLAN = vlan
	p.TTL = ip[8]
	p.IPID = binary.BigEndian.Uint16(ip[4:6])
	p.Transport = UDP
	p.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), sport)
	p.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), dport)
	p.Payload = payload
	return true
}
