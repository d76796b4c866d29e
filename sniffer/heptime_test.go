package sniffer

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/hep"
)

// TestHEPTimeAhead: one HEP packet stamped in 2106 (no password set, or a
// sender's broken clock) neither ends the calls in progress nor stops the
// call table's clock: calls after it still time out. It ended every call as
// idle and froze the clock at 2106, so the table filled up to MaxCalls.
func TestHEPTimeAhead(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	src, dst := netip.MustParseAddrPort("10.0.0.1:5060"), netip.MustParseAddrPort("10.0.0.2:5060")
	packet := func(ts uint32, proto uint8, payload string) []byte {
		b, err := hep.AppendMarshal(nil, &hep.Packet{Src: src, Dst: dst, IPProto: hep.IPProtoUDP, ProtoType: proto, TimeSec: ts, Payload: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	invite := func(callID string) string {
		return "INVITE sip:200@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK" + callID +
			"\r\nFrom: <sip:100@10.0.0.1>;tag=a\r\nTo: <sip:200@10.0.0.2>\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	}
	var ended []string
	sn := New(Config{HEP: HEPInput{Enabled: true}, Call: call.Config{OnCallEnd: func(c *call.CDR) { ended = append(ended, c.CallID) }}})
	sn.HandleHEP(packet(uint32(now.Unix()), hep.ProtoSIP, invite("before")), now)
	for i, proto := range []uint8{hep.ProtoLog, hep.ProtoSIP} {
		sn.HandleHEP(packet(0xfffffff0, proto, fmt.Sprintf("OPTIONS sip:x SIP/2.0\r\nCall-ID: o%d\r\nCSeq: 1 OPTIONS\r\n\r\n", i)), now.Add(time.Second))
	}
	if n := sn.Table().ActiveCount(); n != 1 || len(ended) != 0 {
		t.Fatalf("after the packets from 2106: %d calls active, %v ended; want the call in progress", n, ended)
	}
	sn.HandleHEP(packet(uint32(now.Unix())+2, hep.ProtoSIP, invite("after")), now.Add(2*time.Second))
	sn.Tick(now.Add(10 * time.Minute))
	if n := sn.Table().ActiveCount(); n != 0 || len(ended) != 2 {
		t.Errorf("10 minutes on: %d calls active, %v ended; want both timed out", n, ended)
	}
	if st := sn.Stats().HEP; st.TimeAhead != 2 {
		t.Errorf("TimeAhead = %d, want 2", st.TimeAhead)
	}
}
