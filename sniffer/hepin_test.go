package sniffer

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/hep"
	"pbx-agent/sniffer/hep/heptest"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/simulate"
)

const (
	tlsCallID  = "3b5a193e80f4d691"                     // A-leg, inside TLS: only in HEP
	udpCallID  = "a588a11b-2f9b-4179-924e-64e8d496c28c" // B-leg, on the wire and in HEP
	hepTLSPcap = "asterisk-call-hep-tls.pcap"
)

type hepRun struct {
	calls map[string]call.CDR
	regs  []call.Register
	sn    *Sniffer
}

// replayHEP replays the real Asterisk hep-tls recording; skip drops frames
// (decoded with a separate decoder) before the sniffer sees them.
func replayHEP(t testing.TB, in HEPInput, skip func(p *decode.Packet) bool) hepRun {
	t.Helper()
	r := hepRun{calls: map[string]call.CDR{}}
	r.sn = New(Config{HEP: in, Call: call.Config{IdleTimeout: -1,
		OnCallEnd:  func(c *call.CDR) { r.calls[c.CallID] = *c },
		OnRegister: func(reg *call.Register) { r.regs = append(r.regs, *reg) }}})
	src, err := capture.OpenFile(fixture.Repo(t, "testdata", "pcap", hepTLSPcap))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dec, _ := decode.New(src.LinkType())
	var p decode.Packet
	for data, ci := range fixture.Packets(t, src.ReadPacket) {
		if skip != nil {
			if ok, _ := dec.Decode(data, ci.Timestamp, &p); ok && skip(&p) {
				continue
			}
		}
		if err := r.sn.HandleFrame(src.LinkType(), data, ci.Timestamp); err != nil {
			t.Fatal(err)
		}
	}
	r.sn.Flush()
	r.sn.publish()
	return r
}

// tsharkStreams returns tshark's rtp,streams rows of the recording, keyed
// "src dst" (Alice's RTP needs -d: its SDP is inside TLS).
func tsharkStreams(t *testing.T) map[string][]string {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (make test installs it); skipping the referee comparison")
	}
	out, err := exec.Command(bin, "-n", "-r", fixture.Repo(t, "testdata", "pcap", hepTLSPcap), "-q", "-z", "rtp,streams",
		"-d", "udp.port==20036,rtp").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 17 && strings.HasPrefix(f[6], "0x") {
			rows[f[2]+":"+f[3]+" "+f[4]+":"+f[5]] = f
		}
	}
	return rows
}

// TestHEPTLSCall is the first acceptance line: with HEP input on,
// the TLS leg appears (from HEP only) beside the UDP leg, its RTP taken
// from the wire with the figures tshark gives; without HEP it is absent;
// the UDP leg seen both ways is the same as without HEP (counted once).
func TestHEPTLSCall(t *testing.T) {
	off := replayHEP(t, HEPInput{}, nil)
	if _, ok := off.calls[tlsCallID]; ok || len(off.calls) != 1 {
		t.Fatalf("without HEP: calls %v, want only the UDP leg", keys(off.calls))
	}
	on := replayHEP(t, HEPInput{Enabled: true, Password: "hepsecret"}, nil)
	if len(on.calls) != 2 {
		t.Fatalf("with HEP: calls %v, want both legs", keys(on.calls))
	}
	a, b := on.calls[tlsCallID], on.calls[udpCallID]
	if a.Caller != "1001" || a.Called != "1002" || a.CallerPort != 54042 || a.CalledPort != 5061 || a.LastSIPResponseNum != 200 ||
		a.WhoHanged != "caller" || len(a.Streams) != 2 {
		t.Errorf("TLS leg: %+v", a)
	}
	// HEP time is the packet time: the INVITE Asterisk received at .068 (ms-truncated by res_hep).
	if got := a.CallDate.Format("15:04:05.000000"); got != "00:31:48.068000" {
		t.Errorf("TLS leg calldate %s", got)
	}
	ob := off.calls[udpCallID]
	b.CallRef, ob.CallRef = 0, 0
	if !sameCDR(&b, &ob) {
		t.Errorf("UDP leg differs with HEP on:\n got %+v\nwant %+v", b, ob)
	}
	st := on.sn.Stats().HEP
	t.Logf("HEP input: %+v", st)
	if st.Packets != 40 || st.Errors != 0 || st.AuthFailed != 0 || st.Duplicates != 14 || st.RTCPJSON != 8 {
		t.Errorf("HEP stats %+v, want 40 packets, 14 duplicates (the UDP SIP), 8 RTCP", st)
	}
	aors := map[string]int{}
	for _, r := range on.regs {
		aors[r.ToNum]++
	}
	if aors["1001"] == 0 || aors["1002"] == 0 {
		t.Errorf("registers with HEP: %v, want Alice's (TLS) and Bob's", aors)
	}
	ref := tsharkStreams(t)
	for _, c := range []call.CDR{a, b} {
		for _, s := range c.Streams {
			row := ref[s.Src.String()+" "+s.Dst.String()]
			if row == nil {
				t.Errorf("%s: stream %v→%v not in tshark's list", c.CallID, s.Src, s.Dst)
				continue
			}
			n := len(row)
			num := func(i int) float64 { v, _ := strconv.ParseFloat(row[i], 64); return v }
			ssrc, _ := strconv.ParseUint(row[6][2:], 16, 32)
			if uint32(ssrc) != s.SSRC || s.Received != int(num(n-9)) || s.LostRaw != int(num(n-8)) ||
				!near(s.MaxDelta, num(n-4)) || !near(s.AvgJitter, num(n-2)) || !near(s.MaxJitter, num(n-1)) {
				t.Errorf("%s: stream %v→%v: ours %d pkts lost %d maxdelta %.3f jitter %.3f/%.3f; tshark %v",
					c.CallID, s.Src, s.Dst, s.Received, s.LostRaw, s.MaxDelta, s.AvgJitter, s.MaxJitter, row[n-9:])
			}
		}
	}
}

func near(a, b float64) bool { return a-b < 0.0015 && b-a < 0.0015 }

func keys(m map[string]call.CDR) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// sameCDR compares the call-level fields of two CDRs and their streams'
// packet figures (not the RTCP part: see TestHEPRTCP). Times may differ by
// less than a millisecond: of a message seen both ways, the first copy
// counts, and Asterisk's HEP of what it sent can precede the wire copy in
// the capture (the B-leg INVITE: HEP 00:31:48.133784, wire .134074).
func sameCDR(a, b *call.CDR) bool {
	ms := func(x, y time.Time) bool { d := x.Sub(y); return d < time.Millisecond && d > -time.Millisecond }
	if a.CallID != b.CallID || !ms(a.CallDate, b.CallDate) || !ms(a.CallEnd, b.CallEnd) || a.LastSIPResponseNum != b.LastSIPResponseNum ||
		a.Caller != b.Caller || a.Called != b.Called || len(a.Responses) != len(b.Responses) || len(a.Streams) != len(b.Streams) || a.Bye != b.Bye {
		return false
	}
	for i := range a.Responses {
		if a.Responses[i] != b.Responses[i] {
			return false
		}
	}
	for i := range a.Streams {
		if a.Streams[i].Received != b.Streams[i].Received || a.Streams[i].SSRC != b.Streams[i].SSRC {
			return false
		}
	}
	return true
}

func isRTCPPort(p *decode.Packet) bool {
	switch p.Src.Port() {
	case 20037, 10137, 20195, 10157:
		return p.Transport == decode.UDP
	}
	return false
}

// rtcpReports sums the RTCP report blocks applied to the streams of calls.
func rtcpReports(r hepRun) (n int, per map[uint32]rtp.RTCPStats) {
	per = map[uint32]rtp.RTCPStats{}
	for _, c := range r.calls {
		for _, s := range c.Streams {
			n += s.RTCP.Reports
			per[s.SSRC] = s.RTCP
		}
	}
	return n, per
}

// TestHEPRTCP: RTCP reports res_hep_rtcp sent as JSON fill the streams'
// RTCP figures when the wire RTCP is not seen, and are not counted twice
// when it is.
func TestHEPRTCP(t *testing.T) {
	wire := replayHEP(t, HEPInput{}, nil)
	both := replayHEP(t, HEPInput{Enabled: true}, nil)
	hepOnly := replayHEP(t, HEPInput{Enabled: true}, isRTCPPort)
	nWire, _ := rtcpReports(wire)
	nBoth, perBoth := rtcpReports(both)
	nHEP, perHEP := rtcpReports(hepOnly)
	t.Logf("RTCP report blocks applied: wire only (no HEP) %d, wire + HEP %d, HEP with the wire RTCP removed %d", nWire, nBoth, nHEP)
	if nHEP == 0 {
		t.Fatal("no RTCP report applied from HEP with the wire RTCP removed")
	}
	// Both legs' streams: the wire-only run sees the UDP leg's streams only.
	if nBoth != nHEP || nBoth < nWire {
		t.Errorf("reports: wire-only run %d, wire+HEP %d, HEP-only %d: want wire+HEP == HEP-only (counted once)", nWire, nBoth, nHEP)
	}
	for ssrc, s := range perHEP {
		if b := perBoth[ssrc]; b.Reports != s.Reports || b.Lost != s.Lost || !near(b.MaxJitter, s.MaxJitter) {
			t.Errorf("stream %#x: HEP RTCP %+v, wire+HEP %+v", ssrc, s, b)
		}
	}
}

// TestHEPBadInput: wrong password and broken HEP are counted and dropped.
func TestHEPBadInput(t *testing.T) {
	ds, err := heptest.ReadUDP(fixture.Repo(t, "testdata", "pcap", hepTLSPcap), 9060)
	if err != nil {
		t.Fatal(err)
	}
	sn := New(Config{HEP: HEPInput{Enabled: true, Password: "other"}})
	for _, d := range ds {
		sn.HandleHEP(d.Payload, d.Packet.Time)
		sn.HandleHEP(d.Payload[:len(d.Payload)/2], d.Packet.Time)
		bad := bytes.Clone(d.Payload)
		bad[10], bad[11] = 0xff, 0xff
		sn.HandleHEP(bad, d.Packet.Time)
	}
	sn.Flush()
	sn.publish()
	st := sn.Stats().HEP
	if st.AuthFailed != 40 || st.Errors != 80 || st.Packets != 0 || sn.Table().Stats().CallsStarted != 0 {
		t.Errorf("stats %+v, calls %d: want 40 auth failures, 80 errors, nothing accepted", st, sn.Table().Stats().CallsStarted)
	}
}

// TestHEPSystemTime: with UseSystemTime the arrival time is the packet time.
func TestHEPSystemTime(t *testing.T) {
	ds, err := heptest.ReadUDP(fixture.Repo(t, "testdata", "pcap", hepTLSPcap), 9060)
	if err != nil {
		t.Fatal(err)
	}
	arrival := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var got []call.CDR
	sn := New(Config{HEP: HEPInput{Enabled: true, UseSystemTime: true}, Call: call.Config{IdleTimeout: -1,
		OnCallEnd: func(c *call.CDR) { got = append(got, *c) }}})
	for i, d := range ds {
		sn.HandleHEP(d.Payload, arrival.Add(time.Duration(i)*time.Millisecond))
	}
	sn.Flush()
	if len(got) != 2 || got[0].CallDate.Year() != 2030 {
		t.Errorf("calls %d, first calldate %v: want 2 calls timed by arrival", len(got), got[0].CallDate)
	}
}

// TestDupFilter: a retransmission (same bytes twice on the wire) stays two
// messages; each HEP copy pairs with one wire copy.
func TestDupFilter(t *testing.T) {
	var f dupFilter
	now := time.Unix(1000, 0)
	msg := []byte("INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n")
	steps := []struct {
		o    origin
		dt   time.Duration
		want bool
	}{
		{originWire, 0, false},
		{originWire, 500 * time.Millisecond, false}, // retransmission
		{originHEP, 510 * time.Millisecond, true},
		{originHEP, 520 * time.Millisecond, true},
		{originHEP, 530 * time.Millisecond, false}, // a third copy only HEP saw
		{originWire, 5 * time.Second, false},       // outside the window
	}
	for i, s := range steps {
		if got := f.seen(msg, now.Add(s.dt), s.o); got != s.want {
			t.Errorf("step %d: seen = %v, want %v", i, got, s.want)
		}
	}
}

// recorder is a HEPOutput keeping encoded copies.
type recorder struct{ pkts [][]byte }

func (r *recorder) Send(p *hep.Packet) bool {
	b, err := hep.AppendMarshal(nil, p)
	if err != nil {
		return false
	}
	r.pkts = append(r.pkts, b)
	return true
}

// TestHEPOutput: every SIP message and RTCP packet of the recording is
// handed to the HEP output once, with its addresses, the Call-ID as
// correlation id, and passes the HEP3 chunk check.
func TestHEPOutput(t *testing.T) {
	rec := &recorder{}
	sn := New(Config{HEP: HEPInput{Enabled: true}, HEPOut: rec})
	if err := sn.ReplayFile(t.Context(), fixture.Repo(t, "testdata", "pcap", hepTLSPcap), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	sn.Flush()
	var p hep.Packet
	kinds := map[uint8]int{}
	for i, b := range rec.pkts {
		if err := heptest.Check(b); err != nil {
			t.Errorf("packet %d: %v", i, err)
		}
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		kinds[p.ProtoType]++
		if p.ProtoType == hep.ProtoSIP && !bytes.Contains(p.Payload, append([]byte("Call-ID: "), p.CorrelationID...)) {
			t.Errorf("packet %d: correlation id %q", i, p.CorrelationID)
		}
		if p.ProtoType == hep.ProtoSIP && string(p.CorrelationID) == tlsCallID && (p.IPProto != hep.IPProtoTCP ||
			(p.Src != netip.MustParseAddrPort("127.0.0.1:54042") && p.Dst != netip.MustParseAddrPort("127.0.0.1:54042"))) {
			t.Errorf("TLS leg message %d: %v→%v proto %d", i, p.Src, p.Dst, p.IPProto)
		}
	}
	// 32 distinct SIP messages (14 on the wire, all also in HEP, plus 18 only
	// in HEP); RTCP: the wire's SR/RR of the calls' streams.
	if kinds[hep.ProtoSIP] != 32 || kinds[hep.ProtoRTCPJSON] == 0 || kinds[hep.ProtoQoSReport] != 4 {
		t.Errorf("sent %v, want 32 SIP, the RTCP reports and 4 stream reports", kinds)
	}
}

// TestHEPSynthFrame: a per-call pcap gets an Ethernet/IPv4/UDP frame that
// gopacket-based decoding reads back to the HEP addresses and payload.
func TestHEPSynthFrame(t *testing.T) {
	payload := []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")
	for _, c := range []struct{ src, dst string }{{"10.1.2.3:5061", "10.1.2.4:40000"}, {"[2001:db8::1]:5061", "[2001:db8::2]:5062"}} {
		src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
		frame := appendSynthFrame(nil, layers.LinkTypeEthernet, src, dst, payload)
		d, _ := decode.New(layers.LinkTypeEthernet)
		var p decode.Packet
		if ok, err := d.Decode(frame, time.Unix(1, 0), &p); !ok || err != nil {
			t.Fatalf("%s: decode: %v", c.src, err)
		}
		if p.Src != src || p.Dst != dst || p.Transport != decode.UDP || !bytes.Equal(p.Payload, payload) {
			t.Errorf("%s: decoded %v→%v %v %q", c.src, p.Src, p.Dst, p.Transport, p.Payload)
		}
	}
}

// BenchmarkHEPInput: HEP packets through the packet path (decode, password
// check, SIP parse, call table). "call": the Asterisk recording's 40 HEP
// packets in a loop, each round a new call (REGISTERs, INVITE dialog, RTCP
// JSON: call set-up and JSON parsing allocate); "in-dialog": one SIP
// message of an established call over and over (the steady state). One op
// = one HEP packet; reports HEP packets/s.
func BenchmarkHEPInput(b *testing.B) {
	ds, err := heptest.ReadUDP(fixture.Repo(b, "testdata", "pcap", hepTLSPcap), 9060)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("call", func(b *testing.B) {
		sn := New(Config{HEP: HEPInput{Enabled: true, Password: "hepsecret"}, Call: call.Config{IdleTimeout: -1}})
		b.ReportAllocs()
		n := 0
		cpu0 := cputime.Process()
		for b.Loop() {
			d := &ds[n%len(ds)]
			sn.HandleHEP(d.Payload, d.Packet.Time)
			n++
			if n%len(ds) == 0 {
				sn.Flush() // each round is a fresh call, as in production
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hep_pkts/s")
		b.ReportMetric(float64(b.N)/(cputime.Process()-cpu0).Seconds(), "hep_pkts/cpu-s")
	})
	b.Run("in-dialog", func(b *testing.B) {
		sn := New(Config{HEP: HEPInput{Enabled: true, Password: "hepsecret"}, Call: call.Config{IdleTimeout: -1}})
		var p hep.Packet
		last := -1
		for i, d := range ds[:20] { // up to the A-leg's 200 OK: the call is established
			sn.HandleHEP(d.Payload, d.Packet.Time)
			if p.Unmarshal(d.Payload) == nil && p.ProtoType == hep.ProtoSIP && string(p.CorrelationID) == tlsCallID {
				last = i
			}
		}
		msg := ds[last]
		b.ReportAllocs()
		cpu0 := cputime.Process()
		for b.Loop() {
			sn.HandleHEP(msg.Payload, msg.Packet.Time)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hep_pkts/s")
		b.ReportMetric(float64(b.N)/(cputime.Process()-cpu0).Seconds(), "hep_pkts/cpu-s")
	})
}

// BenchmarkReplayHEPOutput is the cost of HEP output on the packet path:
// one op replays a generated 300-call capture (read into memory first)
// through a fresh sniffer, without HEP output ("off") and with every SIP
// message, RTCP report and stream report sent to a real UDP socket ("on");
// compare their packets/s, taken in the same run.
func BenchmarkReplayHEPOutput(b *testing.B) {
	path := filepath.Join(b.TempDir(), "300calls.pcap")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := simulate.WritePcap(context.Background(), f, simulate.Options{Calls: 300, Concurrency: 300, Duration: 10e9, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	f.Close()
	src, err := capture.OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	type frame struct {
		data []byte
		ts   time.Time
	}
	var frames []frame
	for {
		data, ci, err := src.ReadPacket()
		if err != nil {
			break
		}
		frames = append(frames, frame{bytes.Clone(data), ci.Timestamp})
	}
	link := src.LinkType()
	src.Close()
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := sink.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	ps, _ := ParsePorts("5060")
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			var out *hep.Sender
			if mode == "on" {
				out, err = hep.NewSender(hep.SenderConfig{Addr: sink.LocalAddr().String(), CaptureID: 1, NodeName: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go func() { _ = out.Run(ctx) }()
			}
			b.ReportAllocs()
			calls := 0
			cpu0 := cputime.Process()
			for b.Loop() {
				cfg := Config{SIPPorts: ps, Call: call.Config{IdleTimeout: -1, OnCallEnd: func(*call.CDR) { calls++ }}}
				if out != nil {
					cfg.HEPOut = out
				}
				sn := New(cfg)
				for i := range frames {
					_ = sn.HandleFrame(link, frames[i].data, frames[i].ts)
				}
				sn.Flush()
			}
			b.ReportMetric(float64(len(frames))*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			// CPU time of the whole process (the sender's goroutine included,
			// and the sink's reads), less sensitive than wall time to a
			// shared machine.
			b.ReportMetric(float64(len(frames))*float64(b.N)/(cputime.Process()-cpu0).Seconds(), "packets/cpu-s")
			if out != nil {
				st := out.Stats()
				b.ReportMetric(float64(st.Queued)/float64(b.N), "hep_sent/op")
				b.ReportMetric(float64(st.Dropped)/float64(b.N), "hep_dropped/op")
			}
		})
	}
}

// TestHEPConcurrent: a capture and a HEP listener feed one sniffer from two
// goroutines (HEPInput.Concurrent), as live; run with -race. The wire and
// HEP copies of the UDP leg still count once.
func TestHEPConcurrent(t *testing.T) {
	ds, err := heptest.ReadUDP(fixture.Repo(t, "testdata", "pcap", hepTLSPcap), 9060)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]call.CDR{}
	var mu sync.Mutex
	sn := New(Config{HEP: HEPInput{Enabled: true, Concurrent: true}, Call: call.Config{IdleTimeout: -1,
		OnCallEnd: func(c *call.CDR) { mu.Lock(); calls[c.CallID] = *c; mu.Unlock() }}})
	src, err := capture.OpenFile(fixture.Repo(t, "testdata", "pcap", hepTLSPcap))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, d := range ds {
			sn.HandleHEP(d.Payload, d.Packet.Time)
			_ = sn.ActiveCalls() // readers run beside the packet path
		}
	}()
	dec, _ := decode.New(src.LinkType())
	var p decode.Packet
	for {
		data, ci, err := src.ReadPacket()
		if err != nil {
			break
		}
		if ok, _ := dec.Decode(data, ci.Timestamp, &p); ok && p.Dst.Port() == 9060 {
			continue // HEP comes by the other goroutine
		}
		if err := sn.HandleFrame(src.LinkType(), data, ci.Timestamp); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	sn.Flush()
	mu.Lock()
	defer mu.Unlock()
	if _, ok := calls[tlsCallID]; !ok || len(calls) != 2 {
		t.Errorf("calls %v, want both legs", keys(calls))
	}
}

// TestHEPIPv4Only: ipv6 = no (IPv4Only) holds for what HEP carries too: the
// real Asterisk HEP call with its addresses made IPv6 gives no call, the
// packets are counted ignored; read, it gives its two calls.
func TestHEPIPv4Only(t *testing.T) {
	ds, err := heptest.ReadUDP(fixture.Repo(t, "testdata", "pcap", hepTLSPcap), 9060)
	if err != nil {
		t.Fatal(err)
	}
	var v6 [][]byte
	for _, d := range ds {
		var p hep.Packet
		if err := p.Unmarshal(d.Payload); err != nil {
			t.Fatal(err)
		}
		six := func(a netip.AddrPort) netip.AddrPort {
			b := a.Addr().As16()
			b[0], b[1] = 0xfd, 0 // fd00::7f00:1 for 127.0.0.1: same host bits, IPv6
			return netip.AddrPortFrom(netip.AddrFrom16(b), a.Port())
		}
		p.Src, p.Dst = six(p.Src), six(p.Dst)
		b, err := hep.AppendMarshal(nil, &p)
		if err != nil {
			t.Fatal(err)
		}
		v6 = append(v6, b)
	}
	for _, tc := range []struct {
		ipv4Only bool
		calls    int
	}{{false, 2}, {true, 0}} {
		t.Run(fmt.Sprintf("IPv4Only=%v", tc.ipv4Only), func(t *testing.T) {
			var got int
			sn := New(Config{HEP: HEPInput{Enabled: true}, IPv4Only: tc.ipv4Only, Call: call.Config{IdleTimeout: -1,
				OnCallEnd: func(*call.CDR) { got++ }}})
			for i, b := range v6 {
				sn.HandleHEP(b, ds[i].Packet.Time)
			}
			sn.Flush()
			sn.Tick(ds[len(ds)-1].Packet.Time) // publishes the counters
			st := sn.Stats()
			if got != tc.calls || (st.IPv6Ignored > 0) != tc.ipv4Only {
				t.Errorf("%d calls, %d ignored; want %d calls", got, st.IPv6Ignored, tc.calls)
			}
		})
	}
}
