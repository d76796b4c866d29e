package call

import (
	"bytes"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"pbx-agent/internal/opt"
	"pbx-agent/sniffer/sip"
)

// VoIPmonitor's registration rules (register.cpp, sniff.cpp and
// calltable.cpp of its 2026.04.0 source):
//
//   - A binding keeps two chains of states: one of OK, Unregister and
//     Expired (register_state) and one of Failed (register_failed)
//     (Register::addState). A row is written when the state differs from the
//     last of its own chain, so a failed refresh does not end the OK state
//     and the OK that follows it writes nothing, and further failures go
//     into the failed row already written.
//   - The same state is written again once its row is more than
//     RegisterRules.StateTimeout old (RegisterState::isEq).
//   - A row's time is its attempt's first REGISTER (the call's calltime),
//     the challenged one and retransmissions included.
//   - An OK binding expires when an attempt starts after its granted time,
//     counted in whole seconds from the REGISTER that refreshed it last
//     (Registers::add), or, with no attempt, registerExpiryGrace after that
//     time (Registers::cleanup(false, 30)). The Expired row is dated at the
//     granted time's end and has expires 0 (Register::expire).
//   - Each Call-ID is an attempt of its own (one REGISTER call each in
//     registers_listMAP): a phone that starts over with a new Call-ID
//     leaves the old attempt open until its own rules close it.
//   - An attempt is closed RegisterRules.Timeout after its last message
//     (set_destroy_call_at at the first REGISTER,
//     moved on by every later message, Calltable::cleanup_registers). One
//     with no answer at all, or whose last answer was 401, 403 or 404, is
//     written Failed, dated at its first REGISTER (cleanup_registers and
//     convRegisterState); one answered only 1xx writes nothing (its state
//     is rs_na, which Registers::add skips). An attempt whose last message is
//     a challenge waits for its retry up to registerAttemptWindow instead:
//     VoIPmonitor's reference run (-r, where the timed cleanup does not run
//     within a capture) kept aaa.pcap's retries 17 s after their 401 in the
//     challenged attempt. A response to a closed attempt is ignored (no
//     REGISTER call has its Call-ID any more).
//   - More than RegisterRules.MaxRegisters REGISTERs in one attempt with neither
//     a 200 nor a 401 (an unanswered REGISTER retransmitted), or more than
//     RegisterRules.MaxMessages messages, write state ManyRegMessages (register_state
//     state 4), dated at the attempt's first REGISTER; in the first case the
//     REGISTER starts a new attempt.

// registerExpiryGrace is how long past its expiry a binding with no new
// attempt waits before it is reported Expired (the 30 of VoIPmonitor's
// periodic Registers::cleanup(false, 30)).
const registerExpiryGrace = 30 * time.Second

// registerAttemptWindow bounds an attempt left unanswered: a REGISTER of
// the same Call-ID within it (a retransmission) belongs to the attempt.
// VoIPmonitor closes a REGISTER call with no 2xx 300 s after its first packet
// (Calltable::cleanup_registers).
const registerAttemptWindow = 300 * time.Second

// RegisterRules are VoIPmonitor's REGISTER options (voipmonitor.cpp:659-662,
// 683; read at voipmonitor.cpp:7253-7257, 7280). A zero field takes
// VoIPmonitor's default.
type RegisterRules struct {
	// Timeout closes an attempt this long after its last message
	// (sip-register-timeout, default 5 s: sniff.cpp:3913, 6837,
	// calltable.h:2396-2402).
	Timeout time.Duration
	// MaxRegisters and MaxMessages bound one attempt: more REGISTERs with
	// neither a 200 nor a 401, or more messages, are a ManyRegMessages state
	// (sip-register-max-registers, default 4, sniff.cpp:6764, and
	// sip-register-max-messages, default 20, sniff.cpp:6925).
	MaxRegisters, MaxMessages int
	// StateTimeout is how old the row of a state may get before the same
	// state is written again (sip-register-state-timeout, default 10 min,
	// whole seconds: register.cpp:461-463). Negative: never again
	// (VoIPmonitor's 0).
	StateTimeout time.Duration
	// NoTimeoutFailed: an attempt closed by its timeout or at the end of the
	// capture writes no Failed row (sip-register-timeout-disable_save_failed,
	// default no: calltable.cpp:14293-14296). A 401, 403 or 404 that ends
	// an attempt at once still writes it.
	NoTimeoutFailed bool
}

func (r *RegisterRules) defaults() {
	opt.Default(&r.Timeout, 5*time.Second)
	opt.Default(&r.MaxRegisters, 4)
	opt.Default(&r.MaxMessages, 20)
	if r.StateTimeout == 0 { // negative stays: never again
		r.StateTimeout = 600 * time.Second
	}
}

// regChain is the last state written in one of a binding's two chains.
type regChain struct {
	state RegisterState // 0: nothing written yet
	from  time.Time     // the attempt that wrote the row
	to    time.Time     // the last attempt with the same state
	row   Register      // what was written, Expires updated by later attempts
}

// isOK: a state a registration holds (RegisterState::isOK).
func (c *regChain) isOK() bool { return c.state == RegOK || c.state == RegUnknownOK }

// regState follows one registration binding (AOR + contact): its open
// attempts and the last states reported.
type regState struct {
	ok, fail regChain      // register_state's chain and register_failed's
	failed   int           // failed attempts since the last success
	attempts []*regAttempt // open attempts, oldest first
	seen     time.Time     // last REGISTER or answer of the binding
}

// regAttempt is one REGISTER call of a binding: VoIPmonitor keeps one per
// Call-ID (registers_listMAP), each closed by its own rules, so a phone that
// starts over with a new Call-ID leaves the old attempt to its timeout.
type regAttempt struct {
	b          *regState
	pending    Register // the REGISTER in flight, filled from the request
	challenged bool     // a 401/407 was seen for the pending REGISTER
	hasAuth    bool     // the pending REGISTER carried credentials
	callID     string
	started    time.Time // first REGISTER of the attempt (a challenged one included)
	last       time.Time // last message of the attempt
	regs, msgs int       // REGISTERs and messages of the attempt
	got200     bool      // the attempt got a 2xx
	got401     bool      // the attempt got a 401
	lastResp   int       // the attempt's last response code, 0: none yet
	lastReq    uint64    // order of the attempt's last REGISTER (Table.regSeq)
}

// registerMaxAttempts bounds the open attempts of one binding: a sender
// rotating Call-IDs faster than they time out closes its oldest attempt
// early, by its own rules (counted in Stats.RegisterAttemptsEvicted). The
// table's open attempts are bounded by Config.MaxCalls as its bindings are.
const registerMaxAttempts = 16

// current is the binding's state as listregisters shows it: the OK chain's
// while it holds, else the later of the two (Register::getLastState).
func (st *regState) current() *regChain {
	if st.ok.isOK() || st.fail.state == 0 || st.ok.state != 0 && !st.ok.to.Before(st.fail.to) {
		return &st.ok
	}
	return &st.fail
}

// attempt returns the binding's open attempt of a Call-ID, nil if none.
func (st *regState) attempt(callID string) *regAttempt {
	for _, a := range st.attempts {
		if a.callID == callID {
			return a
		}
	}
	return nil
}

// staleRegister is how long a binding that is not registered (failed, or
// never answered) is remembered without any REGISTER traffic.
const staleRegister = time.Hour

func (t *Table) handleRegister(m *sip.Message, meta Meta) {
	t.stats.Registers++
	if m.Request {
		if string(m.Method) != "REGISTER" {
			return
		}
		r := t.registerFromRequest(m, meta)
		key := r.ToNum + "@" + r.ToDomain + "|" + r.ContactNum + "@" + r.ContactDomain
		st := t.regs[key]
		if st == nil {
			if len(t.regs) >= t.cfg.MaxCalls { // a REGISTER flood: bounded like calls
				t.stats.RegistersRefused++
				return
			}
			st = &regState{}
			t.regs[key] = st
		}
		st.seen = meta.Time
		t.closeIdleAttempts(st, meta.Time)
		a := st.attempt(r.CallID)
		if a != nil && meta.Time.Sub(a.started) > registerAttemptWindow {
			t.closeAttempt(a) // VoIPmonitor's 300 s zombie timeout
			a = nil
		}
		if a == nil {
			// A new attempt; the retry with credentials after a 401/407
			// and a retransmission belong to the attempt they follow
			// (VoIPmonitor's created_at is the REGISTER call's first packet).
			if t.regOpen >= t.cfg.MaxCalls {
				t.stats.RegistersRefused++
				return
			}
			if len(st.attempts) >= registerMaxAttempts {
				t.stats.RegisterAttemptsEvicted++
				t.closeAttempt(st.attempts[0])
			}
			a = &regAttempt{b: st, callID: r.CallID}
			a.restart(meta.Time)
			st.attempts = append(st.attempts, a)
			t.regCall[r.CallID] = append(t.regCall[r.CallID], a)
			t.regOpen++
		}
		a.regs++
		a.msgs++
		a.last = meta.Time
		if a.regs > t.cfg.Register.MaxRegisters && !a.got200 && !a.got401 {
			// sniff.cpp:6764-6781: the call is saved ManyRegMessages and
			// this REGISTER starts a new one.
			a.pending.Time = a.started
			t.report(a, RegManyMsgs)
			a.restart(meta.Time)
			a.regs, a.msgs = 1, 1
		}
		t.regSeq++
		a.lastReq = t.regSeq
		a.pending = r
		a.hasAuth = len(m.Header("Authorization")) > 0 || len(m.Header("Proxy-Authorization")) > 0
		a.challenged = false
		t.tooManyMessages(a)
		return
	}
	a := t.regByCallID(m.CallID, meta)
	if a == nil {
		return // no open attempt: VoIPmonitor has no call to give it to
	}
	st := a.b
	st.seen = meta.Time
	if t.closeIdle(a, meta.Time) {
		return
	}
	code := m.StatusCode
	a.msgs++
	a.last = meta.Time
	a.lastResp = code
	a.got200 = a.got200 || code >= 200 && code < 300
	a.got401 = a.got401 || code == 401
	r := &a.pending
	r.LastResponseNum = code
	if ua := m.UserAgent(); r.UA == "" && len(ua) > 0 {
		r.UA = string(ua)
	}
	if code >= 200 {
		r.LastResponse = responseText(m)
	}
	switch {
	case code < 200:
		t.tooManyMessages(a)
		return
	case code < 300:
		if exp := responseExpires(m, r); exp >= 0 {
			r.Expires = exp
		}
		state := RegOK
		if r.Expires == 0 {
			state = RegUnregister
		}
		r.Time = a.started
		r.FailedAttempts = st.failed
		st.failed = 0
		t.dropAttempt(a)
		t.report(a, state)
	case (code == 401 || code == 407) && !a.hasAuth && !a.challenged:
		a.challenged = true // the normal digest challenge, not a failure
		t.tooManyMessages(a)
	default:
		st.failed++
		t.dropAttempt(a)
		r.Time = a.started
		r.FailedAttempts = st.failed
		t.report(a, RegFailed)
	}
}

// restart starts an attempt afresh at a REGISTER sent at ts.
func (a *regAttempt) restart(ts time.Time) {
	a.started, a.last = ts, ts
	a.regs, a.msgs = 0, 0
	a.got200, a.got401 = false, false
	a.lastResp = 0
}

// tooManyMessages ends an open attempt of more than RegisterRules.MaxMessages
// messages as ManyRegMessages (sniff.cpp:6925-6932).
func (t *Table) tooManyMessages(a *regAttempt) {
	if a.msgs <= t.cfg.Register.MaxMessages {
		return
	}
	a.pending.Time = a.started
	t.dropAttempt(a)
	t.report(a, RegManyMsgs)
}

// closeIdleAttempts closes a binding's attempts quiet past their timeout
// at now, oldest first.
func (t *Table) closeIdleAttempts(st *regState, now time.Time) {
	for i := 0; i < len(st.attempts); {
		if !t.closeIdle(st.attempts[i], now) {
			i++
		}
	}
}

// closeIdle closes an open attempt that has been quiet past its timeout
// at now (register.go's comment) and tells whether it did.
func (t *Table) closeIdle(a *regAttempt, now time.Time) bool {
	if a.challenged {
		if now.Sub(a.started) <= registerAttemptWindow {
			return false
		}
	} else if now.Sub(a.last) < t.cfg.Register.Timeout {
		return false
	}
	t.closeAttempt(a)
	return true
}

// closeAttempt closes an open attempt (its timeout, or the end of the
// capture): Failed when it got no answer or its last was 401, 403 or 404,
// else nothing (calltable.cpp:14288-14292, register.cpp:1854-1861,
// 1350-1351).
func (t *Table) closeAttempt(a *regAttempt) {
	t.dropAttempt(a)
	switch a.lastResp {
	case 0:
		t.stats.RegistersUnanswered++
	case 401, 403, 404:
	default:
		return
	}
	if t.cfg.Register.NoTimeoutFailed {
		return // Registers::add is not called: no row, no count
	}
	st := a.b
	st.failed++
	r := &a.pending
	r.Time = a.started
	r.FailedAttempts = st.failed
	t.report(a, RegFailed)
}

// closeRegisters closes every open attempt (Flush: VoIPmonitor's
// cleanup_registers(closeAll) at the end of a capture or at shutdown).
func (t *Table) closeRegisters() {
	for _, st := range t.regs {
		for len(st.attempts) > 0 {
			t.closeAttempt(st.attempts[0])
		}
	}
}

// regByCallID finds the open attempt a REGISTER response answers: of the
// attempts using that Call-ID, the one whose REGISTER went the other way
// between the same addresses (a REGISTER relayed by a proxy is seen on both
// of its legs with one Call-ID), else the one whose REGISTER was sent last
// (a phone may register several AORs over one Call-ID and one address).
func (t *Table) regByCallID(callID []byte, meta Meta) *regAttempt {
	var last, same *regAttempt
	for _, a := range t.regCall[string(callID)] {
		if last == nil || a.lastReq > last.lastReq {
			last = a
		}
		p := &a.pending
		if p.CallerIP == meta.Dst.Addr() && p.CallerPort == meta.Dst.Port() &&
			p.CalledIP == meta.Src.Addr() && p.CalledPort == meta.Src.Port() &&
			(same == nil || a.lastReq > same.lastReq) {
			same = a
		}
	}
	if same != nil {
		return same
	}
	return last
}

// dropAttempt takes a closed attempt out of its binding and the Call-ID
// index.
func (t *Table) dropAttempt(a *regAttempt) {
	st := a.b
	if i := slices.Index(st.attempts, a); i >= 0 {
		st.attempts = slices.Delete(st.attempts, i, i+1)
		t.regOpen--
	}
	list := t.regCall[a.callID]
	i := slices.Index(list, a)
	if i < 0 {
		return
	}
	if len(list) == 1 {
		delete(t.regCall, a.callID)
		return
	}
	t.regCall[a.callID] = slices.Delete(list, i, i+1)
}

func (t *Table) forgetRegister(key string, st *regState) {
	delete(t.regs, key)
	for len(st.attempts) > 0 {
		t.dropAttempt(st.attempts[0])
	}
}

// report emits a REGISTER summary when the state differs from the last of
// its chain, or the last row of that state is over RegisterRules.StateTimeout
// old (Register::addState, RegisterState::isEq). An OK binding whose
// granted time ran out before this attempt started is reported Expired
// first (Registers::add: whole seconds, no grace).
func (t *Table) report(a *regAttempt, state RegisterState) {
	st := a.b
	r := a.pending
	r.State = state
	at := r.Time
	if st.ok.isOK() && st.ok.row.Expires > 0 && st.ok.to.Unix()+int64(st.ok.row.Expires) < at.Unix() {
		t.expire(st)
	}
	c := &st.ok
	if state == RegFailed {
		c = &st.fail
	}
	if c.state == state && (t.cfg.Register.StateTimeout < 0 || at.Sub(c.from)/time.Second <= t.cfg.Register.StateTimeout/time.Second) {
		c.to = at
		c.row.Expires = r.Expires
		return
	}
	*c = regChain{state: state, from: at, to: at, row: r}
	t.emitRegister(&r)
}

// expire reports an OK binding Expired at the end of its granted time,
// counted from the REGISTER that refreshed it last (Register::expire).
func (t *Table) expire(st *regState) {
	r := st.ok.row
	r.State = RegExpired
	r.Time = st.ok.to.Add(time.Duration(r.Expires) * time.Second)
	r.Expires = 0
	st.ok = regChain{state: RegExpired, from: r.Time, to: r.Time, row: r}
	t.emitRegister(&r)
}

func (t *Table) emitRegister(r *Register) {
	if t.cfg.OnRegister != nil {
		r := *r
		t.due = append(t.due, deferred{reg: &r})
	}
}

func (t *Table) registerFromRequest(m *sip.Message, meta Meta) Register {
	r := Register{
		Time:    meta.Time,
		CallID:  string(m.CallID),
		Expires: -1,
		UA:      string(m.UserAgent()),
	}
	r.CallerIP, r.CallerPort = meta.Src.Addr(), meta.Src.Port()
	r.CalledIP, r.CalledPort = meta.Dst.Addr(), meta.Dst.Port()
	if _, uri, _, err := sip.ParseNameAddr(m.From); err == nil {
		r.FromNum, r.FromDomain = userHost(uri)
	}
	if _, uri, _, err := sip.ParseNameAddr(m.To); err == nil {
		r.ToNum, r.ToDomain = userHost(uri)
	}
	if c := m.Header("Contact"); len(c) > 0 {
		if _, uri, params, err := sip.ParseNameAddr(firstValue(c)); err == nil {
			r.ContactNum, r.ContactDomain = userHost(uri)
			if e := sip.Param(params, "expires"); len(e) > 0 {
				r.Expires = atoi(e)
			}
		}
	}
	if r.Expires < 0 {
		if e := m.Header("Expires"); len(e) > 0 {
			r.Expires = atoi(bytes.TrimSpace(e))
		} else {
			r.Expires = 3600 // RFC 3261 10.2.1.1 default
		}
	}
	for _, h := range []string{"Authorization", "Proxy-Authorization"} {
		if a := m.Header(h); len(a) > 0 {
			r.DigestUsername = digestParam(a, "username")
			r.DigestRealm = digestParam(a, "realm")
			break
		}
	}
	return r
}

// responseExpires reads the granted expiry of our contact from a 2xx, -1 if none.
func responseExpires(m *sip.Message, r *Register) int {
	exp := -1
	m.Headers("Contact", func(v []byte) bool {
		_, uri, params, err := sip.ParseNameAddr(v)
		if err != nil {
			return true
		}
		user, host := userHost(uri)
		if user == r.ContactNum && host == r.ContactDomain {
			if e := sip.Param(params, "expires"); len(e) > 0 {
				exp = atoi(e)
			}
			return false
		}
		return true
	})
	if exp < 0 {
		if e := m.Header("Expires"); len(e) > 0 {
			exp = atoi(bytes.TrimSpace(e))
		}
	}
	return exp
}

// firstValue cuts a comma-joined header at the first top-level comma.
func firstValue(v []byte) []byte {
	inQuote, inAngle := false, false
	for i, c := range v {
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == '<' && !inQuote:
			inAngle = true
		case c == '>' && !inQuote:
			inAngle = false
		case c == ',' && !inQuote && !inAngle:
			return v[:i]
		}
	}
	return v
}

// digestParam extracts name="value" from a Digest credentials header.
func digestParam(h []byte, name string) string {
	i := 0
	for i < len(h) {
		j := bytes.Index(h[i:], []byte(name))
		if j < 0 {
			return ""
		}
		j += i
		k := j + len(name)
		for k < len(h) && h[k] == ' ' {
			k++
		}
		before := j == 0 || h[j-1] == ' ' || h[j-1] == ',' || h[j-1] == '\t'
		if before && k < len(h) && h[k] == '=' {
			v := bytes.TrimSpace(h[k+1:])
			if len(v) > 0 && v[0] == '"' {
				if e := bytes.IndexByte(v[1:], '"'); e >= 0 {
					return string(v[1 : e+1])
				}
				return ""
			}
			if e := bytes.IndexAny(v, ", "); e >= 0 {
				v = v[:e]
			}
			return string(v)
		}
		i = j + len(name)
	}
	return ""
}

// expireRegisters closes attempts past their timeout, reports bindings
// whose granted time ran out without a new attempt (Registers::cleanup(false,
// 30)) and forgets them, and forgets bindings not registered and quiet for
// staleRegister; a binding is forgotten only once it has no open attempt.
func (t *Table) expireRegisters() {
	for key, st := range t.regs {
		t.closeIdleAttempts(st, t.now)
		expired := false
		if st.ok.isOK() && st.ok.row.Expires > 0 &&
			st.ok.to.Unix()+int64(st.ok.row.Expires)+int64(registerExpiryGrace/time.Second) < t.now.Unix() {
			t.expire(st)
			expired = true
		}
		if len(st.attempts) == 0 && (expired || !st.current().isOK() && t.now.Sub(st.seen) > staleRegister) {
			t.forgetRegister(key, st) // expired, or failed or unanswered and quiet since
		}
	}
}

// Registers returns the current state of every registration binding the
// table has seen answered (listregisters).
func (t *Table) Registers() []Register {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Register, 0, len(t.regs))
	for _, st := range t.regs {
		c := st.current()
		if c.state == 0 {
			continue
		}
		out = append(out, c.row)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// responseText is a final response as register_failed keeps its reason:
// code, reason phrase and the Warning header (RFC 3261 20.43), bounded.
func responseText(m *sip.Message) string {
	s := strconv.Itoa(m.StatusCode)
	if len(m.Reason) > 0 {
		s += " " + string(m.Reason)
	}
	if w := m.Header("Warning"); len(w) > 0 {
		s += "; Warning: " + string(w)
	}
	if len(s) > 255 {
		s = s[:255]
	}
	return strings.ToValidUTF8(s, "?")
}
