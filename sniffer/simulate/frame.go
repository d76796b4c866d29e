package simulate

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// host is one end of the simulated network.
type host struct {
	mac  net.HardwareAddr
	ip   net.IP
	addr netip.Addr
	uri  string // host part of a SIP URI: "10.1.0.5" or "[2001:db8:1::6]"
}

func newHost(addr netip.Addr, mac [6]byte) host {
	h := host{mac: net.HardwareAddr(mac[:]), ip: net.IP(addr.AsSlice()), addr: addr, uri: addr.String()}
	if addr.Is6() {
		h.uri = "[" + h.uri + "]"
	}
	return h
}

// builder serialises frames with reused layers and buffers: after warm-up,
// building a frame does not allocate.
type builder struct {
	opts    gopacket.SerializeOptions
	buf     gopacket.SerializeBuffer // the frame
	ubuf    gopacket.SerializeBuffer // a UDP datagram to fragment
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	udp     layers.UDP
	tcp     layers.TCP
	payload gopacket.Payload
	ls      []gopacket.SerializableLayer
	ipID    uint16
	vlan    uint16
	v6      bool
	sctpBuf []byte
	// encap wraps every frame (Options.Encap); outer is its buffer.
	encap    string
	outer    []byte
	encapID  uint16
	encapSeq uint32
}

func newBuilder(vlan uint16, v6 bool, ipID uint16) *builder {
	return &builder{
		opts: gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		buf:  gopacket.NewSerializeBufferExpectedSize(64, 1600),
		ubuf: gopacket.NewSerializeBufferExpectedSize(0, 1600),
		ls:   make([]gopacket.SerializableLayer, 0, 6),
		ipID: ipID,
		vlan: vlan,
		v6:   v6,
	}
}

// network fills b.ls with the link and IP layers from src to dst and returns
// the IP layer (for transport checksums).
func (b *builder) network(src, dst *host, proto layers.IPProtocol) gopacket.NetworkLayer {
	b.ls = b.ls[:0]
	b.eth.SrcMAC, b.eth.DstMAC = src.mac, dst.mac
	etype := layers.EthernetTypeIPv4
	if b.v6 {
		etype = layers.EthernetTypeIPv6
	}
	b.ls = append(b.ls, &b.eth)
	if b.vlan != 0 {
		b.eth.EthernetType = layers.EthernetTypeDot1Q
		b.dot1q.VLANIdentifier = b.vlan
		b.dot1q.Type = etype
		b.ls = append(b.ls, &b.dot1q)
	} else {
		b.eth.EthernetType = etype
	}
	if b.v6 {
		b.ip6 = layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.ip, DstIP: dst.ip}
		b.ls = append(b.ls, &b.ip6)
		return &b.ip6
	}
	b.ipID++
	b.ip4 = layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: b.ipID, Flags: layers.IPv4DontFragment,
		Protocol: proto, SrcIP: src.ip, DstIP: dst.ip}
	b.ls = append(b.ls, &b.ip4)
	return &b.ip4
}

func (b *builder) serialize() ([]byte, error) {
	if err := gopacket.SerializeLayers(b.buf, b.opts, b.ls...); err != nil {
		return nil, fmt.Errorf("simulate: serialize frame: %w", err)
	}
	if b.encap != EncapNone {
		return b.encapsulate(b.buf.Bytes()), nil
	}
	return b.buf.Bytes(), nil
}

// udpFrame builds one unfragmented UDP frame; the result is valid until the
// next call.
func (b *builder) udpFrame(src, dst *host, sport, dport uint16, payload []byte) ([]byte, error) {
	nl := b.network(src, dst, layers.IPProtocolUDP)
	b.udp = layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := b.udp.SetNetworkLayerForChecksum(nl); err != nil {
		return nil, fmt.Errorf("simulate: udp checksum: %w", err)
	}
	b.payload = payload
	b.ls = append(b.ls, &b.udp, &b.payload)
	return b.serialize()
}

// udpFragments builds the UDP datagram over IPv4 as fragments whose IP
// packets are at most mtu bytes, calling emit for each frame.
func (b *builder) udpFragments(src, dst *host, sport, dport uint16, payload []byte, mtu int, emit func([]byte)) error {
	b.network(src, dst, layers.IPProtocolUDP)
	b.udp = layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := b.udp.SetNetworkLayerForChecksum(&b.ip4); err != nil {
		return fmt.Errorf("simulate: udp checksum: %w", err)
	}
	b.payload = payload
	if err := gopacket.SerializeLayers(b.ubuf, b.opts, &b.udp, &b.payload); err != nil {
		return fmt.Errorf("simulate: serialize datagram: %w", err)
	}
	dgram := b.ubuf.Bytes()
	chunk := (mtu - 20) &^ 7
	b.ls = append(b.ls, &b.payload)
	for off := 0; off < len(dgram); {
		end := min(off+chunk, len(dgram))
		// gopacket's ip4defrag refuses fragments under 8 bytes, even a last
		// one (legal on the wire): end this fragment early instead.
		if rest := len(dgram) - end; rest > 0 && rest < 8 {
			end -= 8
		}
		b.ip4.Flags = 0
		if end < len(dgram) {
			b.ip4.Flags = layers.IPv4MoreFragments
		}
		b.ip4.FragOffset = uint16(off / 8)
		b.payload = dgram[off:end]
		data, err := b.serialize()
		if err != nil {
			return err
		}
		emit(data)
		off = end
	}
	return nil
}

// tcpFrame builds one TCP segment (ACK, and PSH when push) carrying payload.
func (b *builder) tcpFrame(src, dst *host, sport, dport uint16, seq, ack uint32, push bool, payload []byte) ([]byte, error) {
	nl := b.network(src, dst, layers.IPProtocolTCP)
	b.tcp = layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport),
		Seq: seq, Ack: ack, ACK: true, PSH: push, Window: 64240}
	if err := b.tcp.SetNetworkLayerForChecksum(nl); err != nil {
		return nil, fmt.Errorf("simulate: tcp checksum: %w", err)
	}
	b.payload = payload
	b.ls = append(b.ls, &b.tcp, &b.payload)
	return b.serialize()
}

// sctpFrame builds one SCTP packet with one DATA chunk (RFC 4168: one SIP
// message per user message; first and last say whether this chunk begins
// and ends it), written by hand: gopacket's SCTPData counts the padding in
// the chunk length.
func (b *builder) sctpFrame(src, dst *host, sport, dport uint16, vtag, tsn uint32, first, last bool, payload []byte) ([]byte, error) {
	b.network(src, dst, layers.IPProtocolSCTP)
	p := b.sctpBuf[:0]
	p = binary.BigEndian.AppendUint16(p, sport)
	p = binary.BigEndian.AppendUint16(p, dport)
	p = binary.BigEndian.AppendUint32(p, vtag)
	p = append(p, 0, 0, 0, 0) // checksum, below
	var flags byte
	if first {
		flags |= 0x02
	}
	if last {
		flags |= 0x01
	}
	p = append(p, 0, flags) // DATA
	p = binary.BigEndian.AppendUint16(p, uint16(16+len(payload)))
	p = binary.BigEndian.AppendUint32(p, tsn)
	p = append(p, 0, 0, 0, 0, 0, 0, 0, 0) // stream 0, sequence 0, PPID 0 (as Asterisk and most stacks send)
	p = append(p, payload...)
	for len(p)%4 != 0 {
		p = append(p, 0)
	}
	binary.LittleEndian.PutUint32(p[8:12], crc32.Checksum(p, castagnoli))
	b.sctpBuf = p
	b.payload = p
	b.ls = append(b.ls, &b.payload)
	return b.serialize()
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)
