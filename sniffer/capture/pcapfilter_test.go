package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/net/bpf"

	"pbx-agent/sniffer/fixture"
)

func TestCompileFilter(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
		wantMsg string // part of the error: the token and its column
	}{
		{name: "host", in: "host 10.0.0.5"},
		{name: "not host", in: "not host 10.0.0.5"},
		{name: "src dst host", in: "src host 10.0.0.5 and dst host 2001:db8::1"},
		{name: "net prefix", in: "not net 192.168.50.0/24 and not port 22"},
		{name: "net mask", in: "net 192.168.50.0 mask 255.255.255.0"},
		{name: "net partial", in: "net 10 or net 172.16"},
		{name: "net6", in: "net 2001:db8::/32"},
		{name: "ports", in: "udp or (tcp and port 5060)"},
		{name: "portrange", in: "udp portrange 10000-20000"},
		{name: "abbreviation", in: "host 10.0.0.5 or 10.0.0.6 and not 10.0.0.7"},
		{name: "port abbreviation", in: "tcp port 5060 or 5061"},
		{name: "src or dst", in: "src or dst port 53 and src and dst net 10.0.0.0/8"},
		{name: "c operators", in: "!(udp && port 5060) || icmp"},
		{name: "vlan", in: "vlan 42 and udp or vlan"},
		{name: "upper-case keyword", in: "udp and not Port 22", wantErr: ErrFilterSyntax, wantMsg: `"Port" at column 13: pcap-filter keywords are lower case`},
		{name: "upper-case operator", in: "udp AND tcp", wantErr: ErrFilterSyntax, wantMsg: `"AND" at column 5`},
		{name: "hex port", in: "port 0x13c4"},
		{name: "empty", in: "   "},

		{name: "unsupported keyword", in: "udp and ether host 00:11:22:33:44:55", wantErr: ErrFilterUnsupported, wantMsg: `"ether" at column 9`},
		{name: "host name", in: "host pbx.example.com", wantErr: ErrFilterUnsupported, wantMsg: `"pbx.example.com" at column 6: host names`},
		{name: "service name", in: "port sip", wantErr: ErrFilterUnsupported, wantMsg: `"sip" at column 6`},
		{name: "byte offsets", in: "udp[8:2] = 0", wantErr: ErrFilterUnsupported, wantMsg: `"udp[8:2]" at column 1`},
		{name: "unbalanced", in: "(udp or tcp", wantErr: ErrFilterSyntax, wantMsg: "end of expression at column 12, want ) for the ( at column 1"},
		{name: "extra paren", in: "udp)", wantErr: ErrFilterSyntax, wantMsg: `")" at column 4`},
		{name: "dangling and", in: "udp and", wantErr: ErrFilterSyntax, wantMsg: "end of expression at column 8"},
		{name: "single ampersand", in: "udp & tcp", wantErr: ErrFilterUnsupported, wantMsg: `"&" at column 5`},
		{name: "proto after ip", in: "ip proto 17", wantErr: ErrFilterUnsupported, wantMsg: `"proto" at column 4`},
		{name: "bare address first", in: "10.0.0.5", wantErr: ErrFilterSyntax, wantMsg: `"10.0.0.5" at column 1: host, net`},
		{name: "abbreviation after a group", in: "(host 10.0.0.5) or 10.0.0.6", wantErr: ErrFilterSyntax, wantMsg: `"10.0.0.6" at column 20`},
		{name: "abbreviation after a protocol", in: "udp and 10.0.0.6", wantErr: ErrFilterSyntax, wantMsg: `"10.0.0.6" at column 9`},
		{name: "undotted net", in: "net 10/8", wantErr: ErrFilterSyntax, wantMsg: "dotted"},
		{name: "port range too big", in: "port 70000", wantErr: ErrFilterSyntax, wantMsg: `"70000" at column 6`},
		{name: "host bits in net", in: "net 10.0.0.5/24", wantErr: ErrFilterSyntax, wantMsg: "non-network bits"},
		{name: "bad mask", in: "net 10.0.0.0 mask 255.0.255.0", wantErr: ErrFilterUnsupported, wantMsg: `"255.0.255.0" at column 19`},
		{name: "host after udp", in: "udp host 10.0.0.5", wantErr: ErrFilterSyntax, wantMsg: "column 10"},
		{name: "family mismatch", in: "ip6 host 10.0.0.5", wantErr: ErrFilterSyntax, wantMsg: "address family"},
		{name: "bare number", in: "5060", wantErr: ErrFilterSyntax, wantMsg: `"5060" at column 1`},
		{name: "too deep", in: strings.Repeat("(", 40) + "udp" + strings.Repeat(")", 40), wantErr: ErrFilterLimit, wantMsg: "column 33"},
		{name: "too long", in: strings.Repeat("udp or ", 700) + "udp", wantErr: ErrFilterLimit},
		{name: "too many primitives", in: strings.Repeat("port 1 or ", 300) + "udp", wantErr: ErrFilterLimit},
		{name: "not not deep", in: strings.Repeat("! ", 40) + "udp", wantErr: ErrFilterLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := CompileFilter(tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("CompileFilter(%q): %v", tt.in, err)
				}
				if f == nil && strings.TrimSpace(tt.in) != "" {
					t.Fatalf("CompileFilter(%q) = nil", tt.in)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CompileFilter(%q) = %v, want %v", tt.in, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("CompileFilter(%q) = %q, want it to contain %q", tt.in, err, tt.wantMsg)
			}
		})
	}
}

// TestFilterAcceptsAsLibpcap: CompileFilter accepts what libpcap's
// pcap_compile (unoptimised, as VoIPmonitor calls it) accepts and refuses
// what it refuses, but for the forms refused on purpose (stricter).
func TestFilterAcceptsAsLibpcap(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump not installed: the libpcap referee cannot run")
	}
	stricter := map[string]bool{
		"host 010.0.0.5": true, // libpcap reads leading zeros its own way
		"host 1.2.3":     true, // libpcap makes a /24 network of it
	}
	// pcap-filter outside the subset: ErrFilterUnsupported, whatever
	// libpcap says (a name it may or may not resolve here).
	outside := map[string]bool{"host pbx.example.com": true, "port sip": true, "ether host 00:11:22:33:44:55": true,
		"udp[8:2] = 0": true, "ip proto 17": true, "less 100": true, "icmp6": true, "tcp[tcpflags] & tcp-syn != 0": true}
	exprs := []string{"udp and 10.0.0.5", "10.0.0.5", "5060", "port 5060 and 10.0.0.5", "host 10.0.0.5 and (10.0.0.6 or 10.0.0.7)",
		"(host 10.0.0.5) or 10.0.0.6", "host 10.0.0.5 and not 10.0.0.6 or 10.0.0.7", "src 10.0.0.5", "dst net 10", "net 10/8",
		"net 10.0/16", "vlan 0x10", "vlan and 5", "not not udp", "udp or not", "port 65535", "port 65536", "port 0", "portrange 5-5",
		"portrange 10-5", "ip host ::1", "ip6 host ::1", "ip6 net ::/0", "net 0.0.0.0/0", "tcp src port 80", "udp dst portrange 1-2",
		"src and dst host 10.0.0.5", "src or dst host 10.0.0.5 or 10.0.0.6", "host 010.0.0.5", "net 10.0.0.0 mask 255.255.255.255",
		"net 2001:db8::/129", "host ::ffff:10.0.0.5", "port 5060 or tcp", "icmp or 10.0.0.5", "vlan 42 or 10.0.0.5",
		"sctp port 5060 or 5061", "ip and ip6", "host 1.2.3", "net 1.2.3.4/33", "(udp)", "()", "udp and (tcp or (sctp))",
		"UDP", "udp AND tcp", "host pbx.example.com", "port sip", "ether host 00:11:22:33:44:55", "udp[8:2] = 0",
		"ip proto 17", "less 100", "icmp6", "tcp[tcpflags] & tcp-syn != 0",
		"net 10.0.0.5/24", "udp host 10.0.0.5", "ip6 host 10.0.0.5", "(udp or tcp", "udp)", "udp &", "vlan 4096", "host 10.0.0.5%lo"}
	for _, e := range exprs {
		_, err := CompileFilter(e)
		out, terr := exec.Command(tcpdump, "-O", "-d", e).CombinedOutput()
		switch {
		case outside[e]:
			if !errors.Is(err, ErrFilterUnsupported) {
				t.Errorf("%q: %v, want %v", e, err, ErrFilterUnsupported)
			}
		case stricter[e] && err == nil:
			t.Errorf("%q: accepted, want refused (stricter than libpcap)", e)
		case stricter[e]:
		case (err == nil) != (terr == nil):
			t.Errorf("%q: CompileFilter %v; tcpdump -d %v: %s", e, err, terr, bytes.TrimSpace(out))
		}
	}
}

// refereeExprs are checked against tcpdump on every capture.
var refereeExprs = []string{
	"udp",
	"tcp",
	"sctp",
	"icmp",
	"ip",
	"ip6",
	"not udp",
	"port 5060",
	"not port 5060",
	"udp port 5060",
	"tcp and port 5060",
	"udp or (tcp and port 5060)",
	"src port 5060",
	"dst port 5060 or 5061",
	"portrange 10000-20000",
	"not portrange 1-9999",
	"src or dst port 5060",
	"src and dst port 5060",
	"host 127.0.0.1",
	"not host 127.0.0.1",
	"src host 127.0.0.1",
	"dst host 10.0.2.20",
	"host 10.0.2.15 or 10.0.2.20",
	"host ::1",
	"host 2001:db8::1 or 2001:db8::2",
	"net 10.0.0.0/8",
	"net 10",
	"not net 192.168.50.0/24 and not port 22",
	"net 10.0.2.0 mask 255.255.255.0",
	"net 2001:db8::/32",
	"ip6 and udp port 5060",
	"vlan",
	"vlan 42",
	"vlan 42 and udp",
	"vlan and port 5060",
	"vlan 43 or udp",
	"udp or vlan",
	"!(udp && port 5060) || icmp",
	"ip and not udp portrange 10000-65535",
}

// refereeCaptures are the repository's small captures (always there) and
// the shared ones (skipped when absent).
func refereeCaptures(t *testing.T) []string {
	files := []string{
		fixture.Repo(t, "testdata", "pcap", "gensip-vlan42-frag400.pcap"),
		fixture.Repo(t, "testdata", "pcap", "register-invite-reinvite-bye.pcap"),
		fixture.Repo(t, "testdata", "pcap", "sip-auth-failure.pcapng"),
	}
	// Shared captures that add what the repository's lack: IPv6, SCTP,
	// Linux cooked frames, IP-in-IP, TCP, many RTP streams (each costs a
	// tcpdump run per expression, so not all of them).
	shared := filepath.Join(filepath.Dir(fixture.RepoRoot(t)), "shared", "fixtures")
	for _, name := range []string{"public/sip_ipv6_udp.pcap", "public/sip_sctp.pcap", "public/sip_ipv4_tcp_retrans.pcap",
		"public/ipip.pcap", "public/sip_tcp_websocket.pcap", "public/aaa.pcap", "public/dtmf_2833_1.pcap", "asterisk/call-echo.pcap"} {
		f := filepath.Join(shared, name)
		switch _, err := os.Stat(f); {
		case err != nil:
			t.Logf("shared capture %s not available (%v); skipped", f, err)
		case testing.Short():
			t.Logf("-short: shared capture %s skipped", f)
		default:
			files = append(files, f)
		}
	}
	return files
}

// tcpdumpKeeps returns the frames `tcpdump -r file expr` writes.
func tcpdumpKeeps(t *testing.T, tcpdump, file, expr string) [][]byte {
	t.Helper()
	var out, stderr bytes.Buffer
	// -O: VoIPmonitor compiles the filter unoptimised (pcap_compile's
	// optimize = 0).
	cmd := exec.Command(tcpdump, "-O", "-r", file, "-w", "-", expr)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tcpdump -r %s %q: %v: %s", file, expr, err, stderr.String())
	}
	src, err := NewReader(&out)
	if err != nil {
		t.Fatalf("tcpdump output: %v", err)
	}
	var frames [][]byte
	for data := range fixture.Packets(t, src.ReadPacket) {
		frames = append(frames, bytes.Clone(data))
	}
	return frames
}

// TestFilterAgainstTcpdump: for every expression and capture, the frames
// the compiled filter keeps are the frames tcpdump (libpcap) keeps.
func TestFilterAgainstTcpdump(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump not installed: the libpcap referee cannot run")
	}
	files := refereeCaptures(t)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := OpenFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var frames [][]byte
			for data := range fixture.Packets(t, src.ReadPacket) {
				frames = append(frames, bytes.Clone(data))
			}
			link := src.LinkType()
			src.Close()
			checked := 0
			for _, expr := range refereeExprs {
				f, err := CompileFilter(expr)
				if err != nil {
					t.Fatalf("%q: %v", expr, err)
				}
				m, err := f.Matcher(link)
				if errors.Is(err, ErrFilterLinkType) {
					continue // vlan on Linux cooked
				}
				if err != nil {
					t.Fatalf("%q: %v", expr, err)
				}
				var kept [][]byte
				for _, fr := range frames {
					if m.Match(fr) {
						kept = append(kept, fr)
					}
				}
				want := tcpdumpKeeps(t, tcpdump, file, expr)
				if !sameFrames(kept, want) {
					t.Errorf("%q: keeps %d of %d frames, tcpdump %d", expr, len(kept), len(frames), len(want))
				}
				checked++
			}
			t.Logf("%d expressions over %d frames (%s) agree with tcpdump", checked, len(frames), link)
		})
	}
}

func sameFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// filterCorpus builds frames that exercise the filter's corners: VLAN tags
// (one and two), IPv6 (with a fragment header), IPv4 fragments (the first
// carries ports, later ones do not), TCP, SCTP, ICMP, ARP, a truncated
// frame.
func filterCorpus(t testing.TB) [][]byte {
	mac := []byte{0, 1, 2, 3, 4, 5}
	a4, b4 := []byte{10, 0, 0, 5}, []byte{192, 168, 50, 7}
	a6 := []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	b6 := []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
	ser := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		opts := gopacket.SerializeOptions{FixLengths: true}
		if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(buf.Bytes())
	}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: et}
	}
	ip4 := func(p layers.IPProtocol, src, dst []byte, flags layers.IPv4Flag, frag uint16) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: p, SrcIP: src, DstIP: dst, Flags: flags, FragOffset: frag}
	}
	ip6 := func(p layers.IPProtocol, src, dst []byte) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p, SrcIP: src, DstIP: dst}
	}
	udp := func(s, d layers.UDPPort) *layers.UDP { return &layers.UDP{SrcPort: s, DstPort: d} }
	payload := gopacket.Payload("INVITE sip:x SIP/2.0\r\n\r\n")
	var out [][]byte
	for _, ports := range [][2]layers.UDPPort{{5060, 5060}, {5061, 5060}, {12000, 14000}, {22, 40000}} {
		u := udp(ports[0], ports[1])
		i4 := ip4(layers.IPProtocolUDP, a4, b4, 0, 0)
		u.SetNetworkLayerForChecksum(i4)
		out = append(out, ser(eth(layers.EthernetTypeIPv4), i4, u, payload))
		i4b := ip4(layers.IPProtocolUDP, b4, a4, 0, 0)
		u.SetNetworkLayerForChecksum(i4b)
		out = append(out, ser(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, i4b, u, payload))
		out = append(out, ser(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, i4b, u, payload))
		i6 := ip6(layers.IPProtocolUDP, a6, b6)
		u.SetNetworkLayerForChecksum(i6)
		out = append(out, ser(eth(layers.EthernetTypeIPv6), i6, u, payload))
		out = append(out, ser(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv6}, i6, u, payload))
		tcp := &layers.TCP{SrcPort: layers.TCPPort(ports[0]), DstPort: layers.TCPPort(ports[1]), SYN: true, Window: 1024}
		i4t := ip4(layers.IPProtocolTCP, a4, b4, 0, 0)
		tcp.SetNetworkLayerForChecksum(i4t)
		out = append(out, ser(eth(layers.EthernetTypeIPv4), i4t, tcp))
		sctp := &layers.SCTP{SrcPort: layers.SCTPPort(ports[0]), DstPort: layers.SCTPPort(ports[1])}
		out = append(out, ser(eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolSCTP, b6, a6), sctp))
		// IPv4 fragments: the first (ports in it), a later one (the same
		// bytes where ports would be, no ports to libpcap).
		out = append(out, ser(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, a4, b4, layers.IPv4MoreFragments, 0), udp(ports[0], ports[1]), payload))
		out = append(out, ser(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, a4, b4, 0, 3), udp(ports[0], ports[1]), payload))
		// IPv6 with a fragment header before UDP.
		frag := append([]byte{byte(layers.IPProtocolUDP), 0, 0, 1, 0, 0, 0, 9}, ser(udp(ports[0], ports[1]), payload)...)
		out = append(out, ser(eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolIPv6Fragment, a6, b6), gopacket.Payload(frag)))
	}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}
	out = append(out, ser(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4, a4, b4, 0, 0), icmp, payload))
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: 1, SourceHwAddress: mac, SourceProtAddress: a4, DstHwAddress: mac, DstProtAddress: b4}
	out = append(out, ser(eth(layers.EthernetTypeARP), arp))
	out = append(out, out[0][:30]) // cut inside the IPv4 header
	return out
}

// corpusOwn are written for the corpus: each keeps some of it, not all.
var corpusOwn = []string{
	"host 10.0.0.5", "src host 10.0.0.5", "not host 10.0.0.5", "net 192.168.50.0/24", "not net 192.168.50.0/24 and not port 22",
	"host 2001:db8::1", "dst host fd00::2", "net 2001:db8::/32", "vlan 42 and host 192.168.50.7", "vlan 7 and vlan 42 and port 5060",
	"vlan and vlan and udp", "sctp port 5061", "tcp port 22", "udp port 40000", "src port 12000 and dst port 14000",
	"udp and not port 5060", "portrange 5061-13000", "src host 10.0.0.5 or 192.168.50.7", "not host 10.0.0.9 and not 10.0.0.5",
	"udp port 5060 or 14000", "src or dst port 22", "ip6 net fd00::/8 or fd00::2",
}

// corpusExprs are the expressions the corpus is checked with.
var corpusExprs = append(append([]string{}, corpusOwn...), refereeExprs...)

// TestKernelProgramAgrees runs the kernel program in the kernel (attached
// to a datagram socket) and the file program in the Go VM over the corpus:
// both keep the same frames, and so does tcpdump.
func TestKernelProgramAgrees(t *testing.T) {
	corpus := filterCorpus(t)
	tcpdump, tdErr := exec.LookPath("tcpdump")
	var file string
	if tdErr == nil {
		file = writeCorpus(t, corpus, layers.LinkTypeEthernet)
	} else {
		t.Log("tcpdump not installed: the corpus is not compared with libpcap")
	}
	kernelOK, ran := true, 0
	for i, expr := range corpusExprs {
		f, err := CompileFilter(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		m, err := f.Matcher(layers.LinkTypeEthernet)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		var kept [][]byte
		for _, fr := range corpus {
			if m.Match(fr) {
				kept = append(kept, fr)
			}
		}
		if i < len(corpusOwn) && (len(kept) == 0 || len(kept) == len(corpus)) {
			t.Errorf("%q keeps %d of %d corpus frames: the corpus does not tell", expr, len(kept), len(corpus))
		}
		if kernelOK {
			prog, err := f.KernelProgram()
			if err != nil {
				t.Fatalf("%q: %v", expr, err)
			}
			inKernel, err := kernelKeeps(prog, corpus)
			if err != nil {
				t.Logf("no socket filter here (%v): the kernel program is not run", err)
				kernelOK = false
			} else {
				ran++
				if !sameFrames(inKernel, kept) {
					t.Errorf("%q: the kernel keeps %d frames, the Go VM %d", expr, len(inKernel), len(kept))
				}
			}
		}
		if file != "" {
			if want := tcpdumpKeeps(t, tcpdump, file, expr); !sameFrames(kept, want) {
				t.Errorf("%q: keeps %d of the corpus's %d frames, tcpdump %d", expr, len(kept), len(corpus), len(want))
			}
		}
	}
	t.Logf("%d programs ran in the kernel and the Go VM over %d frames", ran, len(corpus))
}

// TestFilterSLLAgainstTcpdump: the corpus's frames without VLAN tags, as
// Linux cooked (SLL) frames, keep the frames tcpdump keeps.
func TestFilterSLLAgainstTcpdump(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump not installed: the libpcap referee cannot run")
	}
	var sll [][]byte
	for _, fr := range filterCorpus(t) {
		if len(fr) < 14 || fr[12] == 0x81 {
			continue
		}
		h := []byte{0, 0, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0, fr[12], fr[13]}
		sll = append(sll, append(h, fr[14:]...))
	}
	file := writeCorpus(t, sll, layers.LinkTypeLinuxSLL)
	n := 0
	for _, expr := range corpusExprs {
		f, err := CompileFilter(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		m, err := f.Matcher(layers.LinkTypeLinuxSLL)
		if errors.Is(err, ErrFilterLinkType) {
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		var kept [][]byte
		for _, fr := range sll {
			if m.Match(fr) {
				kept = append(kept, fr)
			}
		}
		if want := tcpdumpKeeps(t, tcpdump, file, expr); !sameFrames(kept, want) {
			t.Errorf("%q: keeps %d of %d SLL frames, tcpdump %d", expr, len(kept), len(sll), len(want))
		}
		n++
	}
	t.Logf("%d expressions over %d SLL frames agree with tcpdump", n, len(sll))
}

func writeCorpus(t *testing.T, corpus [][]byte, link layers.LinkType) string {
	return fixture.File(t, "corpus.pcap", func(w io.Writer) error {
		pw := pcapgo.NewWriter(w)
		if err := pw.WriteFileHeader(65535, link); err != nil {
			return err
		}
		for i, fr := range corpus {
			ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(fr), Length: len(fr)}
			if i == len(corpus)-1 {
				ci.Length = len(fr) + 40 // the truncated one
			}
			if err := pw.WritePacket(ci, fr); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestMatchAllocs(t *testing.T) {
	f, err := CompileFilter("not net 192.168.50.0/24 and not port 22 and (udp or tcp port 5060)")
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Matcher(layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	corpus := filterCorpus(t)
	if n := testing.AllocsPerRun(100, func() {
		for _, fr := range corpus {
			m.Match(fr)
		}
	}); n != 0 {
		t.Errorf("Match allocates %v times per corpus", n)
	}
}

func BenchmarkFilterMatch(b *testing.B) {
	f, err := CompileFilter("not net 192.168.60.0/24 and not port 22 and (udp or tcp port 5060)")
	if err != nil {
		b.Fatal(err)
	}
	m, err := f.Matcher(layers.LinkTypeEthernet)
	if err != nil {
		b.Fatal(err)
	}
	fr := filterCorpus(b)[0] // IPv4 UDP 5060: every primitive is evaluated
	b.ReportAllocs()
	for b.Loop() {
		if !m.Match(fr) {
			b.Fatal("dropped")
		}
	}
}

func FuzzCompileFilter(f *testing.F) {
	for _, e := range corpusExprs {
		f.Add(e)
	}
	corpus := filterCorpus(f)
	f.Fuzz(func(t *testing.T, expr string) {
		flt, err := CompileFilter(expr)
		if err != nil {
			if !errors.Is(err, ErrFilterSyntax) && !errors.Is(err, ErrFilterUnsupported) && !errors.Is(err, ErrFilterLimit) {
				t.Fatalf("%q: error without a sentinel: %v", expr, err)
			}
			return
		}
		if flt == nil {
			return
		}
		if _, err := flt.KernelProgram(); err != nil {
			t.Fatalf("%q: kernel program: %v", expr, err)
		}
		m, err := flt.Matcher(layers.LinkTypeEthernet)
		if err != nil {
			t.Fatalf("%q: matcher: %v", expr, err)
		}
		for _, fr := range corpus {
			m.Match(fr)
		}
	})
}

// TestKernelProgramVLANMetadata: on a live socket the kernel takes a
// frame's outer 802.1Q tag out into metadata. The kernel program, given the
// untagged frame and the tag as metadata (the two extension loads replaced
// by their values, so the Go VM runs it), keeps what the file program keeps
// of the tagged frame, for expressions that start with vlan.
func TestKernelProgramVLANMetadata(t *testing.T) {
	var tagged [][]byte
	for _, fr := range filterCorpus(t) {
		if len(fr) > 18 && fr[12] == 0x81 && fr[13] == 0 {
			tagged = append(tagged, fr)
		}
	}
	n := 0
	for _, expr := range corpusExprs {
		if !strings.HasPrefix(expr, "vlan") {
			continue
		}
		f, err := CompileFilter(expr)
		if err != nil {
			t.Fatal(err)
		}
		file, err := f.Matcher(layers.LinkTypeEthernet)
		if err != nil {
			t.Fatal(err)
		}
		kprog, err := f.KernelProgram()
		if err != nil {
			t.Fatal(err)
		}
		for _, fr := range tagged {
			tci := uint32(fr[14])<<8 | uint32(fr[15])
			prog := make([]bpf.Instruction, len(kprog))
			for i, ins := range kprog {
				switch e, _ := ins.(bpf.LoadExtension); e.Num {
				case bpf.ExtVLANTagPresent:
					ins = bpf.LoadConstant{Dst: bpf.RegA, Val: 1}
				case bpf.ExtVLANTag:
					ins = bpf.LoadConstant{Dst: bpf.RegA, Val: tci}
				}
				prog[i] = ins
			}
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatalf("%q: %v", expr, err)
			}
			untagged := append(append([]byte{}, fr[:12]...), fr[16:]...)
			got, _ := vm.Run(untagged)
			if want := file.Match(fr); (got > 0) != want {
				t.Errorf("%q on vlan %d: kernel program with the tag in metadata keeps=%v, file program on the tagged frame %v", expr, tci&0xfff, got > 0, want)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no tagged frame or vlan expression")
	}
	t.Logf("%d expression × frame pairs agree", n)
}

// TestFilterAfter: the live program keeps a frame when the agent's cut and
// the filter both keep it.
func TestFilterAfter(t *testing.T) {
	corpus := filterCorpus(t)
	for _, base := range [][]bpf.Instruction{UDPPortFilter(), SIPPortFilter([]PortRange{{5060, 5061}})} {
		baseVM, err := bpf.NewVM(base)
		if err != nil {
			t.Fatal(err)
		}
		for _, expr := range []string{"not host 10.0.0.5", "udp or (tcp and port 5060)", "not net 192.168.50.0/24 and not port 22"} {
			f, err := CompileFilter(expr)
			if err != nil {
				t.Fatal(err)
			}
			prog, err := f.After(base)
			if err != nil {
				t.Fatal(err)
			}
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatalf("%q: %v", expr, err)
			}
			m, _ := f.Matcher(layers.LinkTypeEthernet)
			for i, fr := range corpus {
				b, _ := baseVM.Run(fr)
				got, _ := vm.Run(fr)
				if want := b > 0 && m.Match(fr); (got > 0) != want {
					t.Errorf("%q, frame %d: kept=%v, want %v", expr, i, got > 0, want)
				}
			}
		}
	}
	if prog, err := (*Filter)(nil).After(UDPPortFilter()); err != nil || len(prog) != len(UDPPortFilter()) {
		t.Errorf("no filter: %d instructions, %v", len(prog), err)
	}
}
