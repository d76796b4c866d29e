package sniffer

import (
	"context"
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
	ended := make(chan call.CDR, 1)
	sn := New(Config{SIPPorts: ps, Call: call.Config{OnCallEnd: func(c *call.CDR) { ended <- *c }}})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sn.Run(ctx, src, RunOptions{}) }()

	conn, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	callID := fmt.Sprintf("live-%d@test", time.Now().UnixNano())
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
