package call

import (
	"fmt"
	"testing"
	"time"

	"pbx-agent/sniffer/sip"
)

// TestRegisterCallIDsBounded: one binding refreshed with a new Call-ID each
// time (phones that do not keep theirs, or a sender doing it on purpose)
// keeps one entry in the Call-ID index, not one per Call-ID it ever used
// (1 M REGISTERs left 1 M entries, never removed while the binding lived);
// the 200 OK of the last one still finds the binding.
func TestRegisterCallIDsBounded(t *testing.T) {
	var regs []Register
	tb := New(Config{OnRegister: func(r *Register) { regs = append(regs, *r) }})
	var m sip.Message
	msg := func(first, callID string, i int) {
		t.Helper()
		s := first + fmt.Sprintf("\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK%d\r\nFrom: <sip:100@pbx.example>;tag=r%d\r\n", i, i) +
			"To: <sip:100@pbx.example>\r\nCall-ID: " + callID + fmt.Sprintf("\r\nCSeq: %d REGISTER\r\n", i+1) +
			"Contact: <sip:100@10.0.0.1:5060>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
		if _, err := sip.Parse([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		meta := Meta{Time: t0.Add(time.Duration(i) * time.Millisecond), Src: alice, Dst: pbx}
		if first[0] == 'S' {
			meta.Src, meta.Dst = pbx, alice
		}
		tb.HandleSIP(&m, meta)
	}
	const n = 10000
	for i := range n {
		msg("REGISTER sip:pbx.example SIP/2.0", fmt.Sprintf("reg-%d", i), i)
	}
	if len(tb.regs) != 1 || len(tb.regCall) != 1 {
		t.Errorf("%d bindings, %d Call-IDs indexed; want 1, 1", len(tb.regs), len(tb.regCall))
	}
	msg("SIP/2.0 200 OK", fmt.Sprintf("reg-%d", n-1), n)
	if len(regs) != 1 || regs[0].State != RegOK {
		t.Errorf("REGISTER records %+v, want one registered", regs)
	}
}
