package call

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/sdp"
	"pbx-agent/sniffer/sip"
)

// TestCallbacksOutsideLock: OnMedia, OnCallEnd and OnRegister run after the
// table's lock is released, so a callback may call the table back (it
// deadlocked while they ran under the lock).
func TestCallbacksOutsideLock(t *testing.T) {
	var tb *Table
	var got []string
	tb = New(Config{
		OnMedia: func(ref uint64, addr netip.AddrPort, _ Party, _ *sdp.Media) {
			if r, _, ok := mediaAt(tb, addr, time.Time{}); !ok || r != ref {
				t.Errorf("OnMedia: MatchMedia(%v) = %x %v", addr, r, ok)
			}
			got = append(got, "media")
		},
		OnCallEnd: func(c *CDR) {
			if _, ok := tb.Lookup(c.CallRef); ok {
				t.Error("OnCallEnd: the call is still in the table")
			}
			got = append(got, "end")
		},
		OnRegister: func(r *Register) {
			_ = tb.Registers()
			got = append(got, "register")
		},
	})
	var m sip.Message
	feed := func(text string, at time.Duration) {
		if _, err := sip.Parse([]byte(text), &m); err != nil {
			t.Fatal(err)
		}
		tb.HandleSIP(&m, Meta{Time: t0.Add(at), Src: alice, Dst: pbx})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		feed(sipText("INVITE sip:200@pbx.example SIP/2.0", "cb1", "ft", "", 1, "INVITE", "10.0.0.1"), 0)
		feed(sipText("SIP/2.0 486 Busy Here", "cb1", "ft", "tt", 1, "INVITE", ""), time.Second)
		reg := "REGISTER sip:pbx.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKr\r\nFrom: <sip:100@pbx.example>;tag=r1\r\n" +
			"To: <sip:100@pbx.example>\r\nCall-ID: reg1\r\nCSeq: 1 REGISTER\r\nContact: <sip:100@10.0.0.1>\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n"
		feed(reg, 2*time.Second)
		feed("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKr\r\nFrom: <sip:100@pbx.example>;tag=r1\r\n"+
			"To: <sip:100@pbx.example>;tag=x\r\nCall-ID: reg1\r\nCSeq: 1 REGISTER\r\nContact: <sip:100@10.0.0.1>;expires=60\r\nContent-Length: 0\r\n\r\n", 2*time.Second)
		tb.Tick(t0.Add(time.Minute))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: a callback called the table while its lock was held")
	}
	want := []string{"media", "media", "register", "end"}
	if len(got) != len(want) {
		t.Fatalf("callbacks %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("callbacks %v, want %v", got, want)
		}
	}
}

// TestMatchMedia: one lookup gives the call, the side, the direction and
// the pause state; the RTP header is parsed once by Classify.
func TestMatchMedia(t *testing.T) {
	tb := New(Config{})
	var m sip.Message
	if _, err := sip.Parse([]byte(sipText("INVITE sip:200@pbx.example SIP/2.0", "mm1", "ft", "", 1, "INVITE", "10.0.0.1")), &m); err != nil {
		t.Fatal(err)
	}
	ref := tb.HandleSIP(&m, Meta{Time: t0, Src: alice, Dst: pbx})
	rtpAddr := netip.MustParseAddrPort("10.0.0.1:4000")
	far := netip.MustParseAddrPort("10.0.0.9:7000")
	var md Media
	if !tb.MatchMedia(far, rtpAddr, t0.Add(time.Second), &md) || md.Ref != ref || !md.ToParty || md.Party != PartyCaller || md.Paused || md.FromCaller() {
		t.Fatalf("to the caller: %+v", md)
	}
	if md.State == nil {
		t.Fatal("no state slot")
	}
	*md.State = "kept"
	if err := tb.SetPaused(ref, true); err != nil {
		t.Fatal(err)
	}
	if !tb.MatchMedia(rtpAddr, far, t0.Add(2*time.Second), &md) || md.ToParty || !md.FromCaller() || !md.Paused || *md.State != "kept" {
		t.Fatalf("from the caller, paused: %+v", md)
	}
	if tb.MatchMedia(far, far, t0, &md) {
		t.Error("unknown addresses matched")
	}
	for _, tc := range []struct {
		payload []byte
		kind    MediaKind
		hdr     bool
	}{
		{append([]byte{0x80, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7}, make([]byte, 160)...), MediaRTP, true},
		{[]byte{0x81, 200, 0, 6, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0}, MediaRTCP, false},
		{[]byte{0x80, 72, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7}, MediaOther, true},
		{[]byte{0x80, 80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7}, MediaOther, true},
		{[]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0}, MediaOther, false}, // STUN
		{[]byte{0x80}, MediaOther, false},
	} {
		md.Packet = &decode.Packet{Payload: tc.payload}
		md.Classify()
		if md.Kind != tc.kind || md.HeaderOK != tc.hdr || (tc.kind == MediaRTP && (md.RTP.SSRC != 7 || md.HeaderLen != 12)) {
			t.Errorf("% x: kind %d header %v (SSRC %d, %d bytes); want kind %d header %v", tc.payload[:min(4, len(tc.payload))],
				md.Kind, md.HeaderOK, md.RTP.SSRC, md.HeaderLen, tc.kind, tc.hdr)
		}
	}
}

// mediaAt is the call and side that announced addr, found as the packet
// path finds them (MatchMedia, which also records the activity at ts).
func mediaAt(tb *Table, addr netip.AddrPort, ts time.Time) (uint64, Party, bool) {
	var m Media
	ok := tb.MatchMedia(addr, addr, ts, &m)
	return m.Ref, m.Party, ok
}

// TestAheadFindsMatchMediaState: reading a datagram's call ahead (Probe,
// then Find) names the state slot MatchMedia gives it, matched on the
// destination or (symmetric RTP) the source; nothing for unknown
// addresses; and a Probe made before the index grew (calls added in
// between) is only a miss, never a wrong slot or a crash.
func TestAheadFindsMatchMediaState(t *testing.T) {
	tb := New(Config{})
	far := netip.MustParseAddrPort("192.0.2.9:7000")
	var early Ahead
	tb.Probe(&early, far, netip.MustParseAddrPort("10.1.0.1:4000")) // empty index
	var stale Ahead
	var m sip.Message
	for i := range 300 {
		ip := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
		if _, err := sip.Parse([]byte(sipText("INVITE sip:200@pbx.example SIP/2.0", fmt.Sprintf("ah%d", i), "ft", "", 1, "INVITE", ip)), &m); err != nil {
			t.Fatal(err)
		}
		tb.HandleSIP(&m, Meta{Time: t0, Src: alice, Dst: pbx})
		if i == 10 {
			tb.Probe(&stale, far, netip.MustParseAddrPort("10.1.0.1:4000"))
		}
	}
	tb.Find(&early)
	tb.Find(&stale) // the index was resized since its Probe
	var md Media
	if !tb.MatchMedia(far, netip.MustParseAddrPort("10.1.0.1:4000"), t0, &md) {
		t.Fatal("no call for 10.1.0.1:4000")
	}
	for _, a := range []Ahead{early, stale} {
		if a.State != nil && a.State != md.State {
			t.Errorf("a Probe from before the index changed found another call's slot")
		}
	}
	for i := range 300 {
		addr := netip.MustParseAddrPort(fmt.Sprintf("10.1.%d.%d:4000", i/250, i%250+1))
		for _, dir := range [][2]netip.AddrPort{{far, addr}, {addr, far}} {
			var a Ahead
			tb.Probe(&a, dir[0], dir[1])
			tb.Find(&a)
			if !tb.MatchMedia(dir[0], dir[1], t0, &md) || a.State == nil || a.State != md.State {
				t.Fatalf("%v → %v: read ahead %p, MatchMedia %p", dir[0], dir[1], a.State, md.State)
			}
		}
	}
	var a Ahead
	tb.Probe(&a, far, far)
	tb.Find(&a)
	if a.State != nil {
		t.Error("unknown addresses found a call")
	}
}

// TestNATAlias: with natalias, an SDP address's media is also matched at
// its alias (same ports), for the party that announced it; without, not.
func TestNATAlias(t *testing.T) {
	public, private := netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("10.0.0.5")
	far := netip.MustParseAddrPort("10.0.0.9:7000")
	for _, tc := range []struct {
		name    string
		aliases map[netip.Addr]netip.Addr
		want    bool
	}{
		{"natalias", map[netip.Addr]netip.Addr{public: private}, true},
		{"other natalias", map[netip.Addr]netip.Addr{netip.MustParseAddr("203.0.113.6"): private}, false},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(Config{NATAliases: tc.aliases})
			var m sip.Message
			if _, err := sip.Parse([]byte(sipText("INVITE sip:200@pbx.example SIP/2.0", "na1", "ft", "", 1, "INVITE", public.String())), &m); err != nil {
				t.Fatal(err)
			}
			ref := tb.HandleSIP(&m, Meta{Time: t0, Src: alice, Dst: pbx})
			var md Media
			for _, port := range []uint16{4000, 4001} { // RTP, RTCP
				got := tb.MatchMedia(far, netip.AddrPortFrom(private, port), t0.Add(time.Second), &md)
				if got != tc.want || (got && (md.Ref != ref || md.Party != PartyCaller || !md.ToParty)) {
					t.Errorf("to %v:%d: matched %v (%+v), want %v", private, port, got, md, tc.want)
				}
				if !tb.MatchMedia(far, netip.AddrPortFrom(public, port), t0.Add(time.Second), &md) || md.Ref != ref {
					t.Errorf("announced %v:%d not matched", public, port)
				}
			}
		})
	}
}
