package sniffer

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/decode"
)

// TestMediaTrackerBounded: a call's media state stays within the call
// table's bounds under a storm — re-INVITEs announcing new addresses (an
// SDP offer each was kept, and scanned for every new stream and UDPTL
// packet) and RFC 2833 events with a new timestamp each (a digit each).
func TestMediaTrackerBounded(t *testing.T) {
	const n = 5000
	m := newMediaTracker(nil, streamOptions{})
	const ref = 1
	dst := netip.MustParseAddrPort("10.0.0.2:4000")
	for i := range n { // 5,000 re-INVITEs moving the caller's media
		m.announce(ref, announced{addr: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(1024+2*i)), eventPT: 101})
	}
	m.announce(ref, announced{addr: dst, eventPT: 101}) // the callee's, after them
	mc := m.calls[ref]
	if len(mc.sdp) != call.MaxMediaAddrs {
		t.Errorf("%d announced addresses kept, want %d", len(mc.sdp), call.MaxMediaAddrs)
	}
	if mc.lookupSDP(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(1024+2*(n-1)))) == nil {
		t.Error("the last announcement was not kept")
	}
	var state any
	pkt := make([]byte, 16)
	for i := range n { // 5,000 digits
		pkt[0], pkt[1] = 0x80, 101
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*800))
		binary.BigEndian.PutUint32(pkt[8:], 0x1234)
		pkt[12], pkt[13], pkt[14], pkt[15] = 5, 0x0a, 0, 160
		p := &decode.Packet{Time: time.Unix(1700000000, 0).Add(time.Duration(i) * 100 * time.Millisecond),
			Src: netip.MustParseAddrPort("10.0.0.1:1024"), Dst: dst, Transport: decode.UDP, Payload: pkt}
		md := call.Media{Packet: p, Ref: ref, Party: call.PartyCallee, ToParty: true, State: &state}
		md.Classify()
		m.HandleMedia(&md)
	}
	dtmf := m.summaries(ref, true).dtmf
	if len(dtmf) != call.MaxDTMF || m.dtmfDropped != n-call.MaxDTMF {
		t.Errorf("%d digits kept, %d dropped; want %d, %d", len(dtmf), m.dtmfDropped, call.MaxDTMF, n-call.MaxDTMF)
	}
}
