package call

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/sip"
)

// registerExpiryGrace is how long past its expiry a binding waits for a
// late refresh before it is reported Expired.
const registerExpiryGrace = 30 * time.Second

// regState follows one registration binding (AOR + contact): the pending
// REGISTER transaction and the last state reported.
type regState struct {
	pending     Register // the REGISTER in flight, filled from the request
	challenged  bool     // a 401/407 was seen for the pending REGISTER
	hasAuth     bool     // the pending REGISTER carried credentials
	lastState   RegisterState
	lastExpires int
	expiresAt   time.Time
	failed      int // failed attempts since the last success
	callID      string
	started     time.Time // first REGISTER of the attempt (a challenged one included)
	lastReq     uint64    // order of the binding's last REGISTER (Table.regSeq)
	seen        time.Time // last REGISTER or answer of the binding
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
		if !st.challenged || st.callID != r.CallID {
			// A new attempt; the retry with credentials after a 401/407
			// belongs to the attempt it answers (VoIPmonitor's created_at).
			st.started = meta.Time
		}
		t.regSeq++
		st.lastReq = t.regSeq
		if st.callID != r.CallID && t.regCall[st.callID] == st {
			delete(t.regCall, st.callID) // a binding answers to its last Call-ID only
		}
		st.callID = r.CallID
		t.regCall[r.CallID] = st // the latest REGISTER of a Call-ID wins
		st.pending = r
		st.hasAuth = len(m.Header("Authorization")) > 0 || len(m.Header("Proxy-Authorization")) > 0
		st.challenged = false
		return
	}
	st := t.regByCallID(m.CallID)
	if st == nil {
		return
	}
	st.seen = meta.Time
	code := m.StatusCode
	r := &st.pending
	r.LastResponseNum = code
	if ua := m.UserAgent(); r.UA == "" && len(ua) > 0 {
		r.UA = string(ua)
	}
	if code >= 200 {
		r.LastResponse = responseText(m)
	}
	switch {
	case code < 200:
		return
	case code < 300:
		if exp := responseExpires(m, r); exp >= 0 {
			r.Expires = exp
		}
		state := RegOK
		if r.Expires == 0 {
			state = RegUnregister
		}
		r.Time = st.started
		r.FailedAttempts = st.failed
		st.failed = 0
		st.expiresAt = meta.Time.Add(time.Duration(r.Expires) * time.Second)
		t.report(st, state)
	case (code == 401 || code == 407) && !st.hasAuth && !st.challenged:
		st.challenged = true // the normal digest challenge, not a failure
	default:
		st.failed++
		r.Time = st.started
		r.FailedAttempts = st.failed
		t.report(st, RegFailed)
	}
}

// regByCallID finds the binding a REGISTER response answers: of the
// bindings using that Call-ID (a phone may register several AORs over one
// Call-ID), the one whose REGISTER was sent last.
func (t *Table) regByCallID(callID []byte) *regState {
	if st := t.regCall[string(callID)]; st != nil && st.callID == string(callID) {
		return st
	}
	return nil
}

func (t *Table) forgetRegister(key string, st *regState) {
	delete(t.regs, key)
	if t.regCall[st.callID] == st {
		delete(t.regCall, st.callID)
	}
}

// report emits a REGISTER summary when the binding's state changes.
func (t *Table) report(st *regState, state RegisterState) {
	r := st.pending
	r.State = state
	if state == st.lastState && r.Expires == st.lastExpires && state != RegFailed {
		return
	}
	st.lastState, st.lastExpires = state, r.Expires
	if t.cfg.OnRegister != nil {
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

// expireRegisters reports bindings whose granted time ran out without refresh.
func (t *Table) expireRegisters() {
	for key, st := range t.regs {
		// A refresh may come a little after the granted time (clock skew,
		// retransmission): only a binding left alone past the grace expires.
		if st.lastState == RegOK && !st.expiresAt.IsZero() && t.now.Sub(st.expiresAt) > registerExpiryGrace {
			st.pending.Time = st.expiresAt
			t.report(st, RegExpired)
			t.forgetRegister(key, st)
			continue
		}
		if st.lastState != RegOK && t.now.Sub(st.seen) > staleRegister {
			t.forgetRegister(key, st) // failed or unanswered, and quiet since
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
		if st.lastState == 0 {
			continue
		}
		r := st.pending
		r.State = st.lastState
		out = append(out, r)
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
