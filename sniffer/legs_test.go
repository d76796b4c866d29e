package sniffer

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/decode"
)

// legScript drives one call through HandlePacket: SIP and RTP between a
// phone (10.0.0.1) and a PBX (10.0.0.2), on the packet clock.
type legScript struct {
	t     *testing.T
	sn    *Sniffer
	now   time.Time
	seq   uint16
	cseq  int
	calls []call.CDR
}

const (
	legPhone = "10.0.0.1"
	legPBX   = "10.0.0.2"
)

func newLegScript(t *testing.T) *legScript {
	ls := &legScript{t: t, now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	ls.sn = New(Config{Call: call.Config{IdleTimeout: -1, OnCallEnd: func(c *call.CDR) { ls.calls = append(ls.calls, *c) }}})
	return ls
}

func (ls *legScript) packet(src, dst string, payload []byte) {
	ls.now = ls.now.Add(20 * time.Millisecond)
	p := decode.Packet{Time: ls.now, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst),
		Transport: decode.UDP, Payload: payload}
	ls.sn.HandlePacket(&p)
}

// sip sends a request (method) or a response (code) of CSeq method cseqM
// with the SDP body sdp ("" = none).
func (ls *legScript) sip(fromPhone bool, first, cseqM, sdp string) {
	src, dst := legPhone+":5060", legPBX+":5060"
	if !fromPhone {
		src, dst = dst, src
	}
	if strings.HasPrefix(first, "INVITE") || first == "ACK" || first == "BYE" {
		ls.cseq++
		first += " sip:200@" + legPBX + " SIP/2.0"
	} else {
		first = "SIP/2.0 " + first
	}
	ct := ""
	if sdp != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	toTag := ";tag=b"
	if ls.cseq == 1 && first[0] == 'I' {
		toTag = "" // the initial INVITE: no dialog yet
	}
	msg := fmt.Sprintf("%s\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%d\r\nFrom: <sip:100@%s>;tag=a\r\nTo: <sip:200@%s>%s\r\n"+
		"Call-ID: legs@test\r\nCSeq: %d %s\r\n%sContent-Length: %d\r\n\r\n%s",
		first, legPhone, ls.cseq, legPhone, legPBX, toTag, ls.cseq, cseqM, ct, len(sdp), sdp)
	ls.packet(src, dst, []byte(msg))
}

func audioSDP(ip string, port int, pts string) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\n"+
		"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n", ip, ip, port, pts)
}

func faxSDP(ip string, port int) string {
	return fmt.Sprintf("v=0\r\no=- 1 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=image %d udptl t38\r\n"+
		"a=T38FaxVersion:0\r\na=T38FaxRateManagement:transferredTCF\r\n", ip, ip, port)
}

// rtp sends n RTP packets of payload type pt and SSRC ssrc from the phone.
// negotiate plays an INVITE from the phone offering audio with the payload
// types offer and the PBX's 200 OK answering with answer.
func (ls *legScript) negotiate(offer, answer string) {
	ls.sip(true, "INVITE", "INVITE", audioSDP(legPhone, 4000, offer))
	ls.sip(false, "200 OK", "INVITE", audioSDP(legPBX, 10000, answer))
}

func (ls *legScript) rtp(n int, pt uint8, ssrc uint32) {
	for range n {
		ls.seq++
		b := make([]byte, 12+160)
		b[0], b[1] = 0x80, pt
		binary.BigEndian.PutUint16(b[2:], ls.seq)
		binary.BigEndian.PutUint32(b[4:], uint32(ls.seq)*160)
		binary.BigEndian.PutUint32(b[8:], ssrc)
		ls.packet(legPhone+":4000", legPBX+":10000", b)
	}
}

// TestNewStreamOnCodecChange: the same SSRC switching from PCMU to PCMA
// after a re-INVITE is two streams (never merged); RFC 4733 events and
// comfort noise in between are not a codec change.
func TestNewStreamOnCodecChange(t *testing.T) {
	ls := newLegScript(t)
	ls.negotiate("0 8 101", "0 101")
	ls.sip(true, "ACK", "ACK", "")
	ls.rtp(60, 0, 0x1111)
	ls.rtp(3, 101, 0x1111) // a digit
	ls.rtp(2, 13, 0x1111)  // comfort noise
	ls.rtp(10, 0, 0x1111)
	ls.negotiate("8 101", "8 101")
	ls.rtp(50, 8, 0x1111)
	ls.sip(true, "BYE", "BYE", "")
	ls.sip(false, "200 OK", "BYE", "")
	ls.sn.Flush()
	if len(ls.calls) != 1 {
		t.Fatalf("%d calls, want 1 (%+v)", len(ls.calls), ls.sn.stats)
	}
	var got []string
	for _, s := range ls.calls[0].Streams {
		got = append(got, fmt.Sprintf("pt%d:%d", s.Payload, s.Received))
	}
	if want := "[pt0:75 pt8:50]"; fmt.Sprint(got) != want {
		t.Errorf("streams %v, want %s (PCMU with its digit and CN, then PCMA)", got, want)
	}
}

// TestT38IsFax: a re-INVITE to m=image (T.38 over UDPTL) on the audio port
// marks the call as fax; the UDPTL packets start no RTP stream, even those
// whose first bytes pass for an RTP header.
func TestT38IsFax(t *testing.T) {
	ls := newLegScript(t)
	ls.negotiate("0", "0")
	ls.sip(true, "ACK", "ACK", "")
	ls.rtp(50, 0, 0x2222)
	ls.sip(true, "INVITE", "INVITE", faxSDP(legPhone, 4000))
	ls.sip(false, "200 OK", "INVITE", faxSDP(legPBX, 10000))
	for i := range 40 {
		// UDPTL: seq number, then an IFP packet; 0x80.. first bytes look like RTP v2.
		udptl := []byte{0x80 | byte(i>>8), byte(i), 0x06, 0xc0, 0x01, 0x80, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55}
		ls.packet(legPhone+":4000", legPBX+":10000", udptl)
	}
	ls.sip(true, "BYE", "BYE", "")
	ls.sip(false, "200 OK", "BYE", "")
	ls.sn.Flush()
	if len(ls.calls) != 1 {
		t.Fatalf("%d calls, want 1", len(ls.calls))
	}
	c := ls.calls[0]
	if !c.Fax || len(c.Streams) != 1 || c.Streams[0].Received != 50 {
		t.Errorf("fax %v, %d streams (first %+v); want fax and the one audio stream of 50 packets", c.Fax, len(c.Streams), c.Streams)
	}
}

// TestStreamsPerCallBounded: a sender cycling SSRCs (one per packet) on a
// call's media address starts at most maxStreams streams; the packets past
// it are counted in StreamsRefused and change nothing else.
func TestStreamsPerCallBounded(t *testing.T) {
	ls := newLegScript(t)
	ls.negotiate("0", "0")
	ls.sip(true, "ACK", "ACK", "")
	const sent = 1000
	for i := range sent {
		ls.rtp(1, 0, 0x10000+uint32(i))
	}
	ls.rtp(5, 0, 0x10000) // the first stream goes on
	ls.sn.Tick(ls.now.Add(2 * time.Second))
	refused := ls.sn.Stats().StreamsRefused
	ls.sip(true, "BYE", "BYE", "")
	ls.sip(false, "200 OK", "BYE", "")
	ls.sn.Flush()
	if len(ls.calls) != 1 {
		t.Fatalf("%d calls, want 1", len(ls.calls))
	}
	streams := ls.calls[0].Streams
	if len(streams) != maxStreams || refused != sent-maxStreams {
		t.Fatalf("%d streams, %d packets refused; want %d and %d", len(streams), refused, maxStreams, sent-maxStreams)
	}
	if first := streams[0]; first.SSRC != 0x10000 || first.Received != 6 {
		t.Errorf("first stream: SSRC %#x, %d packets; want 0x10000, 6", first.SSRC, first.Received)
	}
}
