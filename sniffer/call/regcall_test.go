package call

import (
	"fmt"
	"testing"
	"time"

	"pbx-agent/sniffer/sip"
)

// TestRegisterCallIDsBounded: one binding refreshed with a new Call-ID each
// time (phones that do not keep theirs, or a sender doing it on purpose)
// keeps at most registerMaxAttempts attempts open, not one per Call-ID it
// used within sip-register-timeout: the oldest is closed early by its own
// rules (Failed, unanswered) and counted; the 200 OK of the last one still
// finds its attempt. Open attempts of all bindings are bounded by MaxCalls.
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
	if len(tb.regs) != 1 || len(tb.regCall) != registerMaxAttempts || tb.regOpen != registerMaxAttempts {
		t.Errorf("%d bindings, %d Call-IDs indexed, %d attempts open; want 1, %d, %[4]d", len(tb.regs), len(tb.regCall), tb.regOpen, registerMaxAttempts)
	}
	if st := tb.Stats(); st.RegisterAttemptsEvicted != n-registerMaxAttempts || st.RegistersUnanswered != n-registerMaxAttempts {
		t.Errorf("evicted %d, unanswered %d; want %d", st.RegisterAttemptsEvicted, st.RegistersUnanswered, n-registerMaxAttempts)
	}
	msg("SIP/2.0 200 OK", fmt.Sprintf("reg-%d", n-1), n)
	if len(regs) != 2 || regs[0].State != RegFailed || regs[0].CallID != "reg-0" || regs[1].State != RegOK || regs[1].CallID != fmt.Sprintf("reg-%d", n-1) {
		t.Errorf("REGISTER records %+v, want Failed (reg-0, the others folded into it) and OK", regs)
	}

	// Many bindings: MaxCalls bounds the open attempts too.
	tb = New(Config{MaxCalls: 3})
	for i := range 5 {
		s := fmt.Sprintf("REGISTER sip:pbx.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK%d\r\nFrom: <sip:100@pbx.example>;tag=r%d\r\n", i, i) +
			fmt.Sprintf("To: <sip:100@pbx.example>\r\nCall-ID: b-%d\r\nCSeq: 1 REGISTER\r\n", i) +
			"Contact: <sip:100@10.0.0.1:5060>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
		if _, err := sip.Parse([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		tb.HandleSIP(&m, Meta{Time: t0.Add(time.Duration(i) * time.Millisecond), Src: alice, Dst: pbx})
	}
	if tb.regOpen != 3 || tb.Stats().RegistersRefused != 2 {
		t.Errorf("%d attempts open, %d refused; want 3, 2", tb.regOpen, tb.Stats().RegistersRefused)
	}
}
