package decode

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	macA = net.HardwareAddr{0, 1, 2, 3, 4, 5}
	macB = net.HardwareAddr{0, 1, 2, 3, 4, 6}
	v4A  = net.IP{10, 0, 0, 1}
	v4B  = net.IP{10, 0, 0, 2}
	v6A  = net.ParseIP("2001:db8::1")
	v6B  = net.ParseIP("2001:db8::2")
	sip  = []byte("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n")
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ip4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: v4A, DstIP: v4B}
}

func udp(t testing.TB, nl gopacket.NetworkLayer) *layers.UDP {
	u := &layers.UDP{SrcPort: 5060, DstPort: 5062}
	if err := u.SetNetworkLayerForChecksum(nl); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDecodeLinkTypes(t *testing.T) {
	want4 := netip.MustParseAddrPort("10.0.0.1:5060")
	want6 := netip.MustParseAddrPort("[2001:db8::1]:5060")
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
	}
	tests := []struct {
		name     string
		link     layers.LinkType
		frame    func(t testing.TB) []byte
		wantSrc  netip.AddrPort
		wantVLAN uint16
		wantTr   Transport
	}{
		{"ethernet ipv4 udp", layers.LinkTypeEthernet, func(t testing.TB) []byte {
			ip := ip4(layers.IPProtocolUDP)
			return serialize(t, eth(layers.EthernetTypeIPv4), ip, udp(t, ip), gopacket.Payload(sip))
		}, want4, 0, UDP},
		{"802.1Q", layers.LinkTypeEthernet, func(t testing.TB) []byte {
			ip := ip4(layers.IPProtocolUDP)
			return serialize(t, eth(layers.EthernetTypeDot1Q),
				&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, ip, udp(t, ip), gopacket.Payload(sip))
		}, want4, 42, UDP},
		{"QinQ", layers.LinkTypeEthernet, func(t testing.TB) []byte {
			ip := ip4(layers.IPProtocolUDP)
			return serialize(t, eth(layers.EthernetTypeQinQ),
				&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip, udp(t, ip), gopacket.Payload(sip))
		}, want4, 7, UDP},
		{"linux sll", layers.LinkTypeLinuxSLL, func(t testing.TB) []byte {
			ip := ip4(layers.IPProtocolUDP)
			sll := []byte{0, 0, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0, 0x08, 0x00}
			return append(sll, serialize(t, ip, udp(t, ip), gopacket.Payload(sip))...)
		}, want4, 0, UDP},
		{"linux sll2", linkSLL2, func(t testing.TB) []byte {
			ip := ip4(layers.IPProtocolUDP)
			sll2 := []byte{0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0}
			return append(sll2, serialize(t, ip, udp(t, ip), gopacket.Payload(sip))...)
		}, want4, 0, UDP},
		{"loopback null", layers.LinkTypeNull, func(t testing.TB) []byte {
			ip := ip4(layers.IPProtocolUDP)
			return serialize(t, &layers.Loopback{Family: layers.ProtocolFamilyIPv4}, ip, udp(t, ip), gopacket.Payload(sip))
		}, want4, 0, UDP},
		{"raw ipv4", layers.LinkTypeRaw, func(t testing.TB) []byte {
			ip := ip4(layers.IPProtocolUDP)
			return serialize(t, ip, udp(t, ip), gopacket.Payload(sip))
		}, want4, 0, UDP},
		{"raw ipv6", layers.LinkTypeRaw, func(t testing.TB) []byte {
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: v6A, DstIP: v6B}
			return serialize(t, ip, udp(t, ip), gopacket.Payload(sip))
		}, want6, 0, UDP},
		{"ethernet ipv6 tcp", layers.LinkTypeEthernet, func(t testing.TB) []byte {
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: v6A, DstIP: v6B}
			tcp := &layers.TCP{SrcPort: 5060, DstPort: 5062, Seq: 1000, ACK: true, PSH: true, Window: 1000}
			if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			return serialize(t, eth(layers.EthernetTypeIPv6), ip, tcp, gopacket.Payload(sip))
		}, want6, 0, TCP},
		{"pppoe", layers.LinkTypeEthernet, func(t testing.TB) []byte {
			ip := ip4(layers.IPProtocolUDP)
			inner := serialize(t, ip, udp(t, ip), gopacket.Payload(sip))
			hdr := []byte{0x11, 0, 0x18, 0xe5, byte((len(inner) + 2) >> 8), byte(len(inner) + 2), 0x00, 0x21}
			return serialize(t, eth(layers.EthernetTypePPPoESession), gopacket.Payload(append(hdr, inner...)))
		}, want4, 0, UDP},
		{"ip-in-ip", layers.LinkTypeEthernet, func(t testing.TB) []byte {
			outer := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolIPv4, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}}
			inner := ip4(layers.IPProtocolUDP)
			return serialize(t, eth(layers.EthernetTypeIPv4), outer, inner, udp(t, inner), gopacket.Payload(sip))
		}, want4, 0, UDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.link)
			if err != nil {
				t.Fatal(err)
			}
			var p Packet
			ok, err := d.Decode(tt.frame(t), time.Unix(1, 0), &p)
			if err != nil || !ok {
				t.Fatalf("Decode = %v, %v; want true, nil", ok, err)
			}
			if p.Src != tt.wantSrc || p.VLAN != tt.wantVLAN || p.Transport != tt.wantTr {
				t.Errorf("got src %v vlan %d %v; want %v vlan %d %v", p.Src, p.VLAN, p.Transport, tt.wantSrc, tt.wantVLAN, tt.wantTr)
			}
			if !bytes.Equal(p.Payload, sip) {
				t.Errorf("payload = %q", p.Payload)
			}
		})
	}
}

func TestDecodeNotIPAndErrors(t *testing.T) {
	d, _ := New(layers.LinkTypeEthernet)
	var p Packet
	arp := serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			SourceHwAddress: macA, SourceProtAddress: v4A, DstHwAddress: macB, DstProtAddress: v4B})
	if ok, err := d.Decode(arp, time.Time{}, &p); ok || err != nil {
		t.Errorf("ARP: got %v, %v; want false, nil", ok, err)
	}
	ip := ip4(layers.IPProtocolUDP)
	good := serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip, udp(t, ip), gopacket.Payload(sip))
	if ok, err := d.Decode(good[:20], time.Time{}, &p); ok || !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated: got %v, %v; want false, ErrMalformed", ok, err)
	}
	if _, err := New(layers.LinkTypeFDDI); !errors.Is(err, ErrLinkType) {
		t.Errorf("FDDI: err = %v, want ErrLinkType", err)
	}
	if st := d.Stats(); st.Frames != 2 || st.NotIP != 1 || st.Errors != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// fragments4 splits an IPv4/UDP datagram into frames of at most mtu IP bytes.
func fragments4(t testing.TB, payload []byte, mtu int, id uint16) [][]byte {
	ip := ip4(layers.IPProtocolUDP)
	whole := serialize(t, ip, udp(t, ip), gopacket.Payload(payload))
	body := whole[20:]
	step := (mtu - 20) &^ 7
	var out [][]byte
	for off := 0; off < len(body); off += step {
		end := min(off+step, len(body))
		f := ip4(layers.IPProtocolUDP)
		f.Id = id
		f.FragOffset = uint16(off / 8)
		if end < len(body) {
			f.Flags = layers.IPv4MoreFragments
		}
		out = append(out, serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, f, gopacket.Payload(body[off:end])))
	}
	return out
}

func fragments6(t testing.TB, payload []byte, step int, id uint32) [][]byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: v6A, DstIP: v6B}
	whole := serialize(t, ip, udp(t, ip), gopacket.Payload(payload))
	body := whole[40:]
	var out [][]byte
	for off := 0; off < len(body); off += step {
		end := min(off+step, len(body))
		fh := make([]byte, 8)
		fh[0] = byte(layers.IPProtocolUDP)
		of := uint16(off/8) << 3
		if end < len(body) {
			of |= 1
		}
		fh[2], fh[3] = byte(of>>8), byte(of)
		fh[4], fh[5], fh[6], fh[7] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
		f := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Fragment, SrcIP: v6A, DstIP: v6B}
		out = append(out, serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6},
			f, gopacket.Payload(append(fh, body[off:end]...))))
	}
	return out
}

func TestDecodeFragments(t *testing.T) {
	big := bytes.Repeat([]byte("a=rtpmap:0 PCMU/8000\r\n"), 60) // 1320 bytes
	tiny := bytes.Repeat([]byte("t"), 3*376+4-8)                // UDP datagram of 3×376+4 bytes
	tests := []struct {
		name   string
		frames [][]byte
		order  []int
	}{
		{"ipv4 in order", fragments4(t, big, 400, 7), []int{0, 1, 2, 3}},
		{"ipv4 reversed", fragments4(t, big, 400, 8), []int{3, 2, 1, 0}},
		{"ipv6 in order", fragments6(t, big, 512, 9), []int{0, 1, 2}},
		{"ipv6 shuffled", fragments6(t, big, 512, 10), []int{2, 0, 1}},
		// A legal last fragment of 4 bytes (gopacket's ip4defrag refuses < 8).
		{"ipv4 tiny last fragment", fragments4(t, tiny, 400, 11), []int{0, 1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.frames) != len(tt.order) {
				t.Fatalf("%d fragments, order has %d", len(tt.frames), len(tt.order))
			}
			d, _ := New(layers.LinkTypeEthernet)
			var p Packet
			for i, idx := range tt.order {
				ok, err := d.Decode(tt.frames[idx], time.Unix(100, 0), &p)
				if err != nil {
					t.Fatalf("fragment %d: %v", idx, err)
				}
				last := i == len(tt.order)-1
				if ok != last {
					t.Fatalf("fragment %d: ok = %v, want %v", idx, ok, last)
				}
			}
			want := big
			if strings.Contains(tt.name, "tiny") {
				want = tiny
			}
			if !bytes.Equal(p.Payload, want) || !p.Fragment || p.Src.Port() != 5060 {
				t.Errorf("reassembled %d bytes (fragment %v, src %v), want %d", len(p.Payload), p.Fragment, p.Src, len(want))
			}
		})
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	ip := ip4(layers.IPProtocolUDP)
	frame := serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, ip, udp(t, ip), gopacket.Payload(sip))
	d, _ := New(layers.LinkTypeEthernet)
	var p Packet
	ts := time.Unix(1, 0)
	if n := testing.AllocsPerRun(1000, func() { _, _ = d.Decode(frame, ts, &p) }); n != 0 {
		t.Errorf("Decode allocates %.1f times per packet, want 0", n)
	}
}

func BenchmarkDecodeUDP(b *testing.B) {
	ip := ip4(layers.IPProtocolUDP)
	frame := serialize(b, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip, udp(b, ip), gopacket.Payload(make([]byte, 172)))
	d, _ := New(layers.LinkTypeEthernet)
	var p Packet
	ts := time.Unix(1, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		_, _ = d.Decode(frame, ts, &p)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

func FuzzDecode(f *testing.F) {
	ip := ip4(layers.IPProtocolUDP)
	f.Add(uint8(layers.LinkTypeEthernet), serialize(f, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip, udp(f, ip), gopacket.Payload(sip)))
	for _, fr := range fragments6(f, bytes.Repeat([]byte("x"), 300), 128, 1) {
		f.Add(uint8(layers.LinkTypeEthernet), fr)
	}
	f.Add(uint8(layers.LinkTypeRaw), []byte{0x45, 0, 0, 20})
	f.Add(uint8(linkSLL2), []byte{0x86, 0xdd})
	f.Fuzz(func(t *testing.T, link uint8, frame []byte) {
		d, err := New(layers.LinkType(link))
		if err != nil {
			return
		}
		var p Packet
		for range 2 { // twice: fragments may complete with themselves
			ok, err := d.Decode(frame, time.Unix(1, 0), &p)
			if ok && err != nil {
				t.Fatalf("ok with error %v", err)
			}
			if ok && p.Transport != UDP && p.Transport != TCP && p.Transport != SCTP {
				t.Fatalf("ok without transport: %+v", p)
			}
		}
	})
}

// decodeBothWays decodes frame with the fast path and with the general
// decoder only and fails unless the packets, results and counters agree.
func decodeBothWays(t testing.TB, link layers.LinkType, frame []byte) (bool, Packet) {
	t.Helper()
	fast, err1 := New(link)
	if err1 != nil {
		return false, Packet{}
	}
	slow, _ := New(link)
	slow.slow = true
	ts := time.Unix(1, 0)
	var pf, ps Packet
	okf, errf := fast.Decode(frame, ts, &pf)
	oks, errs := slow.Decode(frame, ts, &ps)
	if okf != oks || (errf == nil) != (errs == nil) {
		t.Fatalf("fast path: %v, %v; general decoder: %v, %v", okf, errf, oks, errs)
	}
	if okf && (pf.Src != ps.Src || pf.Dst != ps.Dst || !bytes.Equal(pf.Payload, ps.Payload) ||
		pf.VLAN != ps.VLAN || pf.TTL != ps.TTL || pf.IPID != ps.IPID || pf.Transport != ps.Transport ||
		pf.Encap != ps.Encap || pf.Fragment != ps.Fragment || pf.TCPSeq != ps.TCPSeq || pf.TCPFlags != ps.TCPFlags) {
		t.Fatalf("fast path %+v\ngeneral decoder %+v", pf, ps)
	}
	if fast.Stats() != slow.Stats() {
		t.Fatalf("fast path counts %+v, general decoder %+v", fast.Stats(), slow.Stats())
	}
	return okf, pf
}

// fastFrames are frames the fast path takes, and near misses it leaves to
// the general decoder (each must decode the same both ways).
func fastFrames(t testing.TB) map[string][]byte {
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
	}
	rtp := gopacket.Payload(make([]byte, 172))
	ip := ip4(layers.IPProtocolUDP)
	plain := serialize(t, eth(layers.EthernetTypeIPv4), ip, udp(t, ip), rtp)
	vlan := serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, ip, udp(t, ip), rtp)
	set := func(b []byte, off int, v ...byte) []byte { b = bytes.Clone(b); copy(b[off:], v); return b }
	frag := set(plain, 14+6, 0x20) // more fragments
	vx := udp(t, ip)
	vx.DstPort = DefaultVXLANPort
	tip := ip4(layers.IPProtocolTCP)
	tcp := &layers.TCP{SrcPort: 1, DstPort: 2}
	_ = tcp.SetNetworkLayerForChecksum(tip)
	opt := &layers.IPv4{Version: 4, TTL: 9, Protocol: layers.IPProtocolUDP, SrcIP: v4A, DstIP: v4B,
		Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 0}}}
	return map[string][]byte{
		"udp":              plain,
		"vlan":             vlan,
		"padded":           append(bytes.Clone(plain), 0, 0, 0, 0),
		"ip length 0":      set(plain, 14+2, 0, 0),
		"ip length short":  set(plain, 14+2, 0, 27),
		"ip length long":   set(plain, 14+2, 0xff, 0xff),
		"udp length 0":     set(plain, 14+20+4, 0, 0),
		"udp length 7":     set(plain, 14+20+4, 0, 7),
		"udp length short": set(plain, 14+20+4, 0, 20),
		"udp length long":  set(plain, 14+20+4, 0xff, 0xff),
		"ip version 6":     set(plain, 14, 0x65),
		"ip options":       serialize(t, eth(layers.EthernetTypeIPv4), opt, udp(t, opt), rtp),
		"fragment":         frag,
		"fragment offset":  set(plain, 14+6, 0, 1),
		"don't fragment":   set(plain, 14+6, 0x40),
		"vxlan port":       serialize(t, eth(layers.EthernetTypeIPv4), ip, vx, rtp),
		"tcp":              serialize(t, eth(layers.EthernetTypeIPv4), tip, tcp, rtp),
		"llc":              set(plain, 12, 0x00, 0x40),
		"two tags":         serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 1, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 2, Type: layers.EthernetTypeIPv4}, ip, udp(t, ip), rtp),
		"short":            plain[:14+20+7],
		"headers only":     plain[:14+20+8],
	}
}

// fastTakes names the fastFrames the fast path decodes itself.
var fastTakes = map[string]bool{"udp": true, "vlan": true, "padded": true, "ip length 0": true,
	"ip length long": true, "udp length 0": true, "udp length short": true, "udp length long": true,
	"ip version 6": true, "don't fragment": true, "headers only": true}

// TestFastPath: the fast path gives the general decoder's packet for plain
// UDP frames and leaves the rest to it.
func TestFastPath(t *testing.T) {
	for name, frame := range fastFrames(t) {
		t.Run(name, func(t *testing.T) {
			ok, p := decodeBothWays(t, layers.LinkTypeEthernet, frame)
			if name == "udp" && (!ok || p.Src != netip.MustParseAddrPort("10.0.0.1:5060") || len(p.Payload) != 172) {
				t.Fatalf("plain UDP frame decoded as %v %+v", ok, p)
			}
			if name == "vlan" && p.VLAN != 42 {
				t.Fatalf("VLAN %d", p.VLAN)
			}
			d, _ := New(layers.LinkTypeEthernet)
			if took, want := d.fastUDP(frame, &Packet{}), fastTakes[name]; took != want {
				t.Fatalf("fast path took it: %v, want %v", took, want)
			}
		})
	}
}

// FuzzFastPath: any frame decodes the same with the fast path as with the
// general decoder.
func FuzzFastPath(f *testing.F) {
	for _, fr := range fastFrames(f) {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) { decodeBothWays(t, layers.LinkTypeEthernet, frame) })
}

func TestPayloadOffset(t *testing.T) {
	frame := make([]byte, 100, 200)
	tests := []struct {
		name    string
		payload []byte
		want    int
	}{
		{"inside", frame[42:90], 42},
		{"to the end", frame[42:], 42},
		{"other buffer", make([]byte, 10), -1},
		{"empty", frame[42:42], -1},
		{"beyond len", frame[90:110], -1},
	}
	for _, tc := range tests {
		if got := PayloadOffset(frame, tc.payload); got != tc.want {
			t.Errorf("%s: PayloadOffset = %d, want %d", tc.name, got, tc.want)
		}
	}
}
