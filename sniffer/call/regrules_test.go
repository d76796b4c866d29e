package call

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/sip"
)

// regStep is one REGISTER or response of a registration test, at ms after
// t0 (fractions of a second matter: expiry counts whole seconds).
type regStep struct {
	ms       int64
	status   int    // 0: a REGISTER
	callID   string // "" = "reg1"
	cseq     int
	expires  int // Expires header (REGISTER) / contact expires (2xx); 0 = none
	auth     bool
	from, to netip.AddrPort // REGISTER: from → to; a response goes to → from
	contact  string         // contact host, "" = 10.0.0.1
}

// regRow is what the test keeps of an emitted REGISTER summary.
type regRow struct {
	at      int64 // ms after t0
	state   RegisterState
	expires int
	caller  string
}

func runRegSteps(t *testing.T, cfg Config, steps []regStep) []regRow {
	t.Helper()
	var rows []regRow
	cfg.OnRegister = func(r *Register) {
		rows = append(rows, regRow{r.Time.Sub(t0).Milliseconds(), r.State, r.Expires, netip.AddrPortFrom(r.CallerIP, r.CallerPort).String()})
	}
	tb := New(cfg)
	var m sip.Message
	for i, s := range steps {
		callID := s.callID
		if callID == "" {
			callID = "reg1"
		}
		from, to := s.from, s.to
		if !from.IsValid() {
			from, to = alice, pbx
		}
		contact := s.contact
		if contact == "" {
			contact = "10.0.0.1"
		}
		first := "REGISTER sip:pbx.example SIP/2.0"
		src, dst := from, to
		if s.status != 0 {
			first = fmt.Sprintf("SIP/2.0 %d Answer", s.status)
			src, dst = to, from
		}
		msg := first + fmt.Sprintf("\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%d\r\nFrom: <sip:100@pbx.example>;tag=f\r\n", from, s.cseq) +
			"To: <sip:100@pbx.example>\r\nCall-ID: " + callID + fmt.Sprintf("\r\nCSeq: %d REGISTER\r\n", s.cseq)
		switch {
		case s.status == 0:
			msg += "Contact: <sip:100@" + contact + ">\r\n"
			if s.expires > 0 {
				msg += fmt.Sprintf("Expires: %d\r\n", s.expires)
			}
			if s.auth {
				msg += "Authorization: Digest username=\"100\", realm=\"pbx\", nonce=\"n\", response=\"r\"\r\n"
			}
		case s.status < 300:
			msg += fmt.Sprintf("Contact: <sip:100@%s>;expires=%d\r\n", contact, s.expires)
		}
		msg += "Content-Length: 0\r\n\r\n"
		if _, err := sip.Parse([]byte(msg), &m); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		tb.HandleSIP(&m, Meta{Time: t0.Add(time.Duration(s.ms) * time.Millisecond), Src: src, Dst: dst})
	}
	tb.Flush()
	return rows
}

// TestRegisterRules: VoIPmonitor's registration rules (register.go's
// comment), each on the sequence of a real capture it was found on.
func TestRegisterRules(t *testing.T) {
	const min = 60_000
	proxy := netip.MustParseAddrPort("10.0.0.2:5160")
	registrar := netip.MustParseAddrPort("10.0.0.3:5060")
	// ok is a REGISTER answered 200 at ms (16 ms later), granted exp.
	ok := func(ms int64, cseq, exp int) []regStep {
		return []regStep{{ms: ms, cseq: cseq, expires: exp}, {ms: ms + 16, status: 200, cseq: cseq, expires: exp}}
	}
	// fail is a challenged attempt refused again (401 "nonce has changed").
	fail := func(ms int64, cseq int) []regStep {
		return []regStep{{ms: ms, cseq: cseq, expires: 1200}, {ms: ms + 140, status: 401, cseq: cseq},
			{ms: ms + 17_000, cseq: cseq + 1, expires: 1200, auth: true}, {ms: ms + 17_150, status: 401, cseq: cseq + 1}}
	}
	cat := func(parts ...[]regStep) []regStep {
		var out []regStep
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name string
		cfg  Config // its Register rules; zero: VoIPmonitor's defaults
		in   []regStep
		want []regRow
	}{
		{
			// rtp_rtcp_sip_ipv4_udp.pcap: 20 s granted at 17:58:07.022,
			// refreshed at 17:58:27.275: 507 is not < 507.
			name: "refresh 0.25 s late in the same second",
			in:   cat(ok(22, 1, 20), ok(20_275, 2, 20)),
			want: []regRow{{22, RegOK, 20, "10.0.0.1:5060"}},
		},
		{
			name: "refresh late into the next whole second",
			in:   cat(ok(900, 1, 20), ok(21_100, 2, 20)),
			want: []regRow{{900, RegOK, 20, "10.0.0.1:5060"}, {20_900, RegExpired, 0, "10.0.0.1:5060"}, {21_100, RegOK, 20, "10.0.0.1:5060"}},
		},
		{
			name: "a failed attempt after the granted time expires the binding first",
			in:   cat(ok(0, 1, 20), fail(25_000, 2)),
			want: []regRow{{0, RegOK, 20, "10.0.0.1:5060"}, {20_000, RegExpired, 0, "10.0.0.1:5060"}, {25_000, RegFailed, 1200, "10.0.0.1:5060"}},
		},
		{
			// aaa.pcap voi18063: 403 at 09:32:52, "nonce has changed"
			// 108 s later: one register_failed row.
			name: "failures within 10 minutes go into the failed row",
			in:   cat(fail(0, 1), fail(108*1000, 3)),
			want: []regRow{{0, RegFailed, 1200, "10.0.0.1:5060"}},
		},
		{
			// aaa.pcap voi18062: failed 09:37:27, OK, failed 09:47:36 (608 s).
			name: "a failure over 10 minutes after the failed row writes a new one",
			in:   cat(fail(0, 1), ok(91_000, 3, 1200), fail(608_500, 5)),
			want: []regRow{{0, RegFailed, 1200, "10.0.0.1:5060"}, {91_000, RegOK, 1200, "10.0.0.1:5060"}, {608_500, RegFailed, 1200, "10.0.0.1:5060"}},
		},
		{
			// aaa.pcap 35104723: OK 09:53:16, failed 09:53:51, OK 09:56:41.
			name: "a failed refresh does not end the OK state",
			in:   cat(ok(0, 1, 1200), fail(35_000, 2), ok(205_000, 4, 1200)),
			want: []regRow{{0, RegOK, 1200, "10.0.0.1:5060"}, {35_000, RegFailed, 1200, "10.0.0.1:5060"}},
		},
		{
			name: "the same state is written again after 10 minutes",
			in:   cat(ok(0, 1, 1200), ok(600_000, 2, 1200), ok(601_500, 3, 1200), ok(700_000, 4, 1200)),
			want: []regRow{{0, RegOK, 1200, "10.0.0.1:5060"}, {601_500, RegOK, 1200, "10.0.0.1:5060"}},
		},
		{
			name: "an expiry change alone writes nothing",
			in:   cat(ok(0, 1, 1200), ok(60_000, 2, 600)),
			want: []regRow{{0, RegOK, 1200, "10.0.0.1:5060"}},
		},
		{
			// call-gsm.pcap 1001: REGISTER 00:30:54.138 unanswered,
			// retransmitted .640, 401, retry, 200: created_at .138.
			name: "a retransmission belongs to the attempt",
			in: []regStep{{ms: 138, cseq: 1, expires: 600}, {ms: 640, cseq: 1, expires: 600}, {ms: 642, status: 401, cseq: 1},
				{ms: 643, cseq: 2, expires: 600, auth: true}, {ms: 644, status: 200, cseq: 2, expires: 599}},
			want: []regRow{{138, RegOK, 599, "10.0.0.1:5060"}},
		},
		{
			// calltable.cpp:14288-14292: closed with no answer, Failed.
			name: "a REGISTER 5 minutes after an unanswered one starts a new attempt",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 5*min + 1, cseq: 2, expires: 600}, {ms: 5*min + 20, status: 200, cseq: 2, expires: 600}},
			want: []regRow{{0, RegFailed, 600, "10.0.0.1:5060"}, {5*min + 1, RegOK, 600, "10.0.0.1:5060"}},
		},
		{
			// The registrar is down: nothing answers the REGISTER and its
			// three retransmissions; the capture ends (cleanup_registers(closeAll)).
			name: "an unanswered REGISTER is Failed",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 500, cseq: 1, expires: 600}, {ms: 1500, cseq: 1, expires: 600}, {ms: 3500, cseq: 1, expires: 600}},
			want: []regRow{{0, RegFailed, 600, "10.0.0.1:5060"}},
		},
		{
			// sip-register-timeout: 5 s after the last message the attempt
			// is closed; the next REGISTER is a new attempt and its OK is
			// dated at it.
			name: "a REGISTER 5 s after an unanswered one starts a new attempt",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 5000, cseq: 2, expires: 600}, {ms: 5020, status: 200, cseq: 2, expires: 600}},
			want: []regRow{{0, RegFailed, 600, "10.0.0.1:5060"}, {5000, RegOK, 600, "10.0.0.1:5060"}},
		},
		{
			name: "a REGISTER 4.9 s after an unanswered one belongs to its attempt",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 4900, cseq: 2, expires: 600}, {ms: 4920, status: 200, cseq: 2, expires: 600}},
			want: []regRow{{0, RegOK, 600, "10.0.0.1:5060"}},
		},
		{
			// The reply was lost: a 200 after the attempt closed has no
			// REGISTER call left and is ignored.
			name: "a 200 after the attempt timed out is ignored",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 6000, status: 200, cseq: 1, expires: 600}},
			want: []regRow{{0, RegFailed, 600, "10.0.0.1:5060"}},
		},
		{
			// convRegisterState: state rs_na, which Registers::add skips.
			name: "a REGISTER answered only 100 Trying writes nothing",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 5, status: 100, cseq: 1}},
		},
		{
			// lastSIPresponseNum 401 at the close: Failed.
			name: "a challenge never followed is Failed",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 5, status: 401, cseq: 1}},
			want: []regRow{{0, RegFailed, 600, "10.0.0.1:5060"}},
		},
		{
			name: "a retry with credentials left unanswered is Failed",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 5, status: 401, cseq: 1}, {ms: 10, cseq: 2, expires: 600, auth: true}, {ms: 6000, cseq: 3, expires: 600}},
			want: []regRow{{0, RegFailed, 600, "10.0.0.1:5060"}},
		},
		{
			// RFC 3261 timer E over UDP: 11 transmissions in 31.5 s, no
			// answer. The 5th REGISTER with neither a 200 nor a 401 saves
			// the call ManyRegMessages (sniff.cpp:6764-6781) and starts a
			// new one; its 5th (23.5 s) does it again (same state, folded);
			// the last three are closed Failed.
			name: "an unanswered REGISTER retransmitted until timer F",
			in: []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 500, cseq: 1, expires: 600}, {ms: 1500, cseq: 1, expires: 600},
				{ms: 3500, cseq: 1, expires: 600}, {ms: 7500, cseq: 1, expires: 600}, {ms: 11500, cseq: 1, expires: 600},
				{ms: 15500, cseq: 1, expires: 600}, {ms: 19500, cseq: 1, expires: 600}, {ms: 23500, cseq: 1, expires: 600},
				{ms: 27500, cseq: 1, expires: 600}, {ms: 31500, cseq: 1, expires: 600}},
			want: []regRow{{0, RegManyMsgs, 600, "10.0.0.1:5060"}, {23500, RegFailed, 600, "10.0.0.1:5060"}},
		},
		{
			name: "four unanswered REGISTERs are no storm",
			in: []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 500, cseq: 1, expires: 600}, {ms: 1500, cseq: 1, expires: 600},
				{ms: 3500, cseq: 1, expires: 600}, {ms: 3600, status: 200, cseq: 1, expires: 600}},
			want: []regRow{{0, RegOK, 600, "10.0.0.1:5060"}},
		},
		{
			// sniff.cpp:6925-6932: more than 20 messages in one REGISTER
			// call (challenged, so the REGISTER count does not apply); the
			// 100 after it has no call left.
			name: "more than 20 messages in one attempt",
			in: func() []regStep {
				in := []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 10, status: 401, cseq: 1}}
				for i := range int64(10) {
					in = append(in, regStep{ms: 100 + i*400, cseq: 2, expires: 600, auth: true}, regStep{ms: 105 + i*400, status: 100, cseq: 2})
				}
				return in
			}(),
			want: []regRow{{0, RegManyMsgs, 600, "10.0.0.1:5060"}},
		},
		{
			// sip_ipv4_tcp_retrans.pcap: the phone's REGISTER and the
			// proxy's relay of it share a Call-ID; each answer goes to its
			// own leg (the 401 to the phone is no failure of the relay).
			name: "a relayed REGISTER: both legs, one Call-ID",
			in: []regStep{
				{ms: 0, cseq: 1, expires: 300, from: alice, to: pbx},
				{ms: 1, cseq: 1, expires: 600, from: proxy, to: registrar, contact: "10.0.0.2"},
				{ms: 2, status: 401, cseq: 1, from: proxy, to: registrar, contact: "10.0.0.2"},
				{ms: 3, status: 401, cseq: 1, from: alice, to: pbx},
				{ms: 4, cseq: 2, expires: 300, auth: true, from: alice, to: pbx},
				{ms: 5, cseq: 2, expires: 600, auth: true, from: proxy, to: registrar, contact: "10.0.0.2"},
				{ms: 6, status: 200, cseq: 2, expires: 600, from: proxy, to: registrar, contact: "10.0.0.2"},
				{ms: 7, status: 200, cseq: 2, expires: 60, from: alice, to: pbx},
			},
			want: []regRow{{1, RegOK, 600, "10.0.0.2:5160"}, {0, RegOK, 60, "10.0.0.1:5060"}},
		},
		{
			// Each Call-ID is its own REGISTER call (registers_listMAP):
			// the first, left unanswered, times out Failed.
			name: "a REGISTER with a new Call-ID 2 s after an unanswered one",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 2000, callID: "reg2", cseq: 1, expires: 600}, {ms: 2020, status: 200, callID: "reg2", cseq: 1, expires: 600}},
			want: []regRow{{2000, RegOK, 600, "10.0.0.1:5060"}, {0, RegFailed, 600, "10.0.0.1:5060"}},
		},
		{
			name: "the late 200 of an attempt whose phone started another Call-ID",
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 1000, callID: "reg2", cseq: 1, expires: 600}, {ms: 1500, status: 200, cseq: 1, expires: 600}},
			want: []regRow{{0, RegOK, 600, "10.0.0.1:5060"}, {1000, RegFailed, 600, "10.0.0.1:5060"}},
		},
		{
			// The challenged attempt is closed with its 401 last: Failed
			// (calltable.cpp:14288-14292), here at the end of the capture.
			name: "a retry with credentials on a new Call-ID",
			in: []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 10, status: 401, cseq: 1},
				{ms: 50, callID: "reg2", cseq: 1, expires: 600, auth: true}, {ms: 60, status: 200, callID: "reg2", cseq: 1, expires: 600}},
			want: []regRow{{50, RegOK, 600, "10.0.0.1:5060"}, {0, RegFailed, 600, "10.0.0.1:5060"}},
		},
		{
			name: "sip-register-timeout = 10: a REGISTER 7 s after an unanswered one belongs to its attempt",
			cfg:  Config{Register: RegisterRules{Timeout: 10 * time.Second}},
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 7000, cseq: 2, expires: 600}, {ms: 7020, status: 200, cseq: 2, expires: 600}},
			want: []regRow{{0, RegOK, 600, "10.0.0.1:5060"}},
		},
		{
			name: "sip-register-max-registers = 6: six unanswered REGISTERs are no storm",
			cfg:  Config{Register: RegisterRules{MaxRegisters: 6}},
			in: []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 500, cseq: 1, expires: 600}, {ms: 1000, cseq: 1, expires: 600},
				{ms: 1500, cseq: 1, expires: 600}, {ms: 2000, cseq: 1, expires: 600}, {ms: 2500, cseq: 1, expires: 600}},
			want: []regRow{{0, RegFailed, 600, "10.0.0.1:5060"}},
		},
		{
			name: "sip-register-max-messages = 3: a REGISTER and three 100s are a storm",
			cfg:  Config{Register: RegisterRules{MaxMessages: 3}},
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 5, status: 100, cseq: 1}, {ms: 10, status: 100, cseq: 1}, {ms: 15, status: 100, cseq: 1}},
			want: []regRow{{0, RegManyMsgs, 600, "10.0.0.1:5060"}},
		},
		{
			name: "sip-register-state-timeout = 60: the same state is written again after a minute",
			cfg:  Config{Register: RegisterRules{StateTimeout: time.Minute}},
			in:   cat(ok(0, 1, 1200), ok(60_500, 2, 1200), ok(61_500, 3, 1200)),
			want: []regRow{{0, RegOK, 1200, "10.0.0.1:5060"}, {61_500, RegOK, 1200, "10.0.0.1:5060"}},
		},
		{
			// register.cpp:461: exp_state needs a non-zero timeout.
			name: "sip-register-state-timeout = 0: the same state is never written again",
			cfg:  Config{Register: RegisterRules{StateTimeout: -1}},
			in:   cat(ok(0, 1, 1200), ok(601_500, 2, 1200), ok(1_200_000, 3, 1200)),
			want: []regRow{{0, RegOK, 1200, "10.0.0.1:5060"}},
		},
		{
			name: "sip-register-timeout-disable_save_failed: an unanswered REGISTER writes nothing",
			cfg:  Config{Register: RegisterRules{NoTimeoutFailed: true}},
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 500, cseq: 1, expires: 600}, {ms: 6000, cseq: 2, expires: 600}},
			want: nil,
		},
		{
			// Call::saveregister (calltable.cpp:14423) adds the state
			// without the option's test.
			name: "sip-register-timeout-disable_save_failed: a 403 still writes Failed",
			cfg:  Config{Register: RegisterRules{NoTimeoutFailed: true}},
			in:   []regStep{{ms: 0, cseq: 1, expires: 600}, {ms: 20, status: 403, cseq: 1}},
			want: []regRow{{0, RegFailed, 600, "10.0.0.1:5060"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runRegSteps(t, tt.cfg, tt.in)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("rows\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// TestRegisterUnansweredTimeout: the table's clock alone (no further
// message) closes an unanswered REGISTER RegisterRules.Timeout after its last
// retransmission, as VoIPmonitor's periodic cleanup_registers does, and
// counts it.
func TestRegisterUnansweredTimeout(t *testing.T) {
	var rows []Register
	tb := New(Config{OnRegister: func(r *Register) { rows = append(rows, *r) }})
	var m sip.Message
	for _, ms := range []int64{0, 500, 1500} {
		msg := "REGISTER sip:pbx.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:100@pbx.example>;tag=f\r\n" +
			"To: <sip:100@pbx.example>\r\nCall-ID: reg1\r\nCSeq: 1 REGISTER\r\nContact: <sip:100@10.0.0.1>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
		if _, err := sip.Parse([]byte(msg), &m); err != nil {
			t.Fatal(err)
		}
		tb.HandleSIP(&m, Meta{Time: t0.Add(time.Duration(ms) * time.Millisecond), Src: alice, Dst: pbx})
	}
	tb.Tick(t0.Add(6400 * time.Millisecond))
	if len(rows) != 0 {
		t.Fatalf("rows %+v before 5 s after the last REGISTER", rows)
	}
	tb.Tick(t0.Add(6800 * time.Millisecond))
	if len(rows) != 1 || rows[0].State != RegFailed || !rows[0].Time.Equal(t0) || rows[0].FailedAttempts != 1 || rows[0].LastResponseNum != 0 {
		t.Fatalf("rows %+v, want one Failed at the first REGISTER", rows)
	}
	if n := tb.Stats().RegistersUnanswered; n != 1 {
		t.Errorf("RegistersUnanswered = %d, want 1", n)
	}
}
