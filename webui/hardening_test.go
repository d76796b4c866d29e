package webui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/call/calltest"
	"pbx-agent/sniffer/codec"
)

// hardEnv is a handler without database: one local call (0x7f0e4c3c2680 on
// sensor 1) and a settable clock.
type hardEnv struct {
	h     *Handler
	srv   *httptest.Server
	calls *calltest.Table
	mu    sync.Mutex
	now   time.Time
}

func newHardEnv(t *testing.T, users []User, mod func(*Options)) *hardEnv {
	t.Helper()
	e := &hardEnv{now: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	e.calls = &calltest.Table{Calls: []call.CDR{{CallID: "one@test", CallRef: 0x7f0e4c3c2680,
		CallDate: e.now.Add(-10 * time.Second), Caller: "1001", Called: "1002", LastSIPResponseNum: 200}}}
	o := Options{Users: users, Calls: e.calls, SensorID: 1, Logger: testLogger(),
		Now: func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }}
	if mod != nil {
		mod(&o)
	}
	e.h = New(o)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *hardEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func (e *hardEnv) do(t *testing.T, method, path, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	code, b, h := send(t, e.srv, method, path, body, hdr...)
	return code, string(b), h
}

func (e *hardEnv) login(t *testing.T, user, pass string) string {
	t.Helper()
	st, b, hdr := e.do(t, "POST", "/php/model/sql.php?module=bypass_login&user="+url.QueryEscape(user)+"&pass="+url.QueryEscape(pass), "")
	if st != 200 {
		t.Fatalf("login %s: %d %s", user, st, b)
	}
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == "PHPSESSID" {
			return "PHPSESSID=" + c.Value
		}
	}
	t.Fatalf("login %s: no cookie", user)
	return ""
}

const pauseParams = `{"command":"pausecall","callRef":"0x7f0e4c3c2680"}`

func pauseGET() string {
	return "/php/api.php?task=handleActiveCall&params=" + url.QueryEscape(pauseParams)
}

// TestCSRFPause pins issue 17 item 4: a top-level cross-site GET (what a
// link or a redirect makes a browser send, with the SameSite=Lax session
// cookie) or a cross-origin POST no longer pauses a call; the dashboard's
// same-origin POST and scripts passing credentials still do.
func TestCSRFPause(t *testing.T) {
	users := []User{{Name: "op", Secret: "pw", Rights: AllRights}}
	e := newHardEnv(t, users, nil)
	cookie := e.login(t, "op", "pw")
	body := `{"task":"handleActiveCall","params":` + pauseParams + `}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		want   int
	}{
		{"cookie GET (cross-site navigation)", "GET", pauseGET(), "", []string{"Cookie", cookie, "Sec-Fetch-Site", "cross-site"}, http.StatusMethodNotAllowed},
		{"cookie GET without fetch metadata", "GET", pauseGET(), "", []string{"Cookie", cookie}, http.StatusMethodNotAllowed},
		{"cookie POST from another origin", "POST", "/php/api.php", body, []string{"Cookie", cookie, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"cookie POST from another origin, old browser", "POST", "/php/api.php", body, []string{"Cookie", cookie, "Origin", "https://evil.example"}, http.StatusForbidden},
		{"cookie POST same origin (dashboard)", "POST", "/php/api.php", body, []string{"Cookie", cookie, "Sec-Fetch-Site", "same-origin"}, http.StatusOK},
		{"script GET with credentials", "GET", pauseGET() + "&user=op&password=pw", "", nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.calls.ForgetPauses()
			code, b, _ := e.do(t, tt.method, tt.path, tt.body, tt.hdr...)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, b)
			}
			if paused := e.calls.Paused(0x7f0e4c3c2680); paused != (tt.want == http.StatusOK) {
				t.Errorf("call paused = %v", paused)
			}
		})
	}
	// With authorization off there is no cookie to rely on: GET never pauses.
	open := newHardEnv(t, nil, func(o *Options) { o.DisableAuth = true })
	if code, b, _ := open.do(t, "GET", pauseGET()+"&user=x&password=y", ""); code != http.StatusMethodNotAllowed || open.calls.Paused(0x7f0e4c3c2680) {
		t.Errorf("auth off, GET: status %d (%s), paused %v", code, b, open.calls.Paused(0x7f0e4c3c2680))
	}
}

// TestDNSRebinding pins issue 17 item 5: with api_disable_auth a request
// whose Host is a foreign name (a rebinding domain) is refused on every
// route — API, pause, websocket — while IP literals, localhost and
// http_allowed_hosts names pass.
func TestDNSRebinding(t *testing.T) {
	e := newHardEnv(t, nil, func(o *Options) { o.DisableAuth = true; o.AllowedHosts = []string{"pbx.example.com"} })
	e.h.Handle("GET /ws/listen", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	list := "/php/api.php?task=listActiveCalls&params=%7B%7D"
	tests := []struct {
		name, method, path, body, host string
		want                           int
	}{
		{"list via rebinding name", "GET", list, "", "attacker.example:8080", http.StatusMisdirectedRequest},
		{"pause via rebinding name", "POST", "/php/api.php", `{"task":"handleActiveCall","params":` + pauseParams + `}`, "attacker.example:8080", http.StatusMisdirectedRequest},
		{"websocket via rebinding name", "GET", "/ws/listen?callref=0x7f0e4c3c2680", "", "attacker.example:8080", http.StatusMisdirectedRequest},
		{"IPv4 literal", "GET", list, "", "127.0.0.1:8080", http.StatusOK},
		{"IPv6 literal", "GET", list, "", "[::1]:8080", http.StatusOK},
		{"localhost", "GET", list, "", "localhost:8080", http.StatusOK},
		{"configured name", "GET", list, "", "PBX.example.com", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b, _ := e.do(t, tt.method, tt.path, tt.body, "Host", tt.host)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, b)
			}
		})
	}
	if e.calls.Paused(0x7f0e4c3c2680) {
		t.Error("a rebinding request paused the call")
	}
}

// TestEnableSensors pins issue 17 item 7: users_file's enable_sensors is
// read and applies to this agent's own calls (listActiveCalls,
// handleActiveCall) as to the others'; an unknown users_file key is an error.
func TestEnableSensors(t *testing.T) {
	users, err := loadUsers(t, "[two]\nsecret = pw\nread = all\nwrite = all\nenable_sensors = 2\n\n[both]\nsecret = pw\nread = call\nwrite = call\nenable_sensors = 1, 2\n")
	if err != nil {
		t.Fatal(err)
	}
	e := newHardEnv(t, users, nil)
	post := func(user, task, params string) (int, string) {
		code, b, _ := e.do(t, "POST", "/php/api.php", `{"task":"`+task+`","user":"`+user+`","password":"pw","params":`+params+`}`)
		return code, b
	}
	if code, b := post("two", "listActiveCalls", `{}`); code != 200 || strings.Contains(b, "0x7f0e4c3c2680") {
		t.Errorf("user limited to sensor 2 lists sensor 1's calls: %d %s", code, b)
	}
	if code, b := post("two", "listActiveCalls", `{"sensorId":"1"}`); code != http.StatusForbidden {
		t.Errorf("user limited to sensor 2 asks sensor 1: %d %s, want 403", code, b)
	}
	if code, b := post("two", "handleActiveCall", pauseParams); code != http.StatusForbidden || e.calls.Paused(0x7f0e4c3c2680) {
		t.Errorf("user limited to sensor 2 pauses sensor 1's call: %d %s", code, b)
	}
	if code, b := post("both", "listActiveCalls", `{}`); code != 200 || !strings.Contains(b, "0x7f0e4c3c2680") {
		t.Errorf("user allowed sensor 1 does not see its call: %d %s", code, b)
	}
	if code, b := post("both", "handleActiveCall", pauseParams); code != 200 {
		t.Errorf("user allowed sensor 1 cannot pause: %d %s", code, b)
	}
	for _, bad := range []string{"[x]\nsecret = pw\nenable_sensor = 2\n", "[x]\nsecret = pw\nenable_sensors = two\n"} {
		if _, err := loadUsers(t, bad); err == nil || !strings.Contains(err.Error(), "users.conf:3") {
			t.Errorf("users_file %q: err = %v, want an error at users.conf:3", bad, err)
		}
	}
}

// TestLockoutPerSource pins issue 17 item 8: failed logins from one address
// lock out that address (for that user), not the user everywhere: alice
// still logs in, and her listener's periodic re-authentication still
// passes, from her own address.
func TestLockoutPerSource(t *testing.T) {
	users := []User{{Name: "alice", Secret: "pw", Rights: AllRights}}
	e := newHardEnv(t, users, nil)
	attacker, alice := netip.MustParseAddr("192.0.2.66"), netip.MustParseAddr("127.0.0.1")
	for range 20 {
		if _, err := e.h.login("alice", "guess", attacker); err == nil {
			t.Fatal("a wrong password was accepted")
		}
	}
	if _, err := e.h.login("alice", "pw", attacker); err != ErrThrottled {
		t.Errorf("attacker's address after 20 failures: err = %v, want ErrThrottled", err)
	}
	if _, err := e.h.login("alice", "pw", alice); err != nil {
		t.Errorf("alice from her own address: %v", err)
	}
	r := httptest.NewRequest("GET", "/ws/listen?user=alice&password=pw", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	if _, err := e.h.Authenticate(r); err != nil {
		t.Errorf("listener re-check after failures elsewhere: %v", err)
	}
}

// TestSessionLifecycle pins issue 17 item 12: logout ends a session, a
// change of the user's secret (SIGHUP reload) ends it, and a session used
// every second still dies at its absolute lifetime.
func TestSessionLifecycle(t *testing.T) {
	users := []User{{Name: "alice", Secret: "pw", Rights: AllRights}}
	e := newHardEnv(t, users, func(o *Options) { o.SessionMaxLife = time.Hour })
	list := "/php/api.php?task=listActiveCalls&params=%7B%7D"
	ok := func(cookie string) bool {
		code, _, _ := e.do(t, "GET", list, "", "Cookie", cookie)
		return code == 200
	}
	c := e.login(t, "alice", "pw")
	if !ok(c) {
		t.Fatal("fresh session refused")
	}
	if code, b, _ := e.do(t, "POST", "/php/model/sql.php?module=logout", "", "Cookie", c); code != 200 {
		t.Fatalf("logout: %d %s", code, b)
	}
	if ok(c) {
		t.Error("session still works after logout")
	}

	c = e.login(t, "alice", "pw")
	e.h.SetUsers([]User{{Name: "alice", Secret: "new", Rights: AllRights}})
	if ok(c) {
		t.Error("session survives a change of the user's secret")
	}
	e.h.SetUsers(users)

	c = e.login(t, "alice", "pw")
	for i := 0; i < 59; i++ { // a dashboard polling every minute for 59 minutes
		e.advance(time.Minute)
		if !ok(c) {
			t.Fatalf("session refused after %d min of use", i+1)
		}
	}
	e.advance(2 * time.Minute)
	if ok(c) {
		t.Error("session outlives its absolute lifetime")
	}
}

// TestShareURLHost pins issue 17 item 13: share links come from
// http_public_url, else http_bind, else only an allowed Host header — never
// a name a client put in Host.
func TestShareURLHost(t *testing.T) {
	tests := []struct {
		name, public, bind, host string
		want                     string // "" = error
	}{
		{"public url", "https://pbx.example.com", "0.0.0.0:8080", "evil.example", "https://pbx.example.com"},
		{"bound address", "", "192.0.2.5:8080", "evil.example", "http://192.0.2.5:8080"},
		{"all addresses, IP Host", "", "0.0.0.0:8080", "192.0.2.5:8080", "http://192.0.2.5:8080"},
		{"all addresses, foreign Host", "", "0.0.0.0:8080", "evil.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{PublicURL: tt.public, BindAddr: tt.bind})
			r := httptest.NewRequest("GET", "/php/api.php", nil)
			r.Host = tt.host
			got, err := h.publicBase(r)
			if (err != nil) != (tt.want == "") || got != tt.want {
				t.Errorf("publicBase = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// bigSpool serves every call's AUDIO file as a WAV of wavBytes of data,
// generated as it is read (nothing held), and no Stat: like a remote spool.
type bigSpool struct{ data int64 }

func (b bigSpool) Open(_ context.Context, f SpoolFile) (io.ReadCloser, error) {
	if f.Kind != KindAudio || f.Ext == "ogg" {
		return nil, fs.ErrNotExist
	}
	hdr := audio.AppendWAVHeader(nil, 8000, 2, uint32(b.data))
	return io.NopCloser(io.MultiReader(bytes.NewReader(hdr), io.LimitReader(zeros{}, b.data))), nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// discardResponse is a ResponseWriter that keeps nothing but the size.
type discardResponse struct {
	h      http.Header
	status int
	n      int64
}

func (d *discardResponse) Header() http.Header { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = 200
	}
	d.n += int64(len(p))
	return len(p), nil
}
func (d *discardResponse) WriteHeader(s int) { d.status = s }

// TestVoiceRecordingStreams pins issue 17 item 17: getVoiceRecording
// streams the recording (plain, cut after connect, and zipped legs): the
// bytes allocated while serving a 64 MiB WAV stay far below its size
// (it was read whole into memory, up to 512 MiB per leg).
func TestVoiceRecordingStreams(t *testing.T) {
	const size = 64 << 20
	sp := &bigSpool{}
	e := newEnv(t, func(o *Options) { o.Spool = sp })
	for _, tc := range []struct {
		name, params string
		size         int64
	}{
		{"wav", `{"cdrId":1}`, size},
		{"after connect", `{"cdrId":1,"saveaudio_afterconnect":"yes"}`, size},
		{"zip of the legs", `{"callId":"f431e3956bf2ebd6","cidInterval":10,"zip":true}`, size},
		// Encoding costs CPU: 8 MiB (4.4 minutes) shows the WAV is not held.
		{"ogg encoded from the WAV", `{"cdrId":1,"ogg":true}`, 8 << 20},
	} {
		if strings.Contains(tc.params, "ogg") && !codec.Built {
			continue
		}
		sp.data = tc.size
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/php/api.php?task=getVoiceRecording&user=admin&password=adminpw&params="+url.QueryEscape(tc.params), nil)
			w := &discardResponse{h: http.Header{}}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			e.h.ServeHTTP(w, r)
			runtime.ReadMemStats(&after)
			if w.status != 200 || w.n < 32<<10 { // zeros zip to ~1/500, Ogg to ~1/140
				t.Fatalf("status %d, %d bytes", w.status, w.n)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("FIGURE %s: %d bytes sent, %d bytes allocated", tc.name, w.n, alloc)
			if alloc > 8<<20 || alloc > uint64(tc.size)/8 {
				t.Errorf("%d bytes allocated to serve %d: the recording is held in memory", alloc, w.n)
			}
		})
	}
}

// TestSessionsPerUser: user bob logging in 10,000 times (a millisecond
// apart) ends only his own sessions: alice's, older than all of them,
// still works (it was the table's least recently used, ended at bob's
// 10,000th login); bob holds MaxUserSessions (32), the one he keeps
// using and his 31 newest (his least recently used go first). With more
// users than the table holds, the table's cap still bounds it.
func TestSessionsPerUser(t *testing.T) {
	users := []User{{Name: "alice", Secret: "apw", Rights: AllRights}, {Name: "bob", Secret: "bpw", Rights: AllRights}}
	e := newHardEnv(t, users, nil)
	list := "/php/api.php?task=listActiveCalls&params=%7B%7D"
	ok := func(cookie string) bool {
		code, _, _ := e.do(t, "GET", list, "", "Cookie", cookie)
		return code == 200
	}
	alice := e.login(t, "alice", "apw")
	bobUsed := e.login(t, "bob", "bpw")
	const logins = 10000
	var recent [33]string // bob's last 33 logins, the oldest at i%33
	for i := range logins {
		e.advance(time.Millisecond)
		recent[i%33] = e.login(t, "bob", "bpw")
		if i%16 == 0 && !ok(bobUsed) {
			t.Fatalf("bob's session in use ended after %d logins of his", i+1)
		}
	}
	if !ok(alice) {
		t.Errorf("alice's session ended by bob's %d logins", logins)
	}
	// bob holds 32: the one in use and his 31 newest.
	for k := range 33 {
		c := recent[(logins+k)%33]
		if want := k >= 2; ok(c) != want {
			t.Errorf("bob's login %d of %d: session works %v, want %v", logins-33+k+1, logins, !want, want)
		}
	}
	s := e.h.sessions
	s.mu.Lock()
	total := len(s.m)
	s.mu.Unlock()
	if total != 33 {
		t.Errorf("after %d logins of bob's: %d sessions in all, want 33 (alice's and bob's 32)", logins, total)
	}

	// The table's own cap: 10 users × 8 logins into 50 places.
	users = nil
	for i := range 10 {
		users = append(users, User{Name: fmt.Sprintf("u%d", i), Secret: "pw", Rights: AllRights})
	}
	e = newHardEnv(t, users, func(o *Options) { o.MaxSessions, o.MaxUserSessions = 50, 8 })
	var last string
	for i := range 80 {
		e.advance(time.Millisecond)
		last = e.login(t, users[i%10].Name, "pw")
	}
	s = e.h.sessions
	s.mu.Lock()
	total, indexed := len(s.m), 0
	for _, m := range s.byUser {
		indexed += len(m)
	}
	s.mu.Unlock()
	if total != 50 || indexed != total {
		t.Errorf("80 logins of 10 users into 50 places: %d sessions, %d indexed by user; want 50 and 50", total, indexed)
	}
	if !ok(last) {
		t.Error("the newest session does not work")
	}
}
