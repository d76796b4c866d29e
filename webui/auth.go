package webui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/internal/sourcekey"
)

// sessionIDChars are PHP's session id alphabet (session.sid_bits_per_character=5).
const sessionIDChars = "0123456789abcdefghijklmnopqrstuv"

// newSessionID returns 26 random characters, as PHP's session ids look.
func newSessionID() string {
	var b [26]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = sessionIDChars[b[i]&31]
	}
	return string(b[:])
}

type session struct {
	user    string
	stamp   string    // the user's definition when the session began (userStamp)
	created time.Time // absolute lifetime runs from here
	expires time.Time // idle expiry, pushed back by every use
}

// sessions holds bypass_login sessions with a sliding expiry, an absolute
// lifetime (a polling dashboard cannot keep one alive for ever), a cap per
// user and a cap on the whole table. A user's logins past their cap end
// that user's least recently used session, never another user's: only the
// table's cap, a backstop that one user alone never reaches, ends the
// table's least recently used session whoever it belongs to.
type sessions struct {
	mu      sync.Mutex
	m       map[string]*session
	byUser  map[string]map[string]*session // lower-cased user name → that user's sessions by id
	ttl     time.Duration
	maxLife time.Duration
	max     int
	perUser int
}

func newSessions(ttl, maxLife time.Duration, max, perUser int) *sessions {
	return &sessions{m: map[string]*session{}, byUser: map[string]map[string]*session{},
		ttl: ttl, maxLife: maxLife, max: max, perUser: perUser}
}

func (s *sessions) create(user, stamp string, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(user)
	mine := s.byUser[key]
	if len(mine) >= s.perUser {
		s.gcUserLocked(key, now)
		for len(mine) >= s.perUser { // still full: the user's session closest to expiry goes
			s.deleteLocked(lruLocked(mine))
		}
	}
	if len(s.m) >= s.max {
		s.gcLocked(now)
		for len(s.m) >= s.max { // still full: the table's session closest to expiry goes
			s.deleteLocked(lruLocked(s.m))
		}
	}
	id := newSessionID()
	v := &session{user: user, stamp: stamp, created: now, expires: now.Add(s.ttl)}
	s.m[id] = v
	if mine = s.byUser[key]; mine == nil {
		mine = map[string]*session{}
		s.byUser[key] = mine
	}
	mine[id] = v
	return id
}

// lruLocked is the id of the session of m closest to its idle expiry: the
// one used least recently.
func lruLocked(m map[string]*session) string {
	var oldest string
	var t time.Time
	for id, v := range m {
		if oldest == "" || v.expires.Before(t) {
			oldest, t = id, v.expires
		}
	}
	return oldest
}

// deleteLocked ends session id.
func (s *sessions) deleteLocked(id string) {
	v := s.m[id]
	if v == nil {
		return
	}
	delete(s.m, id)
	key := strings.ToLower(v.user)
	if mine := s.byUser[key]; mine != nil {
		delete(mine, id)
		if len(mine) == 0 {
			delete(s.byUser, key)
		}
	}
}

// get returns the session's user and stamp and extends its idle life
// (never past its absolute lifetime).
func (s *sessions) get(id string, now time.Time) (user, stamp string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[id]
	if v == nil {
		return "", "", false
	}
	if now.After(v.expires) || now.Sub(v.created) > s.maxLife {
		s.deleteLocked(id)
		return "", "", false
	}
	v.expires = now.Add(s.ttl)
	return v.user, v.stamp, true
}

// remove ends a session (logout, or its user changed).
func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(id)
}

// userStamp fingerprints what a session was granted on: a session dies when
// its user's secret, rights, sensors or permit/deny change (SIGHUP reload).
func userStamp(u *User) string {
	acl := ""
	if u.ACL != nil {
		acl = fmt.Sprintf("%v", *u.ACL)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%v\x00%s", strings.ToLower(u.Name), u.Secret, u.Rights, u.Sensors, acl))
	return string(sum[:])
}

func (s *sessions) gcLocked(now time.Time) {
	for id, v := range s.m {
		if now.After(v.expires) || now.Sub(v.created) > s.maxLife {
			s.deleteLocked(id)
		}
	}
}

// gcUserLocked ends the user's expired sessions.
func (s *sessions) gcUserLocked(key string, now time.Time) {
	for id, v := range s.byUser[key] {
		if now.After(v.expires) || now.Sub(v.created) > s.maxLife {
			s.deleteLocked(id)
		}
	}
}

// throttle counts failed logins per key (user@source and source, a source
// being an IPv4 address or an IPv6 /64: login) in a window; a key over the limit is refused until its window ends. The table
// holds at most maxKeys keys: when it is full, a new key takes the place
// of the key whose window ended longest ago (it holds nothing any more).
// Only while every key's window still runs does a new key share one entry
// (pool) with the other new ones, so holding many addresses does not turn
// the limit off, and filling the table takes failed logins from as many
// keys within one window. Keys in the table keep their own counts.
type throttle struct {
	mu     sync.Mutex
	m      map[string]*failures
	pool   failures // the new keys' entry while every key's window runs
	max    int
	window time.Duration
	// maxKeys bounds m (maxThrottleKeys; lower in tests).
	maxKeys int
	// byStart rings the keys by the start of their window, oldest next:
	// the window is the same for all, so they end in this order.
	byStart failures
	evicted atomic.Uint64 // keys whose window had ended forgotten for a new one
	pooled  atomic.Uint64 // failed logins counted on pool
}

type failures struct {
	n          int
	first      time.Time
	key        string
	prev, next *failures // on throttle.byStart
}

const maxThrottleKeys = 100000

func newThrottle(max int, window time.Duration) *throttle {
	t := &throttle{m: map[string]*failures{}, max: max, window: window, maxKeys: maxThrottleKeys}
	t.byStart.prev, t.byStart.next = &t.byStart, &t.byStart
	return t
}

// getLocked is k's entry; else nil when k can have one of its own (room,
// or a key whose window ended to forget), else the pool.
func (t *throttle) getLocked(k string, now time.Time) *failures {
	if f := t.m[k]; f != nil {
		return f
	}
	if len(t.m) >= t.maxKeys && !t.ended(t.byStart.next, now) {
		return &t.pool
	}
	return nil
}

// ended reports whether f is a key whose window is over (false for the
// ring's head, an empty ring).
func (t *throttle) ended(f *failures, now time.Time) bool {
	return f != &t.byStart && now.Sub(f.first) > t.window
}

// removeLocked forgets f.
func (t *throttle) removeLocked(f *failures) {
	delete(t.m, f.key)
	f.prev.next, f.next.prev = f.next, f.prev
	f.prev, f.next = nil, nil
}

func (t *throttle) blocked(now time.Time, keys ...string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		f := t.getLocked(k, now)
		if f == nil {
			continue
		}
		if now.Sub(f.first) > t.window {
			if f != &t.pool {
				t.removeLocked(f)
			}
			continue
		}
		if f.n >= t.max {
			return true
		}
	}
	return false
}

func (t *throttle) fail(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pooled := false
	for _, k := range keys {
		f := t.getLocked(k, now)
		switch {
		case f == &t.pool && pooled:
			continue // one failure counts once in the pool
		case f == &t.pool:
			pooled = true
			t.pooled.Add(1)
		case f == nil:
			if len(t.m) >= t.maxKeys {
				t.removeLocked(t.byStart.next) // ended (getLocked)
				t.evicted.Add(1)
			}
			f = &failures{key: k}
			t.m[k] = f
		}
		if f.n == 0 || now.Sub(f.first) > t.window {
			f.n, f.first = 0, now
			if f != &t.pool { // a new window: the newest start
				if f.next != nil {
					f.prev.next, f.next.prev = f.next, f.prev
				}
				f.prev, f.next = t.byStart.prev, &t.byStart
				f.prev.next = f
				t.byStart.prev = f
			}
		}
		f.n++
	}
}

func (t *throttle) reset(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if f := t.m[k]; f != nil {
			t.removeLocked(f)
		}
	}
}

// clientAddr is the request's peer address (RemoteAddr; proxies are not trusted).
func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// secretEqual compares in constant time (lengths hidden by hashing).
func secretEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// login checks name/password from addr. Unknown users cost the same
// comparison as known ones.
func (h *Handler) login(name, pass string, addr netip.Addr) (*User, error) {
	now := h.now()
	// Failures count per (user, source) and per source: a stranger
	// guessing alice's password locks out only his own address, never
	// alice's logins or live listeners from hers. A source is an IPv4
	// address or an IPv6 /64 (sourcekey.Of): new addresses of one /64
	// are the same stranger.
	src := sourcekey.Of(addr).String()
	ukey, akey := "u:"+strings.ToLower(name)+"@"+src, "a:"+src
	if h.throttle.blocked(now, ukey, akey) {
		return nil, ErrThrottled
	}
	u := h.users.Load().get(name)
	secret := "\x00no such user\x00"
	if u != nil {
		secret = u.Secret
	}
	ok := secretEqual(pass, secret) && u != nil && name != ""
	if !ok {
		h.throttle.fail(now, ukey, akey)
		h.log.Warn("web login failed", "user", name, "addr", addr)
		return nil, ErrAuth
	}
	if !u.Allows(addr) {
		h.throttle.fail(now, akey)
		h.log.Warn("web login refused by permit/deny", "user", name, "addr", addr)
		return nil, ErrForbidden
	}
	h.throttle.reset(ukey)
	return u, nil
}

func (d directory) get(name string) *User {
	if name == "" {
		return nil
	}
	return d[strings.ToLower(name)]
}

// anonymous is the user every request acts as when authorization is off.
var anonymous = &User{Name: "api", Rights: AllRights}

// cookieName is PHPSESSID, or PHPSESSID-<prefix> for a GUI under /<prefix>/ (seed 001).
func cookieName(prefix string) string {
	if prefix == "" {
		return "PHPSESSID"
	}
	return "PHPSESSID-" + prefix
}

// sessionUser resolves the session cookie.
func (h *Handler) sessionUser(r *http.Request) (*User, bool) {
	c, err := r.Cookie(cookieName(r.PathValue("prefix")))
	if err != nil || c.Value == "" {
		return nil, false
	}
	name, stamp, ok := h.sessions.get(c.Value, h.now())
	if !ok {
		return nil, false
	}
	u := h.users.Load().get(name)
	if u == nil || userStamp(u) != stamp {
		h.sessions.remove(c.Value) // user removed or changed since login
		return nil, false
	}
	if !u.Allows(clientAddr(r)) {
		return nil, false
	}
	return u, true
}

// Authenticate returns the user of a request: anyone when authorization is
// off, else the session cookie from bypass_login, else user= and
// password= (or pass=) parameters. Other handlers (the websocket audio, the
// player) use it to share one notion of "logged in".
func (h *Handler) Authenticate(r *http.Request) (*User, error) {
	if h.o.DisableAuth {
		return anonymous, nil
	}
	if u, ok := h.sessionUser(r); ok {
		return u, nil
	}
	q := r.URL.Query()
	name := q.Get("user")
	pass := q.Get("password")
	if pass == "" {
		pass = q.Get("pass")
	}
	if name == "" {
		return nil, ErrAuth
	}
	return h.login(name, pass, clientAddr(r))
}
