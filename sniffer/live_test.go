package sniffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
)

// TestLiveLoopback captures real packets from the loopback interface with
// AF_PACKET and follows a call sent over a real UDP socket. It needs
// CAP_NET_RAW (root in CI); without it the test skips.
func TestLiveLoopback(t *testing.T) {
	src, err := capture.OpenLive(capture.LiveOptions{Interface: "lo", Filter: capture.UDPPortFilter(), BlockSize: 1 << 16, NumBlocks: 4})
	if err != nil {
		t.Skipf("live capture on lo not permitted here (%v); needs CAP_NET_RAW", err)
	}
	defer src.Close()

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ps, _ := ParsePorts(fmt.Sprint(port))
	callID := fmt.Sprintf("live-%d@test", time.Now().UnixNano())
	// Other traffic on lo (a PBX, another test) is not this test's: SIP on
	// its port only, and only its call's CDR is kept (a callback that
	// blocked on another call's would hang Flush).
	ended := make(chan call.CDR, 1)
	sn := New(Config{SIPPorts: ps, SIPByPortOnly: true, Call: call.Config{OnCallEnd: ownCall(callID, ended)}})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sn.Run(ctx, src, RunOptions{}) }()

	conn, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := []string{
		"INVITE sip:200@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa\r\nFrom: <sip:100@127.0.0.1>;tag=a\r\nTo: <sip:200@127.0.0.1>\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa\r\nFrom: <sip:100@127.0.0.1>;tag=a\r\nTo: <sip:200@127.0.0.1>;tag=b\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
	}
	// The capture may start a moment after the socket opens: resend until
	// the table has the call, then let EndGrace pass on the table's clock.
	for ctx.Err() == nil {
		for _, m := range msgs {
			if _, err := conn.Write([]byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond)
		if _, ok := sn.Table().LookupCallID(callID); ok || len(ended) > 0 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	sn.Flush()
	select {
	case c := <-ended:
		if c.CallID != callID || c.LastSIPResponseNum != 486 || c.Caller != "100" {
			t.Errorf("got %s %d %q", c.CallID, c.LastSIPResponseNum, c.Caller)
		}
	default:
		t.Fatal("no call captured from the loopback interface")
	}
	if st, err := src.Stats(); err != nil || st.Packets == 0 {
		t.Errorf("kernel stats: %+v, %v", st, err)
	}
}

// TestLiveFanout captures a call on the loopback interface with two
// AF_PACKET sockets in one fanout group, each read by its own goroutine,
// and two media workers: the call's SIP and both RTP streams come out
// whole, each packet once (a frame reaches one socket of the group). It
// needs CAP_NET_RAW; without it the test skips.
func TestLiveFanout(t *testing.T) {
	listen := func() net.PacketConn {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	sipA, sipB, rtpA, rtpB := listen(), listen(), listen(), listen()
	port := func(pc net.PacketConn) int { return pc.LocalAddr().(*net.UDPAddr).Port }
	// Only this test's datagrams reach the rings (in the kernel, as the
	// daemon's filter), and the rings hold the whole call even if their
	// readers do not run until its end: each burst below may take a block
	// of its own (a block is retired when its timeout passes), and with 8
	// blocks split between two sockets a busy machine (CI) dropped the
	// last bursts in the kernel (160 of 200 packets a stream).
	own, err := capture.CompileFilter(fmt.Sprintf("udp and (port %d or port %d or port %d or port %d)", port(sipA), port(sipB), port(rtpA), port(rtpB)))
	if err != nil {
		t.Fatal(err)
	}
	prog, err := own.After(capture.UDPPortFilter())
	if err != nil {
		t.Fatal(err)
	}
	lives, err := capture.OpenFanout(capture.LiveOptions{Interface: "lo", Filter: prog, BlockSize: 1 << 16,
		NumBlocks: 64, Fanout: uint16(time.Now().UnixNano()%0xfff0 + 1)}, 2)
	if err != nil {
		t.Skipf("live capture on lo not permitted here (%v); needs CAP_NET_RAW", err)
	}
	srcs := make([]capture.Source, len(lives))
	for i, l := range lives {
		defer l.Close()
		srcs[i] = l
	}
	ps, _ := ParsePorts(fmt.Sprintf("%d,%d", port(sipA), port(sipB)))
	callID := fmt.Sprintf("fanout-%d@test", time.Now().UnixNano())
	ended := make(chan call.CDR, 1)
	sn := New(Config{SIPPorts: ps, SIPByPortOnly: true, Workers: 2, Call: call.Config{OnCallEnd: ownCall(callID, ended)}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sn.RunSources(ctx, srcs, RunOptions{}) }()

	send := func(from, to net.PacketConn, b []byte) {
		if _, err := from.WriteTo(b, to.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	sdp := func(p int) string {
		body := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", p)
		return fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	head := func(first, cseq string) string {
		return first + "\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKf\r\nFrom: <sip:100@127.0.0.1>;tag=a\r\nTo: <sip:200@127.0.0.1>" +
			map[bool]string{true: ";tag=b", false: ""}[first[0] == 'S' || cseq != "1 INVITE"] + "\r\nCall-ID: " + callID + "\r\nCSeq: " + cseq + "\r\n"
	}
	// The capture may start a moment after the sockets open: resend the
	// INVITE until the table has the call.
	for ctx.Err() == nil {
		send(sipA, sipB, []byte(head("INVITE sip:200@127.0.0.1 SIP/2.0", "1 INVITE")+sdp(port(rtpA))))
		time.Sleep(50 * time.Millisecond)
		if _, ok := sn.Table().LookupCallID(callID); ok {
			break
		}
	}
	send(sipB, sipA, []byte(head("SIP/2.0 200 OK", "1 INVITE")+sdp(port(rtpB))))
	send(sipA, sipB, []byte(head("ACK sip:200@127.0.0.1 SIP/2.0", "1 ACK")+"Content-Length: 0\r\n\r\n"))
	time.Sleep(50 * time.Millisecond) // the answer's SDP is handled before the RTP
	const packets = 200
	rtp := make([]byte, 12+160)
	for i := range packets {
		for dir, ssrc := range []uint32{0x1111, 0x2222} {
			rtp[0], rtp[1] = 0x80, 0
			binary.BigEndian.PutUint16(rtp[2:], uint16(i))
			binary.BigEndian.PutUint32(rtp[4:], uint32(i*160))
			binary.BigEndian.PutUint32(rtp[8:], ssrc)
			if dir == 0 {
				send(rtpA, rtpB, rtp)
			} else {
				send(rtpB, rtpA, rtp)
			}
		}
		if i%20 == 19 {
			time.Sleep(2 * time.Millisecond) // within the sockets' rings
		}
	}
	send(sipA, sipB, []byte(head("BYE sip:200@127.0.0.1 SIP/2.0", "2 BYE")+"Content-Length: 0\r\n\r\n"))
	send(sipB, sipA, []byte(head("SIP/2.0 200 OK", "2 BYE")+"Content-Length: 0\r\n\r\n"))
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		t.Fatalf("RunSources: %v", err)
	}
	sn.Flush()
	var c call.CDR
	select {
	case c = <-ended:
	default:
		t.Fatal("no call captured from the loopback interface")
	}
	if c.CallID != callID || len(c.Streams) != 2 {
		t.Fatalf("call %s with %d streams, want %s with 2", c.CallID, len(c.Streams), callID)
	}
	for _, st := range c.Streams {
		if st.Received != packets || st.Duplicates != 0 {
			t.Errorf("stream %s→%s: %d packets (%d duplicates), want %d once each", st.Src, st.Dst, st.Received, st.Duplicates, packets)
		}
	}
	for i, l := range lives {
		st, _ := l.Stats()
		t.Logf("socket %d: %d packets, %d dropped by the kernel", i, st.Packets, st.Drops)
	}
}

// ownCall is an OnCallEnd keeping the CDR of the call callID in ended (one
// place) and dropping every other: a live test on lo sees whatever else
// runs there (an Asterisk beside the tests, another test's calls), and a
// callback that blocked would hang the sniffer's Flush.
func ownCall(callID string, ended chan<- call.CDR) func(*call.CDR) {
	return func(c *call.CDR) {
		if c.CallID != callID {
			return
		}
		select {
		case ended <- *c:
		default:
		}
	}
}
