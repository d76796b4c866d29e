package call

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/sip"
)

var (
	alice = netip.MustParseAddrPort("10.0.0.1:5060")
	pbx   = netip.MustParseAddrPort("10.0.0.2:5060")
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// msg builds a SIP message; dir is "A>B" (caller to PBX) or "B>A".
type step struct {
	at   time.Duration
	dir  string
	text string
}

func sipText(first, callID, fromTag, toTag string, cseq int, method, sdp string) string {
	to := "<sip:200@pbx.example>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	body := ""
	if sdp != "" {
		body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 " + sdp + "\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	}
	h := first + "\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: \"Alice\" <sip:100@example.com>;tag=" + fromTag +
		"\r\nTo: " + to + "\r\nCall-ID: " + callID + fmt.Sprintf("\r\nCSeq: %d %s\r\n", cseq, method) +
		"User-Agent: phone-" + method + "\r\n"
	if body != "" {
		h += "Content-Type: application/sdp\r\n"
	}
	return h + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

func run(t *testing.T, steps []step) ([]CDR, *Table) {
	t.Helper()
	return runWith(t, Config{}, steps)
}

// runWith is run with a table configured as cfg (its OnCallEnd collects
// the CDRs).
func runWith(t *testing.T, cfg Config, steps []step) ([]CDR, *Table) {
	t.Helper()
	var out []CDR
	cfg.OnCallEnd = func(c *CDR) { out = append(out, *c) }
	tb := New(cfg)
	var m sip.Message
	for i, s := range steps {
		if _, err := sip.Parse([]byte(s.text), &m); err != nil {
			t.Fatalf("step %d: %v\n%s", i, err, s.text)
		}
		meta := Meta{Time: t0.Add(s.at), Src: alice, Dst: pbx}
		if s.dir == "B>A" {
			meta.Src, meta.Dst = pbx, alice
		}
		tb.HandleSIP(&m, meta)
	}
	tb.Flush()
	return out, tb
}

func TestCallLifecycle(t *testing.T) {
	inv := sipText("INVITE sip:200@pbx.example SIP/2.0", "c1", "ft", "", 1, "INVITE", "10.0.0.1")
	ringing := sipText("SIP/2.0 180 Ringing", "c1", "ft", "tt", 1, "INVITE", "")
	ok := sipText("SIP/2.0 200 OK", "c1", "ft", "tt", 1, "INVITE", "10.0.0.2")
	ack := sipText("ACK sip:200@pbx.example SIP/2.0", "c1", "ft", "tt", 1, "ACK", "")
	byeCaller := sipText("BYE sip:200@pbx.example SIP/2.0", "c1", "ft", "tt", 2, "BYE", "")
	byeOK := sipText("SIP/2.0 200 OK", "c1", "ft", "tt", 2, "BYE", "")
	// The callee's BYE carries its own tag in From.
	byeCallee := sipText("BYE sip:100@10.0.0.1 SIP/2.0", "c1", "tt", "ft", 1, "BYE", "")
	byeCalleeOK := sipText("SIP/2.0 200 OK", "c1", "tt", "ft", 1, "BYE", "")
	hold := sipText("INVITE sip:200@pbx.example SIP/2.0", "c1", "ft", "tt", 3, "INVITE", "0.0.0.0")
	cancel := sipText("CANCEL sip:200@pbx.example SIP/2.0", "c1", "ft", "", 1, "CANCEL", "")
	terminated := sipText("SIP/2.0 487 Request Terminated", "c1", "ft", "tt", 1, "INVITE", "")
	busy := sipText("SIP/2.0 486 Busy Here", "c1", "ft", "tt", 1, "INVITE", "")
	s := time.Second
	tests := []struct {
		name        string
		steps       []step
		wantBye     ByeCode
		wantHanged  Hanger
		wantLast    int
		wantDur     time.Duration
		wantConnect time.Duration
		wantReinv   int
		wantHold    int
	}{
		{"answered, caller hangs up", []step{{0, "A>B", inv}, {s, "B>A", ringing}, {3 * s, "B>A", ok}, {3 * s, "A>B", ack}, {10 * s, "A>B", byeCaller}, {10 * s, "B>A", byeOK}},
			ByeOK, HangerCaller, 200, 10 * s, 7 * s, 0, 0},
		{"retransmissions counted once", []step{{0, "A>B", inv}, {s / 2, "A>B", inv}, {s, "B>A", ringing}, {3 * s, "B>A", ok}, {4 * s, "B>A", ok}, {4 * s, "A>B", ack}, {10 * s, "A>B", byeCaller}, {10 * s, "B>A", byeOK}},
			ByeOK, HangerCaller, 200, 10 * s, 7 * s, 0, 0},
		{"callee hangs up", []step{{0, "A>B", inv}, {2 * s, "B>A", ok}, {2 * s, "A>B", ack}, {5 * s, "B>A", byeCallee}, {5 * s, "A>B", byeCalleeOK}},
			ByeOK, HangerCallee, 200, 5 * s, 3 * s, 0, 0},
		{"BYE without OK", []step{{0, "A>B", inv}, {2 * s, "B>A", ok}, {2 * s, "A>B", ack}, {5 * s, "A>B", byeCaller}},
			ByeNoOKForBye, HangerCaller, 200, 5 * s, 3 * s, 0, 0},
		{"answered, no BYE seen", []step{{0, "A>B", inv}, {2 * s, "B>A", ok}, {2 * s, "A>B", ack}},
			ByeAnsweredNoBye, HangerNone, 200, 2 * s, 0, 0, 0},
		{"hold re-INVITE", []step{{0, "A>B", inv}, {2 * s, "B>A", ok}, {2 * s, "A>B", ack}, {4 * s, "A>B", hold}, {9 * s, "A>B", byeCaller}, {9 * s, "B>A", byeOK}},
			ByeOK, HangerCaller, 200, 9 * s, 7 * s, 1, 1},
		{"cancelled", []step{{0, "A>B", inv}, {s, "B>A", ringing}, {4 * s, "A>B", cancel}, {4 * s, "B>A", terminated}},
			ByeNoOK, HangerNone, 487, 4 * s, 0, 0, 0},
		{"busy", []step{{0, "A>B", inv}, {s, "B>A", busy}},
			ByeNoOK, HangerNone, 486, s, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, tb := run(t, tt.steps)
			if len(out) != 1 {
				t.Fatalf("%d CDRs, want 1", len(out))
			}
			c := out[0]
			if c.Bye != tt.wantBye || c.WhoHanged != tt.wantHanged || c.LastSIPResponseNum != tt.wantLast {
				t.Errorf("bye %d whohanged %q last %d; want %d %q %d", c.Bye, c.WhoHanged, c.LastSIPResponseNum, tt.wantBye, tt.wantHanged, tt.wantLast)
			}
			if c.Duration() != tt.wantDur || c.ConnectDuration() != tt.wantConnect {
				t.Errorf("duration %v connect %v; want %v %v", c.Duration(), c.ConnectDuration(), tt.wantDur, tt.wantConnect)
			}
			if c.ReInvites != tt.wantReinv || len(c.Hold) != tt.wantHold {
				t.Errorf("reinvites %d holds %d; want %d %d", c.ReInvites, len(c.Hold), tt.wantReinv, tt.wantHold)
			}
			if c.Caller != "100" || c.Called != "200" || c.CallerName != "Alice" || c.CallerDomain != "example.com" || c.CallerUA != "phone-INVITE" {
				t.Errorf("parties: %q %q %q %q %q", c.Caller, c.Called, c.CallerName, c.CallerDomain, c.CallerUA)
			}
			if st := tb.Stats(); st.CallsStarted != 1 || st.CallsEnded != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestMediaAddresses(t *testing.T) {
	tb := New(Config{})
	var m sip.Message
	inv := sipText("INVITE sip:200@pbx.example SIP/2.0", "c9", "ft", "", 1, "INVITE", "10.0.0.1")
	if _, err := sip.Parse([]byte(inv), &m); err != nil {
		t.Fatal(err)
	}
	tb.HandleSIP(&m, Meta{Time: t0, Src: alice, Dst: pbx})
	ref, party, ok := mediaAt(tb, netip.MustParseAddrPort("10.0.0.1:4000"), t0)
	if !ok || party != PartyCaller {
		t.Fatalf("RTP address: ok %v party %d", ok, party)
	}
	if _, _, ok := mediaAt(tb, netip.MustParseAddrPort("10.0.0.1:4001"), t0); !ok {
		t.Error("RTCP address (port+1) not mapped")
	}
	if got, ok := tb.LookupCallID("c9"); !ok || got != ref {
		t.Errorf("LookupCallID = %x %v, want %x", got, ok, ref)
	}
	if act := tb.Active(); len(act) != 1 || act[0].CallRef != ref || !act[0].Active {
		t.Errorf("Active() = %+v", act)
	}
	tb.Flush()
	if _, _, ok := mediaAt(tb, netip.MustParseAddrPort("10.0.0.1:4000"), t0); ok {
		t.Error("media still mapped after the call ended")
	}
}

// TestTimeouts: a call its signalling does not end is ended by
// VoIPmonitor's timeouts (calltable.cpp, Calltable::cleanup), each with its
// bye code. A call whose media is never seen (direct media, RTP on another
// interface) lasts until SIPOnlyTimeout after its INVITE: it was ended
// IdleTimeout (5 min) after its last SIP message, its BYE then found no call.
func TestTimeouts(t *testing.T) {
	inv := sipText("INVITE sip:200@pbx.example SIP/2.0", "to1", "ft", "", 1, "INVITE", "10.0.0.1")
	trying := sipText("SIP/2.0 100 Trying", "to1", "ft", "", 1, "INVITE", "")
	ringing := sipText("SIP/2.0 180 Ringing", "to1", "ft", "tt", 1, "INVITE", "")
	ok := sipText("SIP/2.0 200 OK", "to1", "ft", "tt", 1, "INVITE", "10.0.0.2")
	ack := sipText("ACK sip:200@pbx.example SIP/2.0", "to1", "ft", "tt", 1, "ACK", "")
	rtpSrc, rtpDst := netip.MustParseAddrPort("10.0.0.2:4000"), netip.MustParseAddrPort("10.0.0.1:4000")
	const (
		sec = time.Second
		min = time.Minute
	)
	for _, tc := range []struct {
		name string
		cfg  Config
		sip  []string      // at 0, 10 ms, 20 ms, …
		rtp  time.Duration // media every 10 s up to this (0: none)
		open time.Duration // still open then
		end  time.Duration // ended by then
		bye  ByeCode
	}{
		{"no reply at all: one-way", Config{}, []string{inv, inv}, 0, 14 * sec, 16 * sec, ByeOneWay},
		{"no reply at all, onewaytimeout 1 min", Config{OneWayTimeout: min}, []string{inv}, 0, 59 * sec, 61 * sec, ByeOneWay},
		{"no answer, no media: zombie", Config{}, []string{inv, trying}, 0, 299 * sec, 301 * sec, ByeZombie},
		{"ringing, no media", Config{}, []string{inv, trying, ringing}, 0, 59 * min, 61 * min, ByeSIPOnlyTimeout},
		{"answered, no media", Config{}, []string{inv, ringing, ok, ack}, 0, 59 * min, 61 * min, ByeSIPOnlyTimeout},
		{"answered, no media, sipwithoutrtptimeout 10 min", Config{SIPOnlyTimeout: 10 * min}, []string{inv, ringing, ok, ack}, 0, 9 * min, 11 * min, ByeSIPOnlyTimeout},
		{"media stops at 10 s", Config{}, []string{inv, ringing, ok, ack}, 10 * sec, 5*min + 9*sec, 5*min + 11*sec, ByeRTPTimeout},
		{"media stops at 10 s, rtptimeout 1 min", Config{IdleTimeout: min}, []string{inv, ringing, ok, ack}, 10 * sec, 69 * sec, 71 * sec, ByeRTPTimeout},
		{"media for ever", Config{MaxDuration: 2 * time.Hour}, []string{inv, ringing, ok, ack}, 3 * time.Hour, 119 * min, 121 * min, ByeTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out []CDR
			cfg := tc.cfg
			cfg.OnCallEnd = func(c *CDR) { out = append(out, *c) }
			tb := New(cfg)
			var m sip.Message
			for i, text := range tc.sip {
				if _, err := sip.Parse([]byte(text), &m); err != nil {
					t.Fatal(err)
				}
				meta := Meta{Time: t0.Add(time.Duration(i) * 10 * time.Millisecond), Src: alice, Dst: pbx}
				if !m.Request {
					meta.Src, meta.Dst = pbx, alice
				}
				tb.HandleSIP(&m, meta)
			}
			var md Media
			for at := time.Second; at <= tc.end; at += time.Second {
				if tc.rtp > 0 && at <= tc.rtp && len(out) == 0 && at%(10*sec) == 0 && !tb.MatchMedia(rtpSrc, rtpDst, t0.Add(at), &md) {
					t.Fatalf("media at %v not matched", at)
				}
				tb.Tick(t0.Add(at))
				if at == tc.open && len(out) != 0 {
					t.Fatalf("ended before %v: bye %d at %v", tc.open, out[0].Bye, out[0].CallEnd.Sub(t0))
				}
			}
			if len(out) != 1 || out[0].Bye != tc.bye {
				t.Fatalf("by %v: %d CDRs, want one with bye %d (%+v)", tc.end, len(out), tc.bye, out)
			}
		})
	}
}

func TestPause(t *testing.T) {
	var out []CDR
	tb := New(Config{OnCallEnd: func(c *CDR) { out = append(out, *c) }})
	var m sip.Message
	if _, err := sip.Parse([]byte(sipText("INVITE sip:200@pbx.example SIP/2.0", "p1", "ft", "", 1, "INVITE", "10.0.0.1")), &m); err != nil {
		t.Fatal(err)
	}
	ref := tb.HandleSIP(&m, Meta{Time: t0, Src: alice, Dst: pbx})
	if ref == 0 {
		t.Fatal("no callreference for the INVITE")
	}
	if err := tb.SetPaused(ref+99, true); err != ErrNoCall {
		t.Errorf("unknown call: err = %v, want ErrNoCall", err)
	}
	steps := []struct {
		at     time.Duration
		paused bool
	}{{2 * time.Second, true}, {3 * time.Second, true}, {5 * time.Second, false}, {6 * time.Second, false}, {8 * time.Second, true}}
	for _, s := range steps {
		tb.Tick(t0.Add(s.at))
		if err := tb.SetPaused(ref, s.paused); err != nil {
			t.Fatal(err)
		}
		if tb.Paused(ref) != s.paused {
			t.Errorf("at %v: Paused = %v, want %v", s.at, !s.paused, s.paused)
		}
	}
	tb.Flush()
	if len(out) != 1 || len(out[0].Paused) != 2 {
		t.Fatalf("paused intervals: %+v", out)
	}
	p := out[0].Paused
	if p[0].Start != t0.Add(2*time.Second) || p[0].End != t0.Add(5*time.Second) || p[1].End.IsZero() {
		t.Errorf("intervals %+v", p)
	}
}

func TestSRTPOffer(t *testing.T) {
	tests := []struct {
		name, proto string
		want        bool
	}{{"RTP/AVP", "RTP/AVP", false}, {"RTP/SAVP", "RTP/SAVP", true}, {"DTLS", "UDP/TLS/RTP/SAVPF", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out []CDR
			tb := New(Config{OnCallEnd: func(c *CDR) { out = append(out, *c) }})
			inv := sipText("INVITE sip:200@pbx.example SIP/2.0", "s1", "ft", "", 1, "INVITE", "10.0.0.1")
			head, body, _ := strings.Cut(inv, "\r\n\r\n")
			body = strings.Replace(body, "RTP/AVP", tt.proto, 1)
			head = head[:strings.LastIndex(head, "Content-Length:")] + fmt.Sprintf("Content-Length: %d", len(body))
			inv = head + "\r\n\r\n" + body
			var m sip.Message
			if _, err := sip.Parse([]byte(inv), &m); err != nil {
				t.Fatal(err)
			}
			tb.HandleSIP(&m, Meta{Time: t0, Src: alice, Dst: pbx})
			tb.Flush()
			if len(out) != 1 || out[0].SRTP != tt.want {
				t.Errorf("SRTP = %v, want %v", out[0].SRTP, tt.want)
			}
		})
	}
}

func TestMaxCalls(t *testing.T) {
	var out []CDR
	tb := New(Config{MaxCalls: 3, OnCallEnd: func(c *CDR) { out = append(out, *c) }})
	var m sip.Message
	for i := range 5 {
		if _, err := sip.Parse([]byte(sipText("INVITE sip:200@pbx.example SIP/2.0", fmt.Sprintf("flood-%d", i), "ft", "", 1, "INVITE", "")), &m); err != nil {
			t.Fatal(err)
		}
		ref := tb.HandleSIP(&m, Meta{Time: t0, Src: alice, Dst: pbx})
		if (ref != 0) != (i < 3) {
			t.Errorf("INVITE %d: ref %x", i, ref)
		}
	}
	if st := tb.Stats(); st.CallsStarted != 3 || st.CallsRefused != 2 {
		t.Errorf("stats %+v, want 3 started and 2 refused", st)
	}
	tb.Flush()
	if len(out) != 3 {
		t.Errorf("%d CDRs, want 3", len(out))
	}
}

// TestChallengedCallEndsAfterEndGrace pins issue 16 item 2: a call whose first
// INVITE was challenged (401, then an INVITE with credentials) and then
// answered is emitted EndGrace after its BYE's 200 OK, not AuthGrace (60 s).
func TestChallengedCallEndsAfterEndGrace(t *testing.T) {
	for _, code := range []string{"401 Unauthorized", "407 Proxy Authentication Required"} {
		t.Run(code[:3], func(t *testing.T) {
			var out []CDR
			tb := New(Config{OnCallEnd: func(c *CDR) { out = append(out, *c) }})
			s := time.Second
			steps := []step{
				{0, "A>B", sipText("INVITE sip:200@pbx.example SIP/2.0", "ch", "ft", "", 1, "INVITE", "10.0.0.1")},
				{0, "B>A", sipText("SIP/2.0 "+code, "ch", "ft", "t401", 1, "INVITE", "")},
				{0, "A>B", sipText("ACK sip:200@pbx.example SIP/2.0", "ch", "ft", "t401", 1, "ACK", "")},
				{s / 10, "A>B", sipText("INVITE sip:200@pbx.example SIP/2.0", "ch", "ft", "", 2, "INVITE", "10.0.0.1")},
				{s, "B>A", sipText("SIP/2.0 200 OK", "ch", "ft", "tt", 2, "INVITE", "10.0.0.2")},
				{s, "A>B", sipText("ACK sip:200@pbx.example SIP/2.0", "ch", "ft", "tt", 2, "ACK", "")},
				{10 * s, "A>B", sipText("BYE sip:200@pbx.example SIP/2.0", "ch", "ft", "tt", 3, "BYE", "")},
				{10 * s, "B>A", sipText("SIP/2.0 200 OK", "ch", "ft", "tt", 3, "BYE", "")},
			}
			var m sip.Message
			for i, st := range steps {
				if _, err := sip.Parse([]byte(st.text), &m); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				meta := Meta{Time: t0.Add(st.at), Src: alice, Dst: pbx}
				if st.dir == "B>A" {
					meta.Src, meta.Dst = pbx, alice
				}
				tb.HandleSIP(&m, meta)
			}
			tb.Tick(t0.Add(10*s + tb.cfg.EndGrace - s/10))
			if len(out) != 0 {
				t.Fatal("emitted before EndGrace")
			}
			tb.Tick(t0.Add(10*s + tb.cfg.EndGrace + gcEvery))
			if len(out) != 1 {
				t.Fatalf("%d CDRs %s after the BYE's 200 OK, want 1 (the call waited the auth grace)", len(out), tb.cfg.EndGrace+gcEvery)
			}
			if out[0].LastSIPResponseNum != 200 || out[0].Bye != ByeOK {
				t.Errorf("CDR: last response %d, bye %d", out[0].LastSIPResponseNum, out[0].Bye)
			}
		})
	}
	// A challenge nobody answers still waits the auth grace for the retry.
	var out []CDR
	tb := New(Config{OnCallEnd: func(c *CDR) { out = append(out, *c) }})
	var m sip.Message
	for i, txt := range []string{
		sipText("INVITE sip:200@pbx.example SIP/2.0", "cu", "ft", "", 1, "INVITE", "10.0.0.1"),
		sipText("SIP/2.0 401 Unauthorized", "cu", "ft", "t401", 1, "INVITE", ""),
	} {
		if _, err := sip.Parse([]byte(txt), &m); err != nil {
			t.Fatal(err)
		}
		meta := Meta{Time: t0, Src: alice, Dst: pbx}
		if i == 1 {
			meta.Src, meta.Dst = pbx, alice
		}
		tb.HandleSIP(&m, meta)
	}
	tb.Tick(t0.Add(tb.cfg.EndGrace + time.Second))
	if len(out) != 0 {
		t.Fatal("a challenged INVITE with no retry was emitted before the auth grace")
	}
	tb.Tick(t0.Add(tb.cfg.AuthGrace + time.Second))
	if len(out) != 1 {
		t.Fatalf("%d CDRs after the auth grace, want 1", len(out))
	}
}

// TestCallRefsUnguessable pins issue 17 item 4 (second half): call
// references keep VoIPmonitor's 0x7f… 48-bit shape but are random, so one
// reference tells nothing about the next (they were 0x7f0000001001, …002).
// Calls still come out in the order they started.
func TestCallRefsUnguessable(t *testing.T) {
	var steps []step
	for i := range 200 {
		steps = append(steps, step{at: time.Duration(i) * time.Millisecond, dir: "A>B",
			text: sipText("INVITE sip:200@pbx.example SIP/2.0", fmt.Sprintf("ref-%d", i), "ft", "", 1, "INVITE", "10.0.0.1")})
	}
	out, _ := run(t, steps)
	if len(out) != 200 {
		t.Fatalf("%d calls, want 200", len(out))
	}
	seen := map[uint64]bool{}
	near := 0
	for i, c := range out {
		if c.CallID != fmt.Sprintf("ref-%d", i) {
			t.Fatalf("call %d is %s: not in start order", i, c.CallID)
		}
		if s := fmt.Sprintf("0x%x", c.CallRef); len(s) != 14 || !strings.HasPrefix(s, "0x7f") {
			t.Errorf("reference %s is not shaped 0x7f + 10 hex digits", s)
		}
		if seen[c.CallRef] {
			t.Errorf("reference 0x%x given twice", c.CallRef)
		}
		seen[c.CallRef] = true
		if i > 0 {
			if d := int64(c.CallRef - out[i-1].CallRef); d > -1<<20 && d < 1<<20 {
				near++
			}
		}
	}
	if near > 2 {
		t.Errorf("%d of 199 references lie within 2^20 of the previous one: guessable", near)
	}
}

// TestNotAcceptable: a 488 or 606 answer to an INVITE (the call's or a
// re-INVITE's) marks the call (VoIPmonitor's not_acceptable); a 488 to
// another request does not.
func TestNotAcceptable(t *testing.T) {
	inv := sipText("INVITE sip:200@pbx.example SIP/2.0", "n1", "ft", "", 1, "INVITE", "10.0.0.1")
	ok := sipText("SIP/2.0 200 OK", "n1", "ft", "tt", 1, "INVITE", "10.0.0.2")
	ack := sipText("ACK sip:200@pbx.example SIP/2.0", "n1", "ft", "tt", 1, "ACK", "")
	reinv := sipText("INVITE sip:200@pbx.example SIP/2.0", "n1", "ft", "tt", 2, "INVITE", "10.0.0.1")
	update := sipText("UPDATE sip:200@pbx.example SIP/2.0", "n1", "ft", "tt", 2, "UPDATE", "10.0.0.1")
	s := time.Second
	for _, tc := range []struct {
		name  string
		steps []step
		want  bool
	}{
		{"answered", []step{{0, "A>B", inv}, {s, "B>A", ok}, {s, "A>B", ack}}, false},
		{"488 to the INVITE", []step{{0, "A>B", inv}, {s, "B>A", sipText("SIP/2.0 488 Not Acceptable Here", "n1", "ft", "tt", 1, "INVITE", "")}}, true},
		{"606 to the INVITE", []step{{0, "A>B", inv}, {s, "B>A", sipText("SIP/2.0 606 Not Acceptable", "n1", "ft", "tt", 1, "INVITE", "")}}, true},
		{"re-INVITE refused 488", []step{{0, "A>B", inv}, {s, "B>A", ok}, {s, "A>B", ack}, {3 * s, "A>B", reinv},
			{3 * s, "B>A", sipText("SIP/2.0 488 Not Acceptable Here", "n1", "ft", "tt", 2, "INVITE", "")}}, true},
		{"488 to an UPDATE", []step{{0, "A>B", inv}, {s, "B>A", ok}, {s, "A>B", ack}, {3 * s, "A>B", update},
			{3 * s, "B>A", sipText("SIP/2.0 488 Not Acceptable Here", "n1", "ft", "tt", 2, "UPDATE", "")}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := run(t, tc.steps)
			if len(out) != 1 || out[0].NotAcceptable != tc.want {
				t.Fatalf("%d CDRs, NotAcceptable %v; want %v", len(out), len(out) > 0 && out[0].NotAcceptable, tc.want)
			}
		})
	}
}

// TestEndPutOffByLateMessages: the grace after a call's end runs from its
// last SIP message (VoIPmonitor's shift_destroy_call_at), so messages that
// keep coming less than EndGrace apart stay on the call and move its end.
// aaa.pcap 105090259-446faf7a: 408 to the INVITE at 25.96 s, the caller's
// CANCEL retransmitted every 4 s until its own 408 at 56.28 s.
func TestEndPutOffByLateMessages(t *testing.T) {
	ms := time.Millisecond
	invite := func(at time.Duration) step {
		return step{at, "A>B", sipText("INVITE sip:200@pbx.example SIP/2.0", "cx", "ft", "", 1, "INVITE", "10.0.0.1")}
	}
	cancel := func(at time.Duration) step {
		return step{at, "A>B", sipText("CANCEL sip:200@pbx.example SIP/2.0", "cx", "ft", "", 1, "CANCEL", "")}
	}
	resp := func(at time.Duration, status, method string) step {
		return step{at, "B>A", sipText("SIP/2.0 "+status, "cx", "ft", "tx", 1, method, "")}
	}
	bye := func(at time.Duration) step {
		return step{at, "A>B", sipText("BYE sip:200@pbx.example SIP/2.0", "cx", "ft", "tx", 2, "BYE", "")}
	}
	tests := []struct {
		name string
		in   []step
		wait time.Duration // after the last step before the CDR is due; 0: EndGrace
		want time.Duration // callend - calldate
	}{
		{
			name: "CANCEL retransmitted every 4 s after the 408",
			in: []step{invite(0), resp(2216*ms, "100 Trying", "INVITE"), cancel(34119 * ms), resp(36773*ms, "408 Request Timeout", "INVITE"),
				cancel(37651 * ms), cancel(41667 * ms), cancel(45673 * ms), cancel(49679 * ms), cancel(53694 * ms), cancel(57700 * ms),
				cancel(61706 * ms), cancel(65721 * ms), resp(67090*ms, "408 Request Timeout", "CANCEL")},
			wait: cancelGrace + gcEvery,
			want: 67090 * ms,
		},
		{
			name: "a message after the grace is not the call's",
			in: []step{invite(0), resp(1000*ms, "486 Busy Here", "INVITE"), resp(5000*ms, "486 Busy Here", "INVITE"),
				resp(10100*ms, "486 Busy Here", "INVITE")},
			want: 5000 * ms,
		},
		{
			// calltable.h:2409: after a CANCEL (its synthesised 487) or a
			// 487, every packet keeps the call 15 s.
			name: "after a CANCEL and its 487, a message 10 s after the last is the call's",
			in: []step{invite(0), resp(100*ms, "180 Ringing", "INVITE"), cancel(2000 * ms), resp(2010*ms, "200 OK", "CANCEL"),
				resp(2020*ms, "487 Request Terminated", "INVITE"), cancel(12000 * ms)},
			wait: cancelGrace + gcEvery,
			want: 12000 * ms,
		},
		{
			name: "after a 487, a message 15 s after the last is not the call's",
			in: []step{invite(0), resp(100*ms, "180 Ringing", "INVITE"), resp(2020*ms, "487 Request Terminated", "INVITE"),
				resp(17100*ms, "487 Request Terminated", "INVITE")},
			wait: cancelGrace + gcEvery,
			want: 2020 * ms,
		},
		{
			// calltable.h:2407-2408, sniff.cpp:5489: a BYE with no 2xx
			// keeps the call 60 s past its last packet.
			name: "a BYE never answered: a message 50 s later is the call's",
			in:   []step{invite(0), resp(100*ms, "200 OK", "INVITE"), bye(2000 * ms), bye(52000 * ms)},
			wait: 60*time.Second + gcEvery,
			want: 52000 * ms,
		},
		{
			name: "a BYE never answered: a message 61 s later is not the call's",
			in:   []step{invite(0), resp(100*ms, "200 OK", "INVITE"), bye(2000 * ms), bye(63100 * ms)},
			wait: 60*time.Second + gcEvery,
			want: 2000 * ms,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out []CDR
			tb := New(Config{OnCallEnd: func(c *CDR) { out = append(out, *c) }})
			var m sip.Message
			for i, s := range tt.in {
				if _, err := sip.Parse([]byte(s.text), &m); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				meta := Meta{Time: t0.Add(s.at), Src: alice, Dst: pbx}
				if s.dir == "B>A" {
					meta.Src, meta.Dst = pbx, alice
				}
				tb.Tick(meta.Time)
				tb.HandleSIP(&m, meta)
			}
			wait := tt.wait
			if wait == 0 {
				wait = tb.cfg.EndGrace + gcEvery
			}
			tb.Tick(t0.Add(tt.in[len(tt.in)-1].at + wait))
			if len(out) != 1 {
				t.Fatalf("%d CDRs, want 1", len(out))
			}
			if got := out[0].CallEnd.Sub(out[0].CallDate); got != tt.want {
				t.Errorf("callend - calldate = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMediaAfterEndCallEnd: media of a finished call moves its callend (as
// VoIPmonitor's, its last packet) unless it comes after the 2xx to the
// BYE; LastSIP stays the last SIP message.
func TestMediaAfterEndCallEnd(t *testing.T) {
	inv := sipText("INVITE sip:200@pbx.example SIP/2.0", "me1", "ft", "", 1, "INVITE", "10.0.0.1")
	busy := sipText("SIP/2.0 480 Temporarily Unavailable", "me1", "ft", "tt", 1, "INVITE", "")
	ok := sipText("SIP/2.0 200 OK", "me1", "ft", "tt", 1, "INVITE", "10.0.0.2")
	bye := sipText("BYE sip:200@pbx.example SIP/2.0", "me1", "ft", "tt", 2, "BYE", "")
	byeOK := sipText("SIP/2.0 200 OK", "me1", "ft", "tt", 2, "BYE", "")
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	type msg struct {
		at   time.Duration
		text string
	}
	for _, tc := range []struct {
		name    string
		sip     []msg
		media   time.Duration // one media packet then
		callEnd time.Duration
		lastSIP time.Duration
	}{
		{"rejected, media after", []msg{{0, inv}, {ms(300), busy}}, ms(1300), ms(1300), ms(300)},
		{"BYE, media before its 200", []msg{{0, inv}, {ms(100), ok}, {ms(2000), bye}, {ms(2100), byeOK}}, ms(2050), ms(2100), ms(2100)},
		{"BYE, media after its 200", []msg{{0, inv}, {ms(100), ok}, {ms(2000), bye}, {ms(2100), byeOK}}, ms(2150), ms(2100), ms(2100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out []CDR
			tb := New(Config{IdleTimeout: -1, OnCallEnd: func(c *CDR) { out = append(out, *c) }})
			var m sip.Message
			var md Media
			media := false
			for _, s := range tc.sip {
				if !media && tc.media < s.at {
					tb.MatchMedia(netip.MustParseAddrPort("10.0.0.9:7000"), netip.MustParseAddrPort("10.0.0.1:4000"), t0.Add(tc.media), &md)
					media = true
				}
				if _, err := sip.Parse([]byte(s.text), &m); err != nil {
					t.Fatal(err)
				}
				meta := Meta{Time: t0.Add(s.at), Src: alice, Dst: pbx}
				if !m.Request {
					meta.Src, meta.Dst = pbx, alice
				}
				tb.HandleSIP(&m, meta)
			}
			if !media && !tb.MatchMedia(netip.MustParseAddrPort("10.0.0.9:7000"), netip.MustParseAddrPort("10.0.0.1:4000"), t0.Add(tc.media), &md) {
				t.Fatal("media not matched")
			}
			tb.Flush()
			if len(out) != 1 || out[0].CallEnd.Sub(t0) != tc.callEnd || out[0].LastSIP.Sub(t0) != tc.lastSIP {
				t.Fatalf("CDRs %d: callend %v, last SIP %v; want %v, %v", len(out), out[0].CallEnd.Sub(t0), out[0].LastSIP.Sub(t0), tc.callEnd, tc.lastSIP)
			}
		})
	}
}

// TestMediaPutsOffEnd: media of a finished call keeps it as its SIP does
// (VoIPmonitor's shift_destroy_call_at for every RTP packet, sniff.cpp:3200,
// calltable.h:2396-2413): RTP going on 7 s past the 2xx to the BYE keeps
// the call, so its media stays matched and a late retransmission of the
// 2xx is still the call's, and the CDR comes EndGrace after the last packet.
func TestMediaPutsOffEnd(t *testing.T) {
	inv := sipText("INVITE sip:200@pbx.example SIP/2.0", "mp1", "ft", "", 1, "INVITE", "10.0.0.1")
	ok := sipText("SIP/2.0 200 OK", "mp1", "ft", "tt", 1, "INVITE", "10.0.0.2")
	bye := sipText("BYE sip:200@pbx.example SIP/2.0", "mp1", "ft", "tt", 2, "BYE", "")
	byeOK := sipText("SIP/2.0 200 OK", "mp1", "ft", "tt", 2, "BYE", "")
	var out []CDR
	tb := New(Config{IdleTimeout: -1, OnCallEnd: func(c *CDR) { out = append(out, *c) }})
	var m sip.Message
	handle := func(at time.Duration, text string) {
		t.Helper()
		if _, err := sip.Parse([]byte(text), &m); err != nil {
			t.Fatal(err)
		}
		meta := Meta{Time: t0.Add(at), Src: alice, Dst: pbx}
		if !m.Request {
			meta.Src, meta.Dst = pbx, alice
		}
		tb.Tick(meta.Time)
		tb.HandleSIP(&m, meta)
	}
	handle(0, inv)
	handle(100*time.Millisecond, ok)
	handle(2*time.Second, bye)
	handle(2100*time.Millisecond, byeOK)
	var md Media
	for at := 2120 * time.Millisecond; at <= 9*time.Second; at += 20 * time.Millisecond {
		tb.Tick(t0.Add(at))
		if !tb.MatchMedia(netip.MustParseAddrPort("10.0.0.9:7000"), netip.MustParseAddrPort("10.0.0.1:4000"), t0.Add(at), &md) {
			t.Fatalf("media %v after the start (%v after the 2xx to the BYE) no longer matched: the call was let go", at, at-2100*time.Millisecond)
		}
	}
	if len(out) != 0 {
		t.Fatalf("CDR emitted at %v while its media went on", out[0].CallEnd.Sub(t0))
	}
	orphans := tb.Stats().Orphans
	handle(10*time.Second, byeOK) // a late retransmission
	if n := tb.Stats().Orphans; n != orphans {
		t.Errorf("the 2xx retransmitted 1 s after the last media packet was an orphan (%d → %d)", orphans, n)
	}
	tb.Tick(t0.Add(9*time.Second + 4900*time.Millisecond))
	if len(out) != 0 {
		t.Fatalf("CDR emitted before EndGrace after the last packet")
	}
	tb.Tick(t0.Add(10*time.Second + 5*time.Second + gcEvery))
	if len(out) != 1 {
		t.Fatalf("%d CDRs after EndGrace past the last packet, want 1", len(out))
	}
	// The retransmission is the call's last message: callend and LastSIP
	// (media after the 2xx to the BYE never moves callend:
	// TestMediaAfterEndCallEnd).
	if got, last := out[0].CallEnd.Sub(t0), out[0].LastSIP.Sub(t0); got != 10*time.Second || last != 10*time.Second {
		t.Errorf("callend %v, last SIP %v; want 10s, 10s", got, last)
	}
}

// TestOneWayReply: what ends a call's one-way state (onewaytimeout): a
// message from another address than its first INVITE's source, unless on
// the address pair of one of its INVITEs (a forwarded leg).
func TestOneWayReply(t *testing.T) {
	bob := netip.MustParseAddrPort("10.0.0.3:5060")
	aliceOther := netip.AddrPortFrom(alice.Addr(), alice.Port()+1)
	type msg struct {
		method   string // "" for a response
		src, dst netip.AddrPort
	}
	for _, tc := range []struct {
		name string
		in   []msg
		want bool
	}{
		{"INVITE only", []msg{{"INVITE", alice, pbx}}, false},
		{"100 Trying from the PBX", []msg{{"INVITE", alice, pbx}, {"", pbx, alice}}, true},
		{"forwarded INVITE and CANCEL", []msg{{"INVITE", alice, pbx}, {"INVITE", pbx, bob}, {"CANCEL", pbx, bob}}, false},
		{"reply on the forwarded leg", []msg{{"INVITE", alice, pbx}, {"INVITE", pbx, bob}, {"", bob, pbx}}, true},
		{"reverse INVITE on the forwarded leg", []msg{{"INVITE", alice, pbx}, {"INVITE", pbx, bob}, {"INVITE", bob, pbx}}, true},
		{"caller's CANCEL", []msg{{"INVITE", alice, pbx}, {"CANCEL", alice, pbx}}, false},
		{"to its own address: another port replies", []msg{{"INVITE", alice, aliceOther}, {"", aliceOther, alice}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &callState{}
			c.cdr.CallerIP, c.cdr.CallerPort = tc.in[0].src.Addr(), tc.in[0].src.Port()
			for _, in := range tc.in {
				m := &sip.Message{Request: in.method != "", Method: []byte(in.method)}
				c.checkOneWay(m, Meta{Src: in.src, Dst: in.dst})
			}
			if c.replied != tc.want {
				t.Errorf("replied %v, want %v", c.replied, tc.want)
			}
		})
	}
}
