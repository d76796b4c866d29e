// Package callpcap writes, for tests, a two-way call as a spool stores it:
// a SIP pcap (INVITE and 200 OK with their SDP) and an RTP pcap whose
// streams carry a tone per side (caller 700 Hz, callee 1300 Hz by
// default) encoded in any codec the codec package encodes (G.711 by table
// lookup), with a stretch optionally paused the way the spool stores it
// (payload cut after the RTP header, G.711 silenced).
package callpcap

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/rtp"
)

// Call describes the call to write.
type Call struct {
	Codec string // codec name (codec.PCMU, codec.G722, codec.Opus, …)
	PT    uint8  // payload type (dynamic for Opus: named in the SDP)
	// CalleeCodec and CalleePT, when set, are the callee's codec (each
	// side sends its own; both SDPs name both).
	CalleeCodec string
	CalleePT    uint8
	Duration    time.Duration // of each stream
	CallerHz    float64       // default 700
	CalleeHz    float64       // default 1300
	// PauseFrom, PauseTo: packets sent in [PauseFrom, PauseTo) after the
	// start are stored paused.
	PauseFrom, PauseTo time.Duration
	// CalleeFirst starts the callee's stream 60 ms before the caller's
	// (who speaks first must come from the SDP, not the order).
	CalleeFirst bool
	Start       time.Time // default 2026-01-02 03:04:05 UTC
}

// Addresses of the call's parties.
var (
	CallerIP = net.IPv4(10, 0, 0, 1)
	CalleeIP = net.IPv4(10, 0, 0, 2)
)

const (
	callerPort = 40000
	calleePort = 50000
	callID     = "callpcap-1@test"
)

// CallID is the Call-ID of the written call.
const CallID = callID

type packet struct {
	at   time.Time
	data []byte
}

// Files are the pcaps Write wrote.
type Files struct {
	SIP, RTP string // the call's SIP and RTP, as a spool stores them
	Both     string // everything in time order, a BYE last: a capture to replay
}

// Write writes the call's pcaps into dir.
func Write(tb testing.TB, dir string, c Call) Files {
	tb.Helper()
	if c.CallerHz == 0 {
		c.CallerHz = 700
	}
	if c.CalleeHz == 0 {
		c.CalleeHz = 1300
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	if c.CalleeCodec == "" {
		c.CalleeCodec, c.CalleePT = c.Codec, c.PT
	}
	names := [2]string{canonical(c.Codec), canonical(c.CalleeCodec)}
	pts := [2]uint8{c.PT, c.CalleePT}
	sdp := func(ip net.IP, port int) string {
		s := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP %d %d 101\r\n", ip, ip, port, pts[0], pts[1])
		for i, name := range names {
			s += fmt.Sprintf("a=rtpmap:%d %s\r\n", pts[i], rtpmap(name))
		}
		return s + "a=rtpmap:101 telephone-event/8000\r\n"
	}
	sipMsg := func(first, cseq, body string) []byte {
		ctype := ""
		if body != "" {
			ctype = "Content-Type: application/sdp\r\n"
		}
		to := "<sip:b@10.0.0.2>;tag=2"
		if strings.HasPrefix(first, "INVITE") {
			to = "<sip:b@10.0.0.2>"
		}
		return []byte(first + "\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK" + cseq[:1] + "\r\nMax-Forwards: 70\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\nTo: " + to + "\r\n" +
			"Call-ID: " + callID + "\r\nCSeq: " + cseq + "\r\nContact: <sip:a@10.0.0.1>\r\n" + ctype +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body)
	}
	sipPkts := []packet{
		{c.Start.Add(-time.Second), udp(tb, CallerIP, CalleeIP, 5060, 5060, sipMsg("INVITE sip:b@10.0.0.2 SIP/2.0", "1 INVITE", sdp(CallerIP, callerPort)))},
		{c.Start.Add(-500 * time.Millisecond), udp(tb, CalleeIP, CallerIP, 5060, 5060, sipMsg("SIP/2.0 200 OK", "1 INVITE", sdp(CalleeIP, calleePort)))},
		{c.Start.Add(c.Duration + 500*time.Millisecond), udp(tb, CallerIP, CalleeIP, 5060, 5060, sipMsg("BYE sip:b@10.0.0.2 SIP/2.0", "2 BYE", ""))},
		{c.Start.Add(c.Duration + 510*time.Millisecond), udp(tb, CalleeIP, CallerIP, 5060, 5060, sipMsg("SIP/2.0 200 OK", "2 BYE", ""))},
	}
	var rtpPkts []packet
	for side, s := range []struct {
		hz       float64
		src, dst net.IP
		sp, dp   uint16
		offset   time.Duration
	}{
		{c.CallerHz, CallerIP, CalleeIP, callerPort, calleePort, 0},
		{c.CalleeHz, CalleeIP, CallerIP, calleePort, callerPort, 0},
	} {
		if c.CalleeFirst {
			s.offset = map[int]time.Duration{0: 60 * time.Millisecond, 1: 0}[side]
		}
		name, pt := names[side], pts[side]
		ptime := Ptime(name)
		for i, p := range Encode(tb, name, s.hz, int(c.Duration/ptime)) {
			off := time.Duration(i) * ptime
			if off >= c.PauseFrom && off < c.PauseTo {
				if _, ok := rtp.SilenceByte(pt); ok {
					p = append([]byte(nil), p...)
					rtp.FillSilence(pt, p)
				} else {
					p = nil
				}
			}
			rtpPkts = append(rtpPkts, packet{c.Start.Add(s.offset + off), udp(tb, s.src, s.dst, s.sp, s.dp, append(rtpHeader(pt, uint16(i), uint32(i*TimestampStep(name)), uint32(0x1000+side)), p...))})
		}
	}
	byTime := func(p []packet) []packet {
		sort.SliceStable(p, func(i, j int) bool { return p[i].at.Before(p[j].at) })
		return p
	}
	f := Files{SIP: filepath.Join(dir, "call-sip.pcap"), RTP: filepath.Join(dir, "call-rtp.pcap"), Both: filepath.Join(dir, "call.pcap")}
	writePcap(tb, f.SIP, sipPkts)
	writePcap(tb, f.RTP, byTime(rtpPkts))
	writePcap(tb, f.Both, byTime(append(sipPkts, rtpPkts...)))
	return f
}

// rtpHeader is a 12-byte RTP header (version 2, no CSRC, no extension).
func rtpHeader(pt uint8, seq uint16, ts, ssrc uint32) []byte {
	h := make([]byte, 12)
	h[0], h[1] = 0x80, pt&0x7f
	binary.BigEndian.PutUint16(h[2:], seq)
	binary.BigEndian.PutUint32(h[4:], ts)
	binary.BigEndian.PutUint32(h[8:], ssrc)
	return h
}

// rtpmap is the SDP rtpmap of a codec: its encoding name and RTP clock.
func rtpmap(name string) string {
	switch name {
	case codec.Opus:
		return "opus/48000/2"
	case codec.SpeexWB:
		return "speex/16000"
	}
	return name + "/8000" // G.722's RTP clock too (RFC 3551)
}

// Ptime is the codec's packet time: 30 ms for G.723.1, 20 ms for the others.
func Ptime(name string) time.Duration {
	if codec.Canonical(name) == codec.G723 {
		return 30 * time.Millisecond
	}
	return 20 * time.Millisecond
}

// TimestampStep is the RTP timestamp increment of one packet in the codec
// (48000 Hz clock for Opus, 16000 for wideband Speex, 8000 for the others,
// G.722 included).
func TimestampStep(name string) int {
	step := int(Ptime(name) / time.Millisecond * 8)
	switch codec.Canonical(name) {
	case codec.Opus:
		return step * 6
	case codec.SpeexWB:
		return step * 2
	}
	return step
}

// Encode returns n payloads (one packet time each) of a hz tone at amplitude 8000 in codec
// name.
func Encode(tb testing.TB, name string, hz float64, n int) [][]byte {
	tb.Helper()
	out := make([][]byte, 0, n)
	switch name = canonical(name); name {
	case codec.PCMU, codec.PCMA:
		pcm := tone.Sine(160*n, 0, 8000, hz, 8000)
		for i := range n {
			p := make([]byte, 160)
			for j := range p {
				p[j] = g711(name == codec.PCMA, pcm[i*160+j])
			}
			out = append(out, p)
		}
		return out
	}
	e, err := codec.NewEncoder(name)
	if err != nil {
		tb.Skipf("no %s encoder in this build: %v", name, err)
	}
	defer e.Close()
	fs := e.FrameSamples()
	pcm := tone.Sine(fs*n, 0, float64(codec.NativeRate(name)), hz, 8000)
	buf := make([]byte, 1500)
	for i := range n {
		k, err := e.Encode(pcm[i*fs:(i+1)*fs], buf)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, append([]byte(nil), buf[:k]...))
	}
	return out
}

// canonical is codec.Canonical, keeping "speex/16000" (wideband Speex).
func canonical(name string) string {
	if n, clock, ok := strings.Cut(name, "/"); ok && clock == "16000" {
		return codec.SDPName(n, 16000)
	}
	return codec.Canonical(name)
}

// g711 is the code whose decoded value is nearest s.
func g711(alaw bool, s int16) byte {
	best, bestD := byte(0), 1<<30
	for b := range 256 {
		v := rtp.ULawToLinear(byte(b))
		if alaw {
			v = rtp.ALawToLinear(byte(b))
		}
		if d := abs(int(v) - int(s)); d < bestD {
			best, bestD = byte(b), d
		}
	}
	return best
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func udp(tb testing.TB, src, dst net.IP, sp, dp uint16, payload []byte) []byte {
	tb.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	u := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, u, gopacket.Payload(payload)); err != nil {
		tb.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func writePcap(tb testing.TB, path string, pkts []packet) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: p.at, CaptureLength: len(p.data), Length: len(p.data)}, p.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// Skip skips the test when this build cannot decode the codec (built
// without cgo, or without libavcodec for G.723.1 and iLBC).
func Skip(tb testing.TB, name string) {
	tb.Helper()
	name = canonical(name)
	d, err := codec.New(name, codec.NativeRate(name))
	if err != nil {
		tb.Skipf("%s is not decoded in this build: %v", name, err)
	}
	d.Close()
}
