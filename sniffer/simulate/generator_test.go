package simulate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"pbx-agent/sniffer/fixture"
)

// capture is what a test reader found in a generated pcap.
type capture struct {
	frames    int
	fragments int // IPv4 fragments (frames with MF set or a non-zero offset)
	vlans     map[uint16]int
	v4, v6    int
	rtp       map[uint32]*rtpSeen // by SSRC
	sip       [][]byte            // whole SIP messages, in capture order
	badSum    []string
	tcpFlows  map[string]*tcpFlow
}

type rtpSeen struct {
	src, dst netip.AddrPort
	pt       uint8
	seq0     uint16 // sequence number of the marker (first) packet
	haveSeq0 bool
	seqs     []uint16
	ts       []uint32
	payloads [][]byte
}

// lost counts gaps from sequence numbers, as a receiver would.
func (r *rtpSeen) lost() int {
	maxOff := 0
	for _, s := range r.seqs {
		maxOff = max(maxOff, int(s-r.seq0))
	}
	return maxOff + 1 - len(r.seqs)
}

type tcpFlow struct {
	next uint32
	have bool
	buf  []byte
}

// readCapture decodes a generated pcap the way a sniffer would: Ethernet,
// optional 802.1Q, IPv4 (defragmented) or IPv6, UDP or TCP, checking every
// transport checksum and that timestamps never go backwards.
func readCapture(t *testing.T, pcap []byte) *capture {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(pcap))
	if err != nil {
		t.Fatalf("pcapgo.NewReader: %v", err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v, want Ethernet", r.LinkType())
	}
	c := &capture{vlans: map[uint16]int{}, rtp: map[uint32]*rtpSeen{}, tcpFlows: map[string]*tcpFlow{}}
	defrag := ip4defrag.NewIPv4Defragmenter()
	var last time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", c.frames+1, err)
		}
		c.frames++
		if ci.Timestamp.Before(last) {
			t.Fatalf("frame %d: time %v before %v", c.frames, ci.Timestamp, last)
		}
		last = ci.Timestamp
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("frame %d: decode: %v", c.frames, el.Error())
		}
		if q, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); ok {
			c.vlans[q.VLANIdentifier]++
		}
		var src, dst netip.Addr
		var transport []byte
		var proto layers.IPProtocol
		switch ip := pkt.NetworkLayer().(type) {
		case *layers.IPv4:
			c.v4++
			if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
				c.fragments++
			}
			whole, err := defrag.DefragIPv4(ip)
			if err != nil {
				t.Fatalf("frame %d: defrag: %v", c.frames, err)
			}
			if whole == nil {
				continue // more fragments to come
			}
			src, _ = netip.AddrFromSlice(whole.SrcIP)
			dst, _ = netip.AddrFromSlice(whole.DstIP)
			transport, proto = whole.Payload, whole.Protocol
		case *layers.IPv6:
			c.v6++
			src, _ = netip.AddrFromSlice(ip.SrcIP)
			dst, _ = netip.AddrFromSlice(ip.DstIP)
			transport, proto = ip.Payload, ip.NextHeader
		default:
			t.Fatalf("frame %d: no IP layer", c.frames)
		}
		if !checksumOK(src, dst, proto, transport) {
			c.badSum = append(c.badSum, strconv.Itoa(c.frames))
		}
		switch proto {
		case layers.IPProtocolUDP:
			var u layers.UDP
			if err := u.DecodeFromBytes(transport, gopacket.NilDecodeFeedback); err != nil {
				t.Fatalf("frame %d: udp: %v", c.frames, err)
			}
			if u.SrcPort == SIPPort || u.DstPort == SIPPort {
				c.sip = append(c.sip, append([]byte(nil), u.Payload...))
				continue
			}
			c.addRTP(t, netip.AddrPortFrom(src, uint16(u.SrcPort)), netip.AddrPortFrom(dst, uint16(u.DstPort)), u.Payload)
		case layers.IPProtocolTCP:
			var tc layers.TCP
			if err := tc.DecodeFromBytes(transport, gopacket.NilDecodeFeedback); err != nil {
				t.Fatalf("frame %d: tcp: %v", c.frames, err)
			}
			key := netip.AddrPortFrom(src, uint16(tc.SrcPort)).String() + ">" + netip.AddrPortFrom(dst, uint16(tc.DstPort)).String()
			f := c.tcpFlows[key]
			if f == nil {
				f = &tcpFlow{}
				c.tcpFlows[key] = f
			}
			if f.have && tc.Seq != f.next {
				t.Fatalf("frame %d: tcp seq %d, want %d", c.frames, tc.Seq, f.next)
			}
			f.have, f.next = true, tc.Seq+uint32(len(tc.Payload))
			f.buf = append(f.buf, tc.Payload...)
			for {
				n := sipLen(f.buf)
				if n == 0 {
					break
				}
				c.sip = append(c.sip, f.buf[:n:n])
				f.buf = f.buf[n:]
			}
		default:
			t.Fatalf("frame %d: protocol %v", c.frames, proto)
		}
	}
	for k, f := range c.tcpFlows {
		if len(f.buf) != 0 {
			t.Errorf("tcp flow %s: %d bytes left after the last whole message", k, len(f.buf))
		}
	}
	return c
}

func (c *capture) addRTP(t *testing.T, src, dst netip.AddrPort, p []byte) {
	t.Helper()
	if len(p) <= 12 || ((p[1]&0x7f == 0 || p[1]&0x7f == 8) && len(p) != 12+samplesPerFrame) || p[0] != 0x80 {
		t.Fatalf("rtp %v>%v: %d bytes, first byte %#x", src, dst, len(p), p[0])
	}
	ssrc := binary.BigEndian.Uint32(p[8:])
	seq := binary.BigEndian.Uint16(p[2:])
	r := c.rtp[ssrc]
	if r == nil {
		r = &rtpSeen{src: src, dst: dst, pt: p[1] & 0x7f}
		c.rtp[ssrc] = r
	}
	if p[1]&0x80 != 0 {
		r.seq0, r.haveSeq0 = seq, true
	}
	r.seqs = append(r.seqs, seq)
	r.ts = append(r.ts, binary.BigEndian.Uint32(p[4:]))
	r.payloads = append(r.payloads, append([]byte(nil), p[12:]...))
}

// sipLen is the length of the first whole SIP message in b (Content-Length
// framing), or 0 when b does not hold one yet.
func sipLen(b []byte) int {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0
	}
	head := string(b[:end])
	i := strings.Index(head, "\r\nContent-Length: ")
	if i < 0 {
		return 0
	}
	v := head[i+len("\r\nContent-Length: "):]
	if j := strings.IndexByte(v, '\r'); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.Atoi(v)
	if err != nil || end+4+n > len(b) {
		return 0
	}
	return end + 4 + n
}

// checksumOK verifies a UDP or TCP checksum over the IP pseudo-header.
func checksumOK(src, dst netip.Addr, proto layers.IPProtocol, seg []byte) bool {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	sum += uint32(proto) + uint32(len(seg))
	add(seg)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum == 0xffff
}

// header returns the value of a SIP header in msg.
func header(msg []byte, name string) string {
	for _, line := range strings.Split(string(msg), "\r\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return v
		}
	}
	return ""
}

// finalCodes maps Call-ID to the last final response to its INVITE or REGISTER.
func finalCodes(msgs [][]byte) map[string]int {
	codes := map[string]int{}
	for _, m := range msgs {
		rest, ok := bytes.CutPrefix(m, []byte("SIP/2.0 "))
		if !ok {
			continue
		}
		code, _ := strconv.Atoi(string(rest[:3]))
		cseq := header(m, "CSeq")
		if code >= 200 && (strings.HasSuffix(cseq, " INVITE") || strings.HasSuffix(cseq, " REGISTER")) {
			codes[header(m, "Call-ID")] = code
		}
	}
	return codes
}

func generate(t *testing.T, o Options) ([]byte, *Truth) {
	t.Helper()
	var buf bytes.Buffer
	truth, err := WritePcap(context.Background(), &buf, o)
	if err != nil {
		t.Fatalf("WritePcap(%+v): %v", o, err)
	}
	return buf.Bytes(), truth
}

func TestGenerateMatchesTruth(t *testing.T) {
	base := Options{Calls: 6, Duration: 2 * time.Second, CPS: 20, Seed: 7}
	tests := []struct {
		name string
		mod  func(o *Options)
	}{
		{"plain", func(o *Options) {}},
		{"pcma loss bursts", func(o *Options) { o.Codec, o.Loss, o.BurstRate, o.BurstLen = CodecPCMA, 3, 1, 4 }},
		{"mixed jitter beyond ptime", func(o *Options) { o.Codec, o.Jitter, o.Loss = CodecMixed, 45*time.Millisecond, 2 }},
		{"vlan fragments", func(o *Options) { o.VLAN, o.MTU = 42, 400 }},
		{"vlan fragments loss jitter", func(o *Options) { o.VLAN, o.MTU, o.Loss, o.Jitter = 4094, 300, 5, 4*time.Millisecond }},
		{"tcp", func(o *Options) { o.Transport = TransportTCP }},
		{"tcp split coalesce", func(o *Options) { o.Transport, o.MTU, o.TCPCoalesce = TransportTCP, 400, true }},
		{"ipv6", func(o *Options) { o.IPv6 = true }},
		{"ipv6 tcp vlan small mtu", func(o *Options) { o.IPv6, o.Transport, o.VLAN, o.MTU = true, TransportTCP, 7, 500 }},
		{"failure mix registers", func(o *Options) {
			o.Calls, o.Busy, o.Cancelled, o.Unanswered = 40, 20, 20, 20
			o.Registers, o.RegisterAuth, o.RegisterForbidden = 12, 40, 30
		}},
		{"concurrency limit", func(o *Options) { o.Calls, o.Concurrency, o.CPS, o.Duration = 12, 3, 100, 500*time.Millisecond }},
		{"everything", func(o *Options) {
			o.Calls, o.Concurrency, o.Codec, o.Loss, o.BurstRate, o.Jitter = 20, 5, CodecMixed, 2, 0.5, 30*time.Millisecond
			o.VLAN, o.MTU, o.Transport, o.TCPCoalesce = 100, 350, TransportTCP, true
			o.Busy, o.Cancelled, o.Unanswered, o.Registers, o.RegisterAuth, o.RegisterForbidden = 10, 10, 10, 5, 50, 50
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mod(&o)
			pcap, truth := generate(t, o)
			c := readCapture(t, pcap)
			checkCapture(t, o, c, truth)
		})
	}
}

func checkCapture(t *testing.T, o Options, c *capture, truth *Truth) {
	t.Helper()
	o, _ = o.withDefaults()
	if c.frames != truth.Frames {
		t.Errorf("pcap holds %d frames, truth says %d", c.frames, truth.Frames)
	}
	if len(c.badSum) > 0 {
		t.Errorf("bad transport checksum in frames %v", c.badSum)
	}
	if o.VLAN != 0 && c.vlans[o.VLAN] != c.frames {
		t.Errorf("VLAN %d on %d of %d frames (%v)", o.VLAN, c.vlans[o.VLAN], c.frames, c.vlans)
	}
	if o.VLAN == 0 && len(c.vlans) != 0 {
		t.Errorf("unexpected VLAN tags %v", c.vlans)
	}
	if o.IPv6 && c.v4 != 0 || !o.IPv6 && c.v6 != 0 {
		t.Errorf("IPv4 frames %d, IPv6 frames %d with IPv6=%v", c.v4, c.v6, o.IPv6)
	}
	wantFrag := !o.IPv6 && o.Transport == TransportUDP && o.MTU < 1000
	if wantFrag != (c.fragments > 0) {
		t.Errorf("%d IPv4 fragments with MTU %d transport %s", c.fragments, o.MTU, o.Transport)
	}
	if len(c.sip) != truth.SIP {
		t.Errorf("%d SIP messages in the pcap, truth says %d", len(c.sip), truth.SIP)
	}
	if len(truth.Calls) != o.Calls || len(truth.Registers) != o.Registers {
		t.Errorf("truth has %d calls and %d registers, want %d and %d", len(truth.Calls), len(truth.Registers), o.Calls, o.Registers)
	}

	// RTP: every stream of the truth, with exactly Sent-Dropped packets and
	// Dropped gaps in its sequence numbers.
	if len(c.rtp) != len(truth.Streams) {
		t.Errorf("%d SSRCs in the pcap, truth has %d streams", len(c.rtp), len(truth.Streams))
	}
	for _, s := range truth.Streams {
		r := c.rtp[s.SSRC]
		if r == nil {
			t.Errorf("stream %s dir %d ssrc %#x not in the pcap", s.CallID, s.Direction, s.SSRC)
			continue
		}
		if r.src != s.Src || r.dst != s.Dst || r.pt != s.PT {
			t.Errorf("ssrc %#x: %v>%v pt %d, truth %v>%v pt %d", s.SSRC, r.src, r.dst, r.pt, s.Src, s.Dst, s.PT)
		}
		if len(r.seqs) != s.Received() || !r.haveSeq0 || r.lost() != s.Dropped {
			t.Errorf("ssrc %#x: received %d lost %d (marker seen %v), truth sent %d dropped %d",
				s.SSRC, len(r.seqs), r.lost(), r.haveSeq0, s.Sent, s.Dropped)
		}
		if want := int(o.Duration / Ptime); s.Sent != want {
			t.Errorf("ssrc %#x: sent %d, want %d", s.SSRC, s.Sent, want)
		}
	}

	// SIP: each call's and REGISTER's final code as the pcap shows it.
	codes := finalCodes(c.sip)
	for _, ct := range truth.Calls {
		if codes[ct.CallID] != ct.FinalCode {
			t.Errorf("call %s: final code %d in pcap, truth %d", ct.CallID, codes[ct.CallID], ct.FinalCode)
		}
	}
	for _, rt := range truth.Registers {
		if codes[rt.CallID] != rt.FinalCode {
			t.Errorf("register %s: final code %d in pcap, truth %d", rt.CallID, codes[rt.CallID], rt.FinalCode)
		}
	}

	// Never more than Concurrency calls at once.
	for _, a := range truth.Calls {
		n := 0
		for _, b := range truth.Calls {
			if !b.Start.After(a.Start) && b.End.After(a.Start) {
				n++
			}
		}
		if n > o.Concurrency {
			t.Errorf("%d calls active at %v, concurrency %d", n, a.Start, o.Concurrency)
		}
	}
}

func TestSameSeedSameBytes(t *testing.T) {
	o := Options{Calls: 8, Concurrency: 4, Duration: time.Second, Codec: CodecMixed, Loss: 3, BurstRate: 1,
		Jitter: 25 * time.Millisecond, Busy: 10, Cancelled: 10, Unanswered: 10, Registers: 4, RegisterAuth: 50, Seed: 42}
	hash := func(o Options) string {
		pcap, truth := generate(t, o)
		h := sha256.New()
		h.Write(pcap)
		if err := truth.WriteTSV(h); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	a, b := hash(o), hash(o)
	if a != b {
		t.Fatalf("same seed, different output: %s vs %s", a, b)
	}
	o.Seed++
	if c := hash(o); c == a {
		t.Fatalf("seeds %d and %d gave the same output %s", o.Seed-1, o.Seed, c)
	}
}

func TestFragmentsReassemble(t *testing.T) {
	pcap, truth := generate(t, Options{Calls: 2, Duration: time.Second, VLAN: 42, MTU: 400, Seed: 11})
	c := readCapture(t, pcap)
	// Each INVITE and 200 OK with SDP is bigger than 400 bytes: 2 fragments each.
	if want := 2 * 2 * len(truth.Calls); c.fragments != want {
		t.Errorf("%d fragments, want %d", c.fragments, want)
	}
	invites := 0
	for _, m := range c.sip {
		if bytes.HasPrefix(m, []byte("INVITE ")) {
			invites++
			if !bytes.Contains(m, []byte("a=rtpmap:101 telephone-event/8000\r\n")) || sipLen(m) != len(m) {
				t.Errorf("reassembled INVITE is not whole:\n%s", m)
			}
		}
	}
	if invites != len(truth.Calls) {
		t.Errorf("%d INVITEs after reassembly, want %d", invites, len(truth.Calls))
	}
}

func TestCallFlow(t *testing.T) {
	tests := []struct {
		name     string
		o        Options
		call     string // first word (method or code) of each message of the call, in order
		register string // the same for the REGISTER, if any
	}{
		{"answered", Options{Calls: 1, Duration: Ptime * 3}, "INVITE 100 180 200 ACK BYE 200", ""},
		{"busy", Options{Calls: 1, Busy: 100}, "INVITE 100 486 ACK", ""},
		{"cancelled", Options{Calls: 1, Cancelled: 100}, "INVITE 100 180 CANCEL 200 487 ACK", ""},
		{"unanswered", Options{Calls: 1, Unanswered: 100, Duration: time.Second}, "INVITE 100 180 480 ACK", ""},
		{"tcp coalesced", Options{Calls: 1, Cancelled: 100, Transport: TransportTCP, TCPCoalesce: true}, "INVITE 100 180 CANCEL 200 487 ACK", ""},
		{"register", Options{Calls: 1, Busy: 100, Registers: 1}, "INVITE 100 486 ACK", "REGISTER 200"},
		{"register 401 200", Options{Calls: 1, Busy: 100, Registers: 1, RegisterAuth: 100}, "INVITE 100 486 ACK", "REGISTER 401 REGISTER 200"},
		{"register 401 403", Options{Calls: 1, Busy: 100, Registers: 1, RegisterForbidden: 100}, "INVITE 100 486 ACK", "REGISTER 401 REGISTER 403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcap, truth := generate(t, tt.o)
			c := readCapture(t, pcap)
			flows := map[string][]string{}
			for _, m := range c.sip {
				first, _, _ := strings.Cut(string(m), " ")
				if first == "SIP/2.0" {
					first = string(m[8:11])
				}
				id := header(m, "Call-ID")
				flows[id] = append(flows[id], first)
			}
			if got := strings.Join(flows[truth.Calls[0].CallID], " "); got != tt.call {
				t.Errorf("call flow %q, want %q", got, tt.call)
			}
			if tt.register != "" {
				if got := strings.Join(flows[truth.Registers[0].CallID], " "); got != tt.register {
					t.Errorf("register flow %q, want %q", got, tt.register)
				}
			}
		})
	}
}

func TestSDPOffersTelephoneEvent(t *testing.T) {
	pcap, truth := generate(t, Options{Calls: 1, Duration: time.Second, Codec: CodecPCMA, IPv6: true})
	c := readCapture(t, pcap)
	for _, m := range c.sip {
		if !bytes.Contains(m, []byte("application/sdp")) {
			continue
		}
		for _, want := range []string{"m=audio ", " RTP/AVP 8 101\r\n", "a=rtpmap:8 PCMA/8000\r\n", "a=rtpmap:101 telephone-event/8000\r\n", "a=ptime:20\r\n", "c=IN IP6 2001:db8:"} {
			if !bytes.Contains(m, []byte(want)) {
				t.Errorf("SDP lacks %q:\n%s", want, m)
			}
		}
	}
	if len(truth.Streams) != 2 || truth.Streams[0].PT != 8 {
		t.Errorf("streams %+v", truth.Streams)
	}
}

func TestTonePayload(t *testing.T) {
	for _, alaw := range []bool{false, true} {
		f := toneFrame(400, alaw)
		var peak int16
		for _, b := range f {
			s := uLawToLinear(b)
			if alaw {
				s = aLawToLinear(b)
			}
			peak = max(peak, s)
		}
		// -10 dBFS is about 10362; G.711 quantisation keeps it within a few percent.
		if peak < 9800 || peak > 10900 {
			t.Errorf("alaw=%v: peak %d, want about 10362", alaw, peak)
		}
	}
}

func TestG711RoundTrip(t *testing.T) {
	for code := range 256 {
		u := byte(code)
		if u != 0x7f { // µ-law 0x7f is -0, which encodes back as +0 (0xff)
			if got := linearToULaw(uLawToLinear(u)); got != u {
				t.Errorf("µ-law %#x → %d → %#x", u, uLawToLinear(u), got)
			}
		}
		if got := linearToALaw(aLawToLinear(u)); got != u {
			t.Errorf("A-law %#x → %d → %#x", u, aLawToLinear(u), got)
		}
	}
	tests := []struct {
		in         int16
		ulaw, alaw byte
	}{
		{0, 0xff, 0xd5},
		{-1, 0x7f, 0x55},
		{32767, 0x80, 0xaa},
		{-32768, 0x00, 0x2a},
	}
	for _, tt := range tests {
		if got := linearToULaw(tt.in); got != tt.ulaw {
			t.Errorf("linearToULaw(%d) = %#x, want %#x", tt.in, got, tt.ulaw)
		}
		if got := linearToALaw(tt.in); got != tt.alaw {
			t.Errorf("linearToALaw(%d) = %#x, want %#x", tt.in, got, tt.alaw)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		in   Options
	}{
		{"negative calls", Options{Calls: -1}},
		{"concurrency too high", Options{Concurrency: MaxConcurrency + 1}},
		{"duration below ptime", Options{Duration: time.Millisecond}},
		{"codec", Options{Codec: "amr"}},
		{"loss", Options{Loss: 101}},
		{"negative jitter", Options{Jitter: -1}},
		{"vlan", Options{VLAN: 4095}},
		{"mtu", Options{MTU: 100}},
		{"transport", Options{Transport: "quic"}},
		{"encap", Options{Encap: "ipsec"}},
		{"failure sum", Options{Busy: 60, Cancelled: 50}},
		{"register sum", Options{RegisterAuth: 60, RegisterForbidden: 50}},
		{"registers", Options{Registers: MaxRegisters + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.in); !errors.Is(err, ErrOption) {
				t.Errorf("New(%+v) error %v, want ErrOption", tt.in, err)
			}
		})
	}
}

func TestWritePcapHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WritePcap(ctx, io.Discard, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("WritePcap with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestBoundedQueue checks that the event queue grows with active calls, not
// with the number of packets or calls.
func TestBoundedQueue(t *testing.T) {
	g, err := New(Options{Calls: 400, Concurrency: 20, CPS: 200, Duration: time.Second, Jitter: 60 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	maxQ, frames := 0, 0
	for range fixture.Packets(t, g.ZeroCopyReadPacketData) {
		frames++
		maxQ = max(maxQ, g.q.len())
	}
	// Per active call: one SIP event, two RTP events and up to 2*(60/20+1)
	// jittered packets in flight; plus the spawn event.
	if limit := 20*(1+2+8) + 1; maxQ > limit {
		t.Errorf("queue reached %d events for %d frames, want at most %d", maxQ, frames, limit)
	}
	if len(g.frames) > 4 {
		t.Errorf("%d frame buffers, want at most 4", len(g.frames))
	}
}

func TestReadPacketDataCopies(t *testing.T) {
	g, err := New(Options{Calls: 1, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := g.ReadPacketData()
	if err != nil {
		t.Fatal(err)
	}
	keep := append([]byte(nil), a...)
	if _, _, err := g.ReadPacketData(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, keep) {
		t.Error("ReadPacketData's result changed after the next read")
	}
}

// TestRTPPathAllocs: in steady state (RTP only), yielding a frame does not
// allocate.
func TestRTPPathAllocs(t *testing.T) {
	g, err := New(Options{Calls: 50, CPS: 1000, Duration: time.Minute, Loss: 1, Jitter: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 20000 { // past call setup and buffer growth
		if _, _, err := g.ZeroCopyReadPacketData(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(2000, func() {
		if _, _, err := g.ZeroCopyReadPacketData(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per RTP frame, want 0", allocs)
	}
}

func BenchmarkGenerate(b *testing.B) {
	o := Options{Calls: 1000, Concurrency: 1000, Duration: 60 * time.Second, CPS: 50, Seed: 1, Loss: 0.5, Jitter: 4 * time.Millisecond}
	g, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	var bytesOut int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		data, _, err := g.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			if g, err = New(o); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		bytesOut += int64(len(data))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.SetBytes(bytesOut / int64(max(b.N, 1)))
}

func BenchmarkWritePcap(b *testing.B) {
	o := Options{Calls: 100, Concurrency: 100, Duration: 10 * time.Second, CPS: 50, Seed: 1}
	b.ReportAllocs()
	frames := 0
	for b.Loop() {
		truth, err := WritePcap(context.Background(), io.Discard, o)
		if err != nil {
			b.Fatal(err)
		}
		frames += truth.Frames
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "packets/s")
}

// Above 25,000 concurrent calls the PBX's media addresses move on per block
// of 25,000 calls: every answered call's PBX RTP address is its own, while
// SIP stays on the PBX's one address, for both IP versions.
func TestConcurrencyAbovePortBlock(t *testing.T) {
	for v6, calls := range map[bool]int{false: 50001, true: 25001} {
		g, err := New(Options{Calls: calls, Concurrency: calls, CPS: 1e6, Duration: Ptime, IPv6: v6})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, _, err := g.ZeroCopyReadPacketData(); err != nil {
				break
			}
		}
		tr := g.Truth()
		seen := map[netip.AddrPort]bool{}
		addrs := map[netip.Addr]bool{}
		for _, s := range tr.Streams {
			if s.Direction != 0 {
				continue
			}
			if seen[s.Dst] {
				t.Fatalf("IPv6 %v: PBX RTP address %v used by two calls", v6, s.Dst)
			}
			seen[s.Dst] = true
			addrs[s.Dst.Addr()] = true
		}
		if want := (calls + 24999) / 25000; len(seen) != calls || len(addrs) != want {
			t.Fatalf("IPv6 %v: %d PBX RTP addresses on %d hosts, want %d on %d", v6, len(seen), len(addrs), calls, want)
		}
		if sip := tr.Calls[calls-1].PBXSIP.Addr(); sip != PBXAddr4 && sip != PBXAddr6 {
			t.Fatalf("SIP moved to %v", sip)
		}
	}
}
