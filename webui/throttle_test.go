package webui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"pbx-agent/internal/cputime"
)

// loginFrom posts a login for user with pass from the loopback address
// from and returns the status.
func loginFrom(t *testing.T, srvURL, from, user, pass string) int {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	resp, err := c.Post(srvURL+"/php/model/sql.php?module=bypass_login&user="+user+"&pass="+pass, "text/plain", nil)
	if err != nil {
		t.Fatalf("login from %s: %v", from, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestThrottleFullTable: the failed-login table is bounded. Once full of
// live entries it counted nothing new, so an attacker who filled it (two
// keys per address: 50,000 addresses, an IPv6 /64 has 2^64) then guessed a
// password from a new address without limit. Now, while the table is
// full, new keys share one entry (blocked together after MaxBadLogins);
// keys in the table keep their own counts.
func TestThrottleFullTable(t *testing.T) {
	e := newHardEnv(t, testUsers(t), nil)
	e.h.throttle.mu.Lock()
	e.h.throttle.maxKeys = 40
	e.h.throttle.mu.Unlock()

	for i := range 20 { // 20 addresses × (user@address, address) = 40 keys
		if st := loginFrom(t, e.srv.URL, fmt.Sprintf("127.0.4.%d", i+1), "reader", "guess"); st != http.StatusUnauthorized {
			t.Fatalf("filling address %d: status %d", i, st)
		}
	}
	refused := 0
	for i := range 20 {
		switch st := loginFrom(t, e.srv.URL, "127.0.5.1", "reader", fmt.Sprint("guess", i)); st {
		case http.StatusTooManyRequests:
			refused++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("guess %d: status %d", i, st)
		}
	}
	if want := 20 - e.h.o.MaxBadLogins; refused != want {
		t.Errorf("new address with the table full: %d of 20 bad logins throttled, want %d", refused, want)
	}
	// An address already in the table keeps its own count.
	if st := loginFrom(t, e.srv.URL, "127.0.4.1", "reader", "again"); st != http.StatusUnauthorized {
		t.Errorf("known address: status %d, want 401 (its own count)", st)
	}
}

// TestThrottleFullTableEnded: while the failed-login table was full, every
// new key shared the pooled entry, even when the keys filling it were
// past their window (they hold nothing then): a full table was only
// cleared by a failed login more than a second after the last clearing,
// and a login check cleared nothing, so a legitimate user logging in from
// a new address was throttled with the attackers whose failures had
// blocked the pool. Now a new key takes the place of the key whose window
// ended longest ago; the pool is only for a table whose every key's
// window runs. A forgotten address coming back starts afresh. A
// successful login leaves nothing in the table.
func TestThrottleFullTableEnded(t *testing.T) {
	e := newHardEnv(t, testUsers(t), nil)
	th := e.h.throttle
	th.mu.Lock()
	th.maxKeys = 40
	th.mu.Unlock()
	window, max := e.h.o.BadLoginWindow, e.h.o.MaxBadLogins

	for i := range 20 {
		if st := loginFrom(t, e.srv.URL, fmt.Sprintf("127.0.3.%d", i+1), "reader", "readpw"); st != http.StatusOK {
			t.Fatalf("login from address %d: status %d", i, st)
		}
	}
	if len(th.m) != 0 {
		t.Fatalf("successful logins left %d keys", len(th.m))
	}
	// The table full of keys with a failure each, in their window: new
	// addresses share the pool, and their failures throttle it.
	for i := range 20 {
		if st := loginFrom(t, e.srv.URL, fmt.Sprintf("127.0.4.%d", i+1), "reader", "guess"); st != http.StatusUnauthorized {
			t.Fatalf("filling address %d: status %d", i, st)
		}
	}
	e.advance(time.Minute)
	for i := range max {
		if st := loginFrom(t, e.srv.URL, "127.0.5.1", "reader", fmt.Sprint("guess", i)); st != http.StatusUnauthorized {
			t.Fatalf("new address's guess %d: status %d", i, st)
		}
	}
	if st := loginFrom(t, e.srv.URL, "127.0.5.2", "reader", "readpw"); st != http.StatusTooManyRequests {
		t.Fatalf("another new address: status %d, want 429 (the pool throttled)", st)
	}
	// The fillers' windows end; the pool's runs 30 s more.
	e.advance(window - 30*time.Second)
	if st := loginFrom(t, e.srv.URL, "127.0.6.1", "reader", "readpw"); st != http.StatusOK {
		t.Fatalf("legitimate login from a new address with the table full of ended keys: status %d, want 200 (429: it shared the throttled pool)", st)
	}
	for i := range max {
		if st := loginFrom(t, e.srv.URL, "127.0.6.2", "reader", fmt.Sprint("guess", i)); st != http.StatusUnauthorized {
			t.Fatalf("new address's own guess %d: status %d, want 401", i, st)
		}
	}
	if st := loginFrom(t, e.srv.URL, "127.0.6.2", "reader", "readpw"); st != http.StatusTooManyRequests {
		t.Errorf("new address after %d guesses of its own: status %d, want 429", max, st)
	}
	// 127.0.6.2's two keys took the place of 127.0.4.1's, the oldest.
	if st := loginFrom(t, e.srv.URL, "127.0.4.1", "reader", "guess"); st != http.StatusUnauthorized {
		t.Errorf("forgotten address back: status %d, want 401", st)
	}
	th.mu.Lock()
	f := th.m["a:127.0.4.1"]
	th.mu.Unlock()
	if f == nil || f.n != 1 {
		t.Errorf("forgotten address back: entry %+v, want its own with 1 failure", f)
	}
	if got := th.evicted.Load(); got != 4 {
		t.Errorf("evicted %d, want 4 (two keys each of 127.0.6.2 and 127.0.4.1 back)", got)
	}
	if got := th.pooled.Load(); got != uint64(max) {
		t.Errorf("pooled %d, want %d", got, max)
	}
}

// TestThrottleRandomOps drives a small table with random failed and
// successful logins and clock steps, and checks that a new key is pooled
// only when every key's window in the full table runs, that only a key
// whose window ended is forgotten, and that the keys are ringed in the
// order their windows started.
func TestThrottleRandomOps(t *testing.T) {
	const window = time.Minute
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(3, window)
	th.maxKeys = 8
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 50000 {
		k := fmt.Sprint("k", rng.IntN(24))
		before := make(map[string]failures, len(th.m))
		running := 0
		for key, f := range th.m {
			before[key] = *f
			if now.Sub(f.first) <= window {
				running++
			}
		}
		switch op := rng.IntN(10); {
		case op < 6:
			th.fail(now, k)
			_, has := th.m[k]
			if _, had := before[k]; !had && !has && (len(before) < th.maxKeys || running < len(before)) {
				t.Fatalf("step %d: new key pooled with %d of %d keys, %d in their window", step, len(before), th.maxKeys, running)
			}
		case op < 7:
			th.reset(k)
		case op < 8:
			th.blocked(now, k)
		default:
			now = now.Add(time.Duration(rng.Int64N(int64(window / 3))))
			continue
		}
		for key, f := range before {
			if _, kept := th.m[key]; !kept && key != k && now.Sub(f.first) <= window {
				t.Fatalf("step %d: forgot %s with its window running", step, key)
			}
		}
		if len(th.m) > th.maxKeys {
			t.Fatalf("step %d: %d keys, bound %d", step, len(th.m), th.maxKeys)
		}
		n := 0
		for f := th.byStart.next; f != &th.byStart; f = f.next {
			if f.next.prev != f || th.m[f.key] != f {
				t.Fatalf("step %d: ring broken at %s", step, f.key)
			}
			if f.next != &th.byStart && f.next.first.Before(f.first) {
				t.Fatalf("step %d: ring out of window order at %s", step, f.key)
			}
			n++
		}
		if n != len(th.m) {
			t.Fatalf("step %d: %d keys ringed, %d in the table", step, n, len(th.m))
		}
	}
	if th.evicted.Load() == 0 || th.pooled.Load() == 0 {
		t.Errorf("evicted %d, pooled %d: the random walk missed a case", th.evicted.Load(), th.pooled.Load())
	}
}

// benchThrottleNewAddr measures a failed login from a new address (its two
// keys) on a full table (maxThrottleKeys) of keys with one failure each.
// The clock moves 1 ms per login (a flood of 1,000 new addresses a
// second). ended: the filling keys' window is over.
func benchThrottleNewAddr(b *testing.B, ended bool) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(5, 24*time.Hour)
	n := 0
	login := func() {
		n++
		a := "10." + strconv.Itoa(n>>16) + "." + strconv.Itoa(n>>8&255) + "." + strconv.Itoa(n&255)
		th.fail(now, "u:reader@"+a, "a:"+a)
		now = now.Add(time.Millisecond)
	}
	for range maxThrottleKeys / 2 {
		login()
	}
	if ended {
		now = now.Add(25 * time.Hour)
	}
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		login()
	}
	cputime.PerOp(b, cpu0)
}

// BenchmarkThrottleNewAddrRunning: every key's window runs (the pool).
func BenchmarkThrottleNewAddrRunning(b *testing.B) { benchThrottleNewAddr(b, false) }

// BenchmarkThrottleNewAddrEnded: every key's window is over.
func BenchmarkThrottleNewAddrEnded(b *testing.B) { benchThrottleNewAddr(b, true) }

// TestThrottleIPv6Prefix: failed logins counted per address, so an
// attacker holding an IPv6 /64 (2^64 addresses) guessed from a fresh
// address each time without limit and filled the table. Now the
// addresses of one /64 are one source: MaxBadLogins failures from as many
// of its addresses throttle every address of it, for the user and for any
// user; another /64, and an IPv4 address, is another source; an
// IPv4-mapped IPv6 address is its IPv4 address.
func TestThrottleIPv6Prefix(t *testing.T) {
	tests := []struct {
		name     string
		fail     []string // one failed login of reader each
		user     string   // then a login of user (right password)
		from     string
		want     error
		wantKeys int // keys in the table after the failures
	}{
		{"one /64 throttled together", v6Addrs("2001:db8:1:2", 5), "reader", "2001:db8:1:2:ffff::1", ErrThrottled, 2},
		{"one /64 throttled for any user", v6Addrs("2001:db8:1:2", 5), "admin", "2001:db8:1:2::77", ErrThrottled, 2},
		{"10,000 addresses of one /64: two keys", v6Addrs("2001:db8:1:2", 10000), "reader", "2001:db8:1:2::1", ErrThrottled, 2},
		{"fewer failures: not throttled", v6Addrs("2001:db8:1:2", 4), "reader", "2001:db8:1:2::1", nil, 2},
		{"the next /64 unaffected", v6Addrs("2001:db8:1:2", 5), "reader", "2001:db8:1:3::1", nil, 2},
		{"ipv4 addresses apart", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"}, "reader", "192.0.2.6", nil, 10},
		{"ipv4-mapped is ipv4", []string{"::ffff:192.0.2.1", "::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1", "::ffff:192.0.2.1"}, "reader", "192.0.2.1", ErrThrottled, 2},
		{"ipv4 throttles ipv4-mapped", []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1"}, "reader", "::ffff:192.0.2.1", ErrThrottled, 2},
		{"ipv4-mapped neighbour apart", []string{"::ffff:192.0.2.1", "::ffff:192.0.2.1", "::ffff:192.0.2.1", "::ffff:192.0.2.1", "::ffff:192.0.2.1"}, "reader", "::ffff:192.0.2.2", nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHardEnv(t, testUsers(t), nil)
			if e.h.o.MaxBadLogins != 5 {
				t.Fatalf("MaxBadLogins %d: the cases assume 5", e.h.o.MaxBadLogins)
			}
			for _, a := range tt.fail {
				if _, err := e.h.login("reader", "guess", netip.MustParseAddr(a)); !errors.Is(err, ErrAuth) && !errors.Is(err, ErrThrottled) {
					t.Fatalf("bad login from %s: %v", a, err)
				}
			}
			if n := len(e.h.throttle.m); n != tt.wantKeys || e.h.throttle.pooled.Load() != 0 {
				t.Errorf("%d keys in the table (pooled %d), want %d", n, e.h.throttle.pooled.Load(), tt.wantKeys)
			}
			pass := map[string]string{"reader": "readpw", "admin": "adminpw"}[tt.user]
			if _, err := e.h.login(tt.user, pass, netip.MustParseAddr(tt.from)); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("login of %s from %s: %v, want %v", tt.user, tt.from, err, tt.want)
			}
		})
	}
}

// v6Addrs is n addresses of prefix::/64 (prefix: its first four groups).
func v6Addrs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s:%x:%x::%x", prefix, i>>16, i&0xffff, i+1)
	}
	return out
}
