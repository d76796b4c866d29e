// Package decode turns link-layer frames into transport payloads: Ethernet,
// 802.1Q/802.1ad stacks, MPLS, PPPoE, Linux SLL and SLL2, loopback/Null and
// raw IP; IPv4 (with fragment reassembly and IP-in-IP) and IPv6 (with
// fragment reassembly); GRE, ERSPAN I/II/III and VXLAN tunnels (tunnel.go);
// UDP, TCP and SCTP. Layer structs are reused: decoding allocates nothing per packet in
// steady state (fragments are the exception; they are rare).
package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Transport is the L4 protocol of a Packet.
type Transport uint8

const (
	UDP Transport = iota + 1
	TCP
	SCTP // Payload holds the chunks (see NextSCTPData)
)

func (t Transport) String() string {
	switch t {
	case UDP:
		return "udp"
	case TCP:
		return "tcp"
	case SCTP:
		return "sctp"
	}
	return "?"
}

// TCP flag bits kept in Packet.TCPFlags.
const (
	FlagFIN = 1 << iota
	FlagSYN
	FlagRST
	FlagACK
)

// Packet is one decoded datagram or segment. Payload aliases the frame (or
// the reassembly buffer) and is valid only until the next Decode call.
type Packet struct {
	Time      time.Time
	Src, Dst  netip.AddrPort
	Transport Transport
	Payload   []byte
	TCPSeq    uint32
	TCPFlags  uint8
	VLAN      uint16 // innermost 802.1Q id, 0 when untagged
	Fragment  bool   // Payload came out of IP reassembly
	Encap     Encap  // tunnels and mirror encapsulations it was found in
	TTL       uint8
	IPID      uint16 // IPv4 identification (0 for IPv6): tells a retransmission from a copy
	// Frame and Link are the whole captured frame and its link type, set by
	// the packet path for consumers that store packets (per-call pcaps).
	Frame []byte
	Link  layers.LinkType
}

// Stats counts what the decoder saw, by kind; read them with Stats().
type Stats struct {
	Frames       uint64
	Decoded      uint64 // UDP or TCP packets produced
	NotIP        uint64 // ARP, LLDP, ... (normal)
	NotTransport uint64 // ICMP, SCTP, ... (normal)
	Errors       uint64 // malformed frames
	Fragments    uint64 // IP fragments received
	Reassembled  uint64 // datagrams rebuilt from fragments
	Tunnelled    uint64 // encapsulation headers unwrapped (GRE, ERSPAN, VXLAN, MPLS, 802.1ad)
}

// Decoder decodes frames of one link type. Not safe for concurrent use: one
// per capture goroutine.
type Decoder struct {
	link    layers.LinkType
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	loop    layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	udp     layers.UDP
	tcp     layers.TCP
	payload gopacket.Payload
	decoded []gopacket.LayerType

	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	defrag  *defragmenter
	lastGC  time.Time
	stats   Stats
	vxlan   uint16 // UDP port of VXLAN, 0 = none
	depth   int    // encapsulations unwrapped in the current frame
	slow    bool   // tests: no fast path (fast.go)
}

// linkSLL2 is LINKTYPE_LINUX_SLL2 (276, tcpdump -i any on newer libpcap),
// which gopacket v1.1.19 does not know; its LinkType is a uint8, so pcapgo
// hands 276 over truncated to 20 (a value libpcap never assigned).
const linkSLL2 layers.LinkType = 276 & 0xff

// New returns a decoder for frames of the given link type.
func New(link layers.LinkType) (*Decoder, error) {
	d := &Decoder{
		link:    link,
		decoded: make([]gopacket.LayerType, 0, 8),
		parsers: make(map[gopacket.LayerType]*gopacket.DecodingLayerParser, 6),
		defrag:  newDefragmenter(),
		vxlan:   DefaultVXLANPort,
	}
	all := []gopacket.DecodingLayer{&d.eth, &d.dot1q, &d.sll, &d.loop, &d.ip4, &d.ip6, &d.udp, &d.tcp, &d.payload}
	for _, first := range []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL,
		layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6, layers.LayerTypeUDP} {
		p := gopacket.NewDecodingLayerParser(first)
		p.SetDecodingLayerContainer(gopacket.DecodingLayerSparse(nil))
		for _, l := range all {
			p.AddDecodingLayer(l)
		}
		p.IgnoreUnsupported = true
		d.parsers[first] = p
	}
	switch link {
	case layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeNull, layers.LinkTypeLoop,
		layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, linkSLL2, 12, 14:
	default:
		return nil, fmt.Errorf("%w: %d (%s)", ErrLinkType, link, link)
	}
	return d, nil
}

// SetVXLANPort sets the UDP port whose datagrams are VXLAN (default 4789;
// 0 = none).
func (d *Decoder) SetVXLANPort(port uint16) { d.vxlan = port }

// Stats returns the counters so far.
func (d *Decoder) Stats() Stats { return d.stats }

// Add returns the sum of two decoders' counters.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Frames: s.Frames + o.Frames, Decoded: s.Decoded + o.Decoded,
		NotIP: s.NotIP + o.NotIP, NotTransport: s.NotTransport + o.NotTransport,
		Errors: s.Errors + o.Errors, Fragments: s.Fragments + o.Fragments, Reassembled: s.Reassembled + o.Reassembled,
		Tunnelled: s.Tunnelled + o.Tunnelled,
	}
}

// Decode decodes one frame into p. It returns false with a nil error for
// frames that carry no UDP/TCP/SCTP payload (ARP, ICMP, a fragment still waiting
// for its siblings), and an error for malformed frames.
func (d *Decoder) Decode(data []byte, ts time.Time, p *Packet) (bool, error) {
	d.stats.Frames++
	*p = Packet{Time: ts}
	if d.link == layers.LinkTypeEthernet && !d.slow && d.fastUDP(data, p) {
		return true, nil
	}
	d.depth = 0
	first, data, err := d.firstLayer(data)
	if err != nil {
		d.stats.Errors++
		return false, err
	}
	if first == gopacket.LayerTypeZero {
		d.stats.NotIP++
		return false, nil
	}
	return d.decodeFrom(first, data, p)
}

func (d *Decoder) decodeFrom(first gopacket.LayerType, data []byte, p *Packet) (bool, error) {
	d.decoded = d.decoded[:0]
	if err := d.parsers[first].DecodeLayers(data, &d.decoded); err != nil {
		var unsup gopacket.UnsupportedLayerType
		if !errors.As(err, &unsup) {
			d.stats.Errors++
			return false, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	var haveIP, haveL4 bool
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeEthernet:
			if d.eth.EthernetType == etQinQ {
				p.Encap |= EncapQinQ
			}
		case layers.LayerTypeDot1Q:
			p.VLAN = d.dot1q.VLANIdentifier
		case layers.LayerTypeIPv4:
			haveIP = true
			if d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
				return d.reassemble4(p)
			}
			p.TTL, p.IPID = d.ip4.TTL, d.ip4.Id
		case layers.LayerTypeIPv6:
			haveIP = true
			p.TTL = d.ip6.HopLimit
			if d.ip6.NextHeader == layers.IPProtocolIPv6Fragment {
				return d.reassemble6(p)
			}
		case layers.LayerTypeUDP:
			haveL4 = true
			p.Transport = UDP
			p.Src = netip.AddrPortFrom(d.srcAddr(), uint16(d.udp.SrcPort))
			p.Dst = netip.AddrPortFrom(d.dstAddr(), uint16(d.udp.DstPort))
			p.Payload = d.udp.Payload
		case layers.LayerTypeTCP:
			haveL4 = true
			p.Transport = TCP
			p.Src = netip.AddrPortFrom(d.srcAddr(), uint16(d.tcp.SrcPort))
			p.Dst = netip.AddrPortFrom(d.dstAddr(), uint16(d.tcp.DstPort))
			p.Payload = d.tcp.Payload
			p.TCPSeq = d.tcp.Seq
			p.TCPFlags = tcpFlags(&d.tcp)
		}
	}
	switch {
	case haveL4 && p.Transport == UDP && d.vxlan != 0 && p.Dst.Port() == d.vxlan:
		in, ok := vxlanInner(p.Payload, p)
		if !ok {
			// A VTEP's or mirror's own datagram: never a call's packet.
			d.stats.Errors++
			return false, fmt.Errorf("%w: VXLAN header", ErrMalformed)
		}
		return d.unwrap(in, p)
	case haveIP && !haveL4:
		switch proto, payload := d.ipPayload(); proto {
		case ipGRE:
			if in, ok := greInner(payload, p); ok {
				return d.unwrap(in, p)
			}
		case ipSCTP:
			if sctp(payload, d.srcAddr(), d.dstAddr(), p) {
				d.stats.Decoded++
				return true, nil
			}
		}
	case !haveIP && !haveL4 && len(d.decoded) > 0:
		if et, payload, ok := d.linkPayload(d.decoded[len(d.decoded)-1]); ok {
			if in, ok := etherInner(et, payload, p); ok {
				return d.unwrap(in, p)
			}
		}
	}
	switch {
	case haveL4:
		d.stats.Decoded++
		return true, nil
	case haveIP:
		d.stats.NotTransport++
	default:
		d.stats.NotIP++
	}
	return false, nil
}

// srcAddr and dstAddr read the innermost IP header decoded (IP-in-IP reuses
// the same struct, so the inner header wins).
func (d *Decoder) srcAddr() netip.Addr { return d.ipAddr(true) }
func (d *Decoder) dstAddr() netip.Addr { return d.ipAddr(false) }

func (d *Decoder) ipAddr(src bool) netip.Addr {
	last := gopacket.LayerTypeZero
	for _, lt := range d.decoded {
		if lt == layers.LayerTypeIPv4 || lt == layers.LayerTypeIPv6 {
			last = lt
		}
	}
	var b []byte
	switch {
	case last == layers.LayerTypeIPv4 && src:
		b = d.ip4.SrcIP
	case last == layers.LayerTypeIPv4:
		b = d.ip4.DstIP
	case src:
		b = d.ip6.SrcIP
	default:
		b = d.ip6.DstIP
	}
	if len(b) == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	if len(b) == 16 {
		return netip.AddrFrom16([16]byte(b))
	}
	return netip.Addr{}
}

func tcpFlags(t *layers.TCP) uint8 {
	var f uint8
	if t.FIN {
		f |= FlagFIN
	}
	if t.SYN {
		f |= FlagSYN
	}
	if t.RST {
		f |= FlagRST
	}
	if t.ACK {
		f |= FlagACK
	}
	return f
}

// firstLayer maps the link type to the first layer to decode, handling the
// link headers gopacket lacks (SLL2) or that need a look at the data (raw IP).
func (d *Decoder) firstLayer(data []byte) (gopacket.LayerType, []byte, error) {
	switch d.link {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet, data, nil
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL, data, nil
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback, data, nil
	case linkSLL2:
		if len(data) < 20 {
			return 0, nil, fmt.Errorf("%w: SLL2 header %d < 20 bytes", ErrMalformed, len(data))
		}
		return etherTypeLayer(binary.BigEndian.Uint16(data[0:2])), data[20:], nil
	default: // raw IP (101, 12, 14, IPv4, IPv6)
		if len(data) == 0 {
			return 0, nil, fmt.Errorf("%w: empty raw IP frame", ErrMalformed)
		}
		switch data[0] >> 4 {
		case 4:
			return layers.LayerTypeIPv4, data, nil
		case 6:
			return layers.LayerTypeIPv6, data, nil
		}
		return gopacket.LayerTypeZero, data, nil
	}
}

func etherTypeLayer(et uint16) gopacket.LayerType {
	switch layers.EthernetType(et) {
	case layers.EthernetTypeIPv4:
		return layers.LayerTypeIPv4
	case layers.EthernetTypeIPv6:
		return layers.LayerTypeIPv6
	}
	return gopacket.LayerTypeZero
}

// reassemble4 feeds an IPv4 fragment to the reassembler and decodes the
// transport of a completed datagram (the header in d.ip4 names the addresses).
func (d *Decoder) reassemble4(p *Packet) (bool, error) {
	d.stats.Fragments++
	d.gcFragments(p.Time)
	proto, payload, err := d.defrag.add4(&d.ip4, p.Time)
	return d.reassembled(p, "ipv4", proto, payload, err, d.ip4.TTL)
}

func (d *Decoder) reassemble6(p *Packet) (bool, error) {
	d.stats.Fragments++
	d.gcFragments(p.Time)
	proto, payload, err := d.defrag.add6(&d.ip6, p.Time)
	return d.reassembled(p, "ipv6", proto, payload, err, d.ip6.HopLimit)
}

// reassembled decodes the transport of the datagram a fragment completed
// (payload nil: not complete yet) into p, marked as reassembled, with the
// fragment's VLAN and the datagram's TTL (ttl).
func (d *Decoder) reassembled(p *Packet, ip string, proto layers.IPProtocol, payload []byte, err error, ttl uint8) (bool, error) {
	if err != nil {
		d.stats.Errors++
		return false, fmt.Errorf("%w: %s: %v", ErrFragment, ip, err)
	}
	if payload == nil {
		return false, nil
	}
	d.stats.Reassembled++
	vlan := p.VLAN
	ok, err := d.transport(proto, payload, p)
	p.VLAN, p.Fragment, p.TTL = vlan, true, ttl
	return ok, err
}

// unwrap decodes what an encapsulation carries into p, in place of the
// outer packet (whose addresses are the tunnel's or the mirror session's).
func (d *Decoder) unwrap(in inner, p *Packet) (bool, error) {
	d.depth++
	if d.depth > maxEncap {
		d.stats.Errors++
		return false, fmt.Errorf("%w: more than %d encapsulations", ErrMalformed, maxEncap)
	}
	d.stats.Tunnelled++
	*p = Packet{Time: p.Time, VLAN: p.VLAN, Encap: p.Encap}
	return d.decodeFrom(in.first, in.data, p)
}

// transport decodes UDP/TCP from a reassembled IP payload; the IP header in
// d.ip4/d.ip6 still names the addresses.
func (d *Decoder) transport(proto layers.IPProtocol, payload []byte, p *Packet) (bool, error) {
	src, dst := d.srcAddr(), d.dstAddr()
	switch proto {
	case layers.IPProtocolUDP:
		if err := d.udp.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
			d.stats.Errors++
			return false, fmt.Errorf("%w: udp: %v", ErrMalformed, err)
		}
		p.Transport = UDP
		p.Src = netip.AddrPortFrom(src, uint16(d.udp.SrcPort))
		p.Dst = netip.AddrPortFrom(dst, uint16(d.udp.DstPort))
		p.Payload = d.udp.Payload
	case layers.IPProtocolTCP:
		if err := d.tcp.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
			d.stats.Errors++
			return false, fmt.Errorf("%w: tcp: %v", ErrMalformed, err)
		}
		p.Transport = TCP
		p.Src = netip.AddrPortFrom(src, uint16(d.tcp.SrcPort))
		p.Dst = netip.AddrPortFrom(dst, uint16(d.tcp.DstPort))
		p.Payload = d.tcp.Payload
		p.TCPSeq = d.tcp.Seq
		p.TCPFlags = tcpFlags(&d.tcp)
	case ipSCTP:
		if !sctp(payload, src, dst, p) {
			d.stats.Errors++
			return false, fmt.Errorf("%w: sctp: header truncated", ErrMalformed)
		}
	default:
		d.stats.NotTransport++
		return false, nil
	}
	d.stats.Decoded++
	return true, nil
}

// fragmentTTL is how long an incomplete datagram waits for its other fragments.
const fragmentTTL = 30 * time.Second

func (d *Decoder) gcFragments(now time.Time) {
	if now.Sub(d.lastGC) < time.Second {
		return
	}
	d.lastGC = now
	d.defrag.discardOlderThan(now.Add(-fragmentTTL))
}

// PayloadOffset returns where payload starts inside frame, or -1 when it
// does not alias it (a payload rebuilt from IP fragments).
func PayloadOffset(frame, payload []byte) int {
	if len(payload) == 0 || len(frame) == 0 {
		return -1
	}
	off := cap(frame) - cap(payload)
	if off < 0 || off+len(payload) > len(frame) || &frame[off] != &payload[0] {
		return -1
	}
	return off
}
