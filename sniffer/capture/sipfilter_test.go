package capture

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

func TestSIPPortFilter(t *testing.T) {
	vm, err := bpf.NewVM(SIPPortFilter([]PortRange{{5060, 5060}, {5070, 5080}}))
	if err != nil {
		t.Fatal(err)
	}
	build := func(vlan bool, v6 bool, proto layers.IPProtocol, sport, dport uint16, frag bool) []byte {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ls := []gopacket.SerializableLayer{eth}
		et := layers.EthernetTypeIPv4
		if v6 {
			et = layers.EthernetTypeIPv6
		}
		if vlan {
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: 7, Type: et})
		} else {
			eth.EthernetType = et
		}
		var nl gopacket.NetworkLayer
		if v6 {
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
			ls, nl = append(ls, ip), ip
		} else {
			// IHL 6: an options word, so the port offset must come from IHL.
			ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2},
				Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}}
			if frag {
				ip.FragOffset = 100
			}
			ls, nl = append(ls, ip), ip
		}
		switch proto {
		case layers.IPProtocolTCP:
			tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), ACK: true, Window: 100}
			_ = tcp.SetNetworkLayerForChecksum(nl)
			ls = append(ls, tcp)
		case layers.IPProtocolUDP:
			udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
			_ = udp.SetNetworkLayerForChecksum(nl)
			ls = append(ls, udp)
		default:
			ls = append(ls, gopacket.Payload([]byte{byte(sport >> 8), byte(sport), byte(dport >> 8), byte(dport), 0, 0, 0, 0, 0, 0, 0, 0}))
		}
		ls = append(ls, gopacket.Payload("x"))
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"udp rtp", build(false, false, layers.IPProtocolUDP, 20000, 30000, false), true},
		{"tcp to 5060", build(false, false, layers.IPProtocolTCP, 40000, 5060, false), true},
		{"tcp from 5075", build(false, false, layers.IPProtocolTCP, 5075, 40000, false), true},
		{"tcp web", build(false, false, layers.IPProtocolTCP, 40000, 443, false), false},
		{"tcp 5081", build(false, false, layers.IPProtocolTCP, 40000, 5081, false), false},
		{"vlan tcp to 5060", build(true, false, layers.IPProtocolTCP, 40000, 5060, false), true},
		{"vlan tcp web", build(true, false, layers.IPProtocolTCP, 40000, 80, false), false},
		{"ipv6 tcp to 5070", build(false, true, layers.IPProtocolTCP, 40000, 5070, false), true},
		{"ipv6 tcp web", build(false, true, layers.IPProtocolTCP, 40000, 443, false), false},
		{"vlan ipv6 tcp to 5060", build(true, true, layers.IPProtocolTCP, 5060, 40000, false), true},
		{"sctp to 5060", build(false, false, layers.IPProtocolSCTP, 40000, 5060, false), true},
		{"sctp elsewhere", build(false, false, layers.IPProtocolSCTP, 40000, 2905, false), false},
		{"tcp fragment", build(false, false, layers.IPProtocolTCP, 40000, 443, true), true},
		{"gre", build(false, false, layers.IPProtocolGRE, 0, 0x0800, false), true},
	}
	for _, tt := range tests {
		checkFilter(t, vm, tt.name, tt.frame, tt.want)
	}
	if _, err := bpf.Assemble(SIPPortFilter(make([]PortRange, maxFilterRanges))); err != nil {
		t.Errorf("%d ranges do not assemble: %v", maxFilterRanges, err)
	}
}

// TestSIPPortFilterLoads: the kernel accepts the program (live capture on
// lo; skips without CAP_NET_RAW).
func TestSIPPortFilterLoads(t *testing.T) {
	src, err := OpenLive(LiveOptions{Interface: "lo", Filter: SIPPortFilter([]PortRange{{5060, 5061}}), BlockSize: 1 << 16, NumBlocks: 2})
	if err != nil {
		plain, err2 := OpenLive(LiveOptions{Interface: "lo", BlockSize: 1 << 16, NumBlocks: 2})
		if err2 != nil {
			t.Skipf("live capture not permitted here (%v)", err2)
		}
		plain.Close()
		t.Fatalf("the kernel refused the filter: %v", err)
	}
	src.Close()
}

func TestUDPPortFilter(t *testing.T) {
	vm, err := bpf.NewVM(UDPPortFilter())
	if err != nil {
		t.Fatal(err)
	}
	frame := func(types ...uint16) []byte {
		b := make([]byte, 12, 64)
		for i, et := range types {
			b = append(b, byte(et>>8), byte(et))
			if i < len(types)-1 {
				b = append(b, 0, 42) // tag control
			}
		}
		return append(b, make([]byte, 40)...)
	}
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"ipv4", frame(0x0800), true},
		{"ipv6", frame(0x86dd), true},
		{"vlan ipv4", frame(0x8100, 0x0800), true},
		{"qinq", frame(0x88a8, 0x8100, 0x0800), true},
		{"double 802.1Q", frame(0x8100, 0x8100, 0x0800), true},
		{"old qinq", frame(0x9100, 0x8100, 0x0800), true},
		{"mpls", frame(0x8847), true},
		{"vlan mpls", frame(0x8100, 0x8847), true},
		{"arp", frame(0x0806), false},
		{"vlan arp", frame(0x8100, 0x0806), false},
		{"lldp", frame(0x88cc), false},
	}
	for _, tt := range tests {
		checkFilter(t, vm, tt.name, tt.frame, tt.want)
	}
}

// checkFilter runs one frame through the filter and checks the verdict.
func checkFilter(t *testing.T, vm *bpf.VM, name string, frame []byte, want bool) {
	t.Helper()
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatal(err)
	}
	if got := n > 0; got != want {
		t.Errorf("%s: accepted %v, want %v", name, got, want)
	}
}
