package call

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/sip"
)

// TestResponseTimes pins VoIPmonitor's cdr.response_time_100 and
// response_time_xxx (sniff.cpp keeps the first INVITE of each path and CSeq
// number and the first 100 / other response back along it; calltable.cpp
// writes the quickest, in ms rounded half up, capped at 65,535, NULL
// without any such response; with response_time_from_first_invite, from
// the call's first INVITE to its first such response).
func TestResponseTimes(t *testing.T) {
	const null = -1
	proxy := netip.MustParseAddrPort("10.0.0.3:5060")
	inv := func(cseq int) string {
		return sipText("INVITE sip:200@pbx.example SIP/2.0", "rt", "ft", "", cseq, "INVITE", "10.0.0.1")
	}
	reinv := func(from, to string, cseq int) string { // in-dialog, From is the sender
		return sipText("INVITE sip:x@10.0.0.1 SIP/2.0", "rt", from, to, cseq, "INVITE", "10.0.0.2")
	}
	resp := func(status string, cseq int, method string) string {
		return sipText("SIP/2.0 "+status, "rt", "ft", "tt", cseq, method, "")
	}
	// again is a retransmission whose bytes differ (a new Via branch): the
	// table does not drop it as a copy, the rule keeps the first INVITE of
	// the path and CSeq number.
	again := func(m string) string { return strings.Replace(m, "branch=z9hG4bK1", "branch=z9hG4bK2", 1) }
	ack := func(cseq int) string {
		return sipText("ACK sip:200@pbx.example SIP/2.0", "rt", "ft", "tt", cseq, "ACK", "")
	}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	s := time.Second
	tests := []struct {
		name  string
		steps []step
		// default rule, then response_time_from_first_invite = yes
		want100, wantXXX           int
		wantFirst100, wantFirstXXX int
	}{
		{"100 and 180, rounded half up",
			[]step{{0, "A>B", inv(1)}, {ms(2.4996), "B>A", resp("100 Trying", 1, "INVITE")},
				{ms(10.5), "B>A", resp("180 Ringing", 1, "INVITE")}, {s, "B>A", resp("200 OK", 1, "INVITE")}},
			2, 11, 2, 11},
		{"retransmitted INVITE: the first one counts",
			[]step{{0, "A>B", inv(1)}, {500 * time.Millisecond, "A>B", inv(1)}, {s, "A>B", again(inv(1))},
				{s + 20*time.Millisecond, "B>A", resp("100 Trying", 1, "INVITE")},
				{s + 400*time.Millisecond, "B>A", resp("180 Ringing", 1, "INVITE")}},
			1020, 1400, 1020, 1400},
		{"401-challenged: the quickest transaction, or from the first INVITE",
			[]step{{0, "A>B", inv(1)}, {10 * time.Millisecond, "B>A", resp("100 Trying", 1, "INVITE")},
				{130 * time.Millisecond, "B>A", resp("401 Unauthorized", 1, "INVITE")}, {130 * time.Millisecond, "A>B", ack(1)},
				{s, "A>B", inv(2)}, {s + 4*time.Millisecond, "B>A", resp("100 Trying", 2, "INVITE")},
				{s + 100*time.Millisecond, "B>A", resp("180 Ringing", 2, "INVITE")}, {3 * s, "B>A", resp("200 OK", 2, "INVITE")}},
			4, 100, 10, 130},
		{"no 100 at all",
			[]step{{0, "A>B", inv(1)}, {50 * time.Millisecond, "B>A", resp("180 Ringing", 1, "INVITE")},
				{2 * s, "B>A", resp("200 OK", 1, "INVITE")}},
			null, 50, null, 50},
		{"no response at all",
			[]step{{0, "A>B", inv(1)}, {s / 2, "A>B", again(inv(1))}},
			null, null, null, null},
		{"1xx other than 100 is xxx",
			[]step{{0, "A>B", inv(1)}, {7 * time.Millisecond, "B>A", resp("183 Session Progress", 1, "INVITE")},
				{9 * time.Millisecond, "B>A", resp("100 Trying", 1, "INVITE")}},
			9, 7, 9, 7},
		{"200 to the CANCEL shares the INVITE's CSeq number",
			[]step{{0, "A>B", inv(1)}, {5 * time.Millisecond, "B>A", resp("100 Trying", 1, "INVITE")},
				{3 * s, "A>B", sipText("CANCEL sip:200@pbx.example SIP/2.0", "rt", "ft", "", 1, "CANCEL", "")},
				{3*s + 2*time.Millisecond, "B>A", resp("200 OK", 1, "CANCEL")},
				{3*s + 3*time.Millisecond, "B>A", resp("487 Request Terminated", 1, "INVITE")}},
			5, 3002, 5, 3002},
		{"a response from elsewhere has no transaction: 0",
			[]step{{0, "A>B", inv(1)}, {30 * time.Millisecond, "P>A", resp("100 Trying", 1, "INVITE")},
				{40 * time.Millisecond, "B>A", resp("180 Ringing", 1, "INVITE")}},
			0, 40, 30, 40},
		{"the callee's re-INVITE opens no transaction",
			[]step{{0, "A>B", inv(1)}, {50 * time.Millisecond, "B>A", resp("200 OK", 1, "INVITE")}, {60 * time.Millisecond, "A>B", ack(1)},
				{5 * s, "B>A", reinv("tt", "ft", 1)}, {5*s + 3*time.Millisecond, "A>B", sipText("SIP/2.0 100 Trying", "rt", "tt", "ft", 1, "INVITE", "")}},
			0, 50, 5003, 50},
		{"the caller's re-INVITE is a transaction of its own",
			[]step{{0, "A>B", inv(1)}, {50 * time.Millisecond, "B>A", resp("200 OK", 1, "INVITE")}, {60 * time.Millisecond, "A>B", ack(1)},
				{5 * s, "A>B", reinv("ft", "tt", 2)}, {5*s + 3*time.Millisecond, "B>A", resp("100 Trying", 2, "INVITE")}},
			3, 50, 5003, 50},
		{"capped at 65,535",
			[]step{{0, "A>B", inv(1)}, {70 * s, "B>A", resp("180 Ringing", 1, "INVITE")}},
			null, 65535, null, 65535},
	}
	addr := map[byte]Meta{'A': {Src: alice}, 'B': {Src: pbx}, 'P': {Src: proxy}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out []CDR
			// The 65,535 cap needs a reply after 70 s: past onewaytimeout.
			tb := New(Config{OneWayTimeout: 2 * time.Minute, OnCallEnd: func(c *CDR) { out = append(out, *c) }})
			var m sip.Message
			for i, st := range tt.steps {
				if _, err := sip.Parse([]byte(st.text), &m); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				meta := Meta{Time: t0.Add(st.at), Src: addr[st.dir[0]].Src, Dst: addr[st.dir[2]].Src}
				tb.HandleSIP(&m, meta)
			}
			tb.Flush()
			if len(out) != 1 {
				t.Fatalf("%d CDRs, want 1", len(out))
			}
			c := out[0]
			for _, v := range []struct {
				what string
				d    ResponseDelay
				ff   bool
				want int
			}{
				{"response_time_100", c.Response100, false, tt.want100},
				{"response_time_xxx", c.ResponseXXX, false, tt.wantXXX},
				{"response_time_100 from the first INVITE", c.Response100, true, tt.wantFirst100},
				{"response_time_xxx from the first INVITE", c.ResponseXXX, true, tt.wantFirstXXX},
			} {
				got, ok := v.d.Millis(c.CallDate, v.ff)
				if !ok {
					got = null
				}
				if got != v.want {
					t.Errorf("%s = %d, want %d (-1: NULL)", v.what, got, v.want)
				}
			}
		})
	}
}

// TestResponseTimesBounded: a storm of INVITE transactions on one call
// keeps MaxInviteTx of them (the rest are counted as dropped entries).
func TestResponseTimesBounded(t *testing.T) {
	tb := New(Config{})
	var m sip.Message
	for i := range MaxInviteTx + 10 {
		txt := sipText("INVITE sip:200@pbx.example SIP/2.0", "storm", "ft", "", i+1, "INVITE", "")
		if _, err := sip.Parse([]byte(txt), &m); err != nil {
			t.Fatal(err)
		}
		tb.HandleSIP(&m, Meta{Time: t0.Add(time.Duration(i) * time.Millisecond), Src: alice, Dst: pbx})
	}
	c := tb.calls["storm"]
	if len(c.txs) != MaxInviteTx {
		t.Errorf("%d transactions kept, want %d", len(c.txs), MaxInviteTx)
	}
	if st := tb.Stats(); st.EntriesDropped != 10 {
		t.Errorf("EntriesDropped = %d, want 10", st.EntriesDropped)
	}
}
