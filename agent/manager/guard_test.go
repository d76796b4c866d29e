package manager

import (
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"pbx-agent/agent/manager/wire"
)

// dialFrom connects to addr from the loopback address from (127.0.0.0/8
// is all this machine's), for tests that need many sources.
func dialFrom(t testing.TB, from, addr string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, nil
}

// badAES sends one request that does not decrypt from source from and
// returns the reply ("" when the connection was closed unread).
func badAES(t testing.TB, from, addr string) string {
	t.Helper()
	c, err := dialFrom(t, from, addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("aes-128-cbc:0123456789abcdef:sea")); err != nil {
		return ""
	}
	var b [256]byte
	n, _ := c.Read(b[:])
	return string(b[:n])
}

// TestGuardFullTable: the per-source table (failed AES requests, open
// connections) is bounded. An attacker with as many addresses as the
// table holds (an IPv6 /64 has 2^64) filled it with one failed request
// from each, and every source after that was neither counted nor blocked:
// unlimited guesses and connections. Now, while the table is full, new
// sources share one entry: their failures block them together and their
// connections share one source's cap; sources in the table keep theirs.
func TestGuardFullTable(t *testing.T) {
	const table = 64
	ts := startServer(t, func(c *Config) {
		c.Keys = wire.StaticKey(testKey(t))
		c.FirstByteTimeout = 3 * time.Second
	})
	ts.s.guard.mu.Lock()
	ts.s.guard.maxSources = table
	ts.s.guard.mu.Unlock()

	for i := range table {
		if got := badAES(t, fmt.Sprintf("127.0.1.%d", i+1), ts.addr); got == "" {
			t.Fatalf("filling source %d: closed unread", i)
		}
	}
	// A new source: blocked after AESMaxFailures like any other.
	answered := 0
	for range 20 {
		if badAES(t, "127.0.2.1", ts.addr) != "" {
			answered++
		}
	}
	if answered != DefaultAESMaxFailures {
		t.Errorf("new source with the table full: %d of 20 failed requests answered, want %d", answered, DefaultAESMaxFailures)
	}
	// Another new source: its connections are capped too.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	open := 0
	for range 3 * DefaultMaxConnsPerSource {
		c, err := dialFrom(t, "127.0.3.1", ts.addr)
		if err != nil {
			continue
		}
		held = append(held, c)
	}
	time.Sleep(200 * time.Millisecond)
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				open++ // still held by the server
			}
		}
	}
	if open > DefaultMaxConnsPerSource {
		t.Errorf("new source with the table full: %d idle connections held, want at most %d", open, DefaultMaxConnsPerSource)
	}
	// A source already in the table still gets its own count.
	if got := badAES(t, "127.0.1.1", ts.addr); got == "" {
		t.Error("a known source was blocked by the new sources' failures")
	}
}

// testClock is a settable clock for the guard (read under its lock, set
// by the test).
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// goodAES sends getversion encrypted with the test key from source from
// and returns the decrypted reply ("" when the connection was closed
// unread).
func goodAES(t testing.TB, from, addr string) string {
	t.Helper()
	c, err := dialFrom(t, from, addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	defer c.Close()
	key, _ := base64.StdEncoding.DecodeString(testKeyB64)
	iv, _ := base64.StdEncoding.DecodeString(testIVB64)
	if _, err := c.Write(specEncrypt(key, iv, []byte("getversion\r\n\r\n"))); err != nil {
		return ""
	}
	b, _ := io.ReadAll(c)
	if len(b) == 0 {
		return ""
	}
	return string(specDecrypt(t, key, iv, b))
}

// waitNoConns waits until the guard counts no open connection (a reply
// reaches the client just before the server's side of it ends).
func waitNoConns(t testing.TB, g *guard) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		open := 0
		for _, e := range g.m {
			open += e.conns
		}
		g.mu.Unlock()
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted", open)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGuardFullTableClean: while the per-source table was full, every new
// source shared the pooled entry, even when the sources filling the table
// held nothing (one harmless request each, their failures over): a
// legitimate new client was then blocked with the attackers whose failures
// had blocked the pool. Now a new source takes the place of the least
// recently seen source holding nothing; the pool is only for a table full
// of sources with failures, blocks or connections. A forgotten source
// coming back starts afresh (it had nothing).
func TestGuardFullTableClean(t *testing.T) {
	const table = 64
	ts := startServer(t, func(c *Config) {
		c.Keys = wire.StaticKey(testKey(t))
		c.FirstByteTimeout = 3 * time.Second
	})
	g := ts.s.guard
	clk := newTestClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	g.mu.Lock()
	g.maxSources = table
	g.now = clk.now
	g.mu.Unlock()

	// The table full of sources with a failure each, in their window:
	// new sources share the pool, and their failures block it.
	for i := range table {
		if badAES(t, fmt.Sprintf("127.0.1.%d", i+1), ts.addr) == "" {
			t.Fatalf("filling source %d: closed unread", i)
		}
	}
	waitNoConns(t, g)
	clk.advance(time.Minute)
	for i := range DefaultAESMaxFailures {
		if badAES(t, "127.0.2.1", ts.addr) == "" {
			t.Fatalf("new source's failure %d: closed unread", i)
		}
	}
	if badAES(t, "127.0.2.2", ts.addr) != "" {
		t.Fatal("another new source answered: the pool is not blocked")
	}
	waitNoConns(t, g)
	// The fillers' windows end (the pool stays blocked 30 s more); as
	// many new sources make one harmless request each and fill the table.
	clk.advance(DefaultAESBlock - 30*time.Second)
	for i := range table {
		if goodAES(t, fmt.Sprintf("127.0.3.%d", i+1), ts.addr) != CompatVersion {
			t.Fatalf("harmless source %d: not answered", i)
		}
		waitNoConns(t, g)
	}
	// A legitimate new client gets an entry of its own, not the blocked pool.
	if got := goodAES(t, "127.0.4.1", ts.addr); got != CompatVersion {
		t.Fatalf("new client with the table full of clean sources: reply %q, want getversion's (closed unread: it shared the blocked pool)", got)
	}
	waitNoConns(t, g)
	// The first harmless source was the least recently seen: forgotten,
	// it comes back with nothing held against it.
	g.mu.Lock()
	_, kept := g.m[netip.MustParseAddr("127.0.3.1")]
	g.mu.Unlock()
	if kept {
		t.Error("the least recently seen clean source was not the one forgotten")
	}
	for i := range DefaultAESMaxFailures {
		if badAES(t, "127.0.3.1", ts.addr) == "" {
			t.Fatalf("forgotten source back: failure %d closed unread", i)
		}
	}
	if badAES(t, "127.0.3.1", ts.addr) != "" {
		t.Error("forgotten source back: not blocked after its own failures")
	}
	n := ts.s.Counters()
	if want := uint64(table + 2); n.SourcesEvicted != want { // the fillers, the new client, 127.0.3.1 back
		t.Errorf("SourcesEvicted %d, want %d", n.SourcesEvicted, want)
	}
	if n.SourcesPooled == 0 {
		t.Error("SourcesPooled 0: the new sources' failures on the full table were not counted")
	}
}

// TestGuardEvictsEnded: sources whose block has ended hold only their
// past blocks' doubling; they were kept 24 h past the block, so a table
// full of them (5 failures from each of 65,536 addresses) put every new
// source in the pool for a day. Now they make room once their block ends,
// least recently seen first; a source with a connection open or a
// failure in its window never does.
func TestGuardEvictsEnded(t *testing.T) {
	const block = 15 * time.Minute
	clk := newTestClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	g := newGuard(2, 2, block)
	g.now = clk.now
	g.maxSources = 4
	a := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	has := func(i int) bool { _, ok := g.m[a(i)]; return ok }

	e1, ok, _ := g.admit(a(1)) // 1: a connection open all along
	if !ok {
		t.Fatal("source 1 not admitted")
	}
	for i := 2; i <= 3; i++ { // 2, 3: blocked (2 failures)
		g.fail(a(i))
		clk.advance(time.Second)
		g.fail(a(i))
	}
	g.fail(a(4)) // 4: one failure, in its window for 15 min
	if _, ok, _ := g.admit(a(5)); !ok {
		t.Fatal("new source refused: the pool is not blocked yet")
	}
	if has(5) {
		t.Fatal("a new source on a table of open, blocked and failing sources: in the table; want the pool")
	}
	g.done(&g.pool)

	clk.advance(block + time.Second) // 2 and 3's blocks and 4's window are over
	if _, ok, _ := g.admit(a(6)); !ok || !has(6) {
		t.Fatalf("new source once blocks ended: admitted %v, in the table %v", ok, has(6))
	}
	if has(2) || !has(3) || !has(4) || !has(1) {
		t.Errorf("forgot the wrong source: in the table 1 %v, 2 %v, 3 %v, 4 %v; want 2 (the least recently seen ended one) gone", has(1), has(2), has(3), has(4))
	}
	g.fail(a(7))
	g.fail(a(8))
	if !has(7) || !has(8) || has(3) || has(4) {
		t.Errorf("in the table 3 %v, 4 %v, 7 %v, 8 %v; want 7 and 8 in place of 3 and 4", has(3), has(4), has(7), has(8))
	}
	// 1 (open), 6 (open), 7, 8 (failures in their window): the pool again.
	if _, ok, _ := g.admit(a(9)); !ok || has(9) {
		t.Errorf("new source on a table holding only open and failing sources: admitted %v, in the table %v; want the pool", ok, has(9))
	}
	g.done(&g.pool)
	g.done(e1) // 1 holds nothing now: the next new source takes its place
	if _, ok, _ := g.admit(a(10)); !ok || !has(10) || has(1) {
		t.Errorf("after 1's connection ended: 10 admitted %v, in the table %v, 1 still %v", ok, has(10), has(1))
	}
	if got := g.evicted.Load(); got != 4 {
		t.Errorf("evicted %d, want 4 (2, 3, 4, 1)", got)
	}
	if got := g.pooled.Load(); got != 2 {
		t.Errorf("pooled %d, want 2 (5, 9)", got)
	}
}

// TestGuardRandomOps drives a small table with random connections,
// failures and clock steps and checks after each step that a new source
// is pooled only when no source in the full table holds nothing in force,
// that only such a source is forgotten, and that every source is on
// exactly the list its state says.
func TestGuardRandomOps(t *testing.T) {
	const block = time.Minute
	clk := newTestClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	g := newGuard(3, 3, block)
	g.now = clk.now
	g.maxSources = 8
	rng := rand.New(rand.NewPCG(1, 2))
	var open []*source
	for step := range 50000 {
		src := netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(24))})
		now := clk.now()
		before := make(map[netip.Addr]source, len(g.m)) // values: an entry forgotten is reused
		for a, e := range g.m {
			before[a] = *e
		}
		clean := 0
		for _, e := range before {
			if e.conns == 0 && now.After(e.ends(block)) {
				clean++
			}
		}
		switch op := rng.IntN(10); {
		case op < 4:
			if e, ok, _ := g.admit(src); ok {
				open = append(open, e)
			}
		case op < 7 && len(open) > 0:
			i := rng.IntN(len(open))
			g.done(open[i])
			open = slices.Delete(open, i, i+1)
			checkGuardLists(t, g, step)
			continue
		case op < 9:
			g.fail(src)
		default:
			clk.advance(time.Duration(rng.Int64N(int64(block / 2))))
			continue
		}
		_, had := before[src]
		_, has := g.m[src]
		switch {
		case had && !has:
			t.Fatalf("step %d: a source in the table lost its entry", step)
		case !had && !has && (len(before) < g.maxSources || clean > 0):
			t.Fatalf("step %d: new source pooled with %d of %d entries, %d clean", step, len(before), g.maxSources, clean)
		case !had && has && len(before) >= g.maxSources:
			for a, e := range before {
				if _, kept := g.m[a]; !kept && (e.conns > 0 || !now.After(e.ends(block))) {
					t.Fatalf("step %d: forgot %v holding conns %d, window/block to %v (now %v)", step, a, e.conns, e.ends(block), now)
				}
			}
		}
		checkGuardLists(t, g, step)
	}
	if g.evicted.Load() == 0 || g.pooled.Load() == 0 {
		t.Errorf("evicted %d, pooled %d: the random walk missed a case", g.evicted.Load(), g.pooled.Load())
	}
}

// checkGuardLists checks that each source is on the list its state says:
// none with connections open, else the clean ring or the waiting heap.
func checkGuardLists(t *testing.T, g *guard, step int) {
	t.Helper()
	ring := map[*source]bool{}
	for e := g.clean.next; e != &g.clean; e = e.next {
		if e.next.prev != e || ring[e] {
			t.Fatalf("step %d: clean ring broken", step)
		}
		ring[e] = true
	}
	for i, e := range g.waiting.s {
		if e.wait != i {
			t.Fatalf("step %d: waiting[%d] says it is at %d", step, i, e.wait)
		}
	}
	if len(g.m) > g.maxSources {
		t.Fatalf("step %d: %d sources, bound %d", step, len(g.m), g.maxSources)
	}
	listed := 0
	for a, e := range g.m {
		if e.addr != a {
			t.Fatalf("step %d: %v's entry says %v", step, a, e.addr)
		}
		onRing, waiting := ring[e], e.wait >= 0
		switch {
		case e.conns > 0 && (onRing || waiting):
			t.Fatalf("step %d: %v has connections open and is listed", step, a)
		case e.conns == 0 && onRing == waiting:
			t.Fatalf("step %d: %v on the ring %v, waiting %v", step, a, onRing, waiting)
		}
		if onRing || waiting {
			listed++
		}
	}
	if listed != len(ring)+len(g.waiting.s) {
		t.Fatalf("step %d: %d listed in the table, %d on the lists", step, listed, len(ring)+len(g.waiting.s))
	}
}

// TestGuardIPv6Prefix: the guard counted each address as a source, so an
// attacker holding an IPv6 /64 (2^64 addresses) failed, connected and
// filled the table from a fresh address each time (about 73 failures a
// second, every one in an entry of its own). Now the addresses of one /64
// are one source: their failures block them together, their connections
// share one cap, and they take one entry; another /64 is another source,
// as is every IPv4 address; an IPv4-mapped IPv6 address is its IPv4
// address.
func TestGuardIPv6Prefix(t *testing.T) {
	const maxConns, maxFails = 2, 3
	many := func(prefix string, n int) []string { // n addresses of prefix::/64
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s:%x:%x::%x", prefix, i>>16, i&0xffff, i+1)
		}
		return out
	}
	tests := []struct {
		name        string
		fail        []string // one failed request each
		conns       []string // one connection each, held
		try         string   // then a connection from try
		wantOK      bool
		wantBlocked bool
		wantSources int // entries in the table at the end
	}{
		{"one /64's addresses blocked together", many("2001:db8:1:2", maxFails), nil, "2001:db8:1:2:ffff:ffff:ffff:ffff", false, true, 1},
		{"10,000 addresses of one /64: one entry", many("2001:db8:1:2", 10000), nil, "2001:db8:1:2::1", false, true, 1},
		{"the next /64 unaffected", many("2001:db8:1:2", maxFails), nil, "2001:db8:1:3::1", true, false, 2},
		{"the /64 below unaffected", many("2001:db8:1:2", maxFails), nil, "2001:db8:1:1:ffff:ffff:ffff:ffff", true, false, 2},
		{"one failure from fewer addresses: not blocked", many("2001:db8:1:2", maxFails-1), nil, "2001:db8:1:2::1", true, false, 1},
		{"a zone is the same source", many("fe80:0:0:0", maxFails), nil, "fe80::1%eth0", false, true, 1},
		{"one /64's connections share one cap", nil, many("2001:db8:1:2", maxConns), "2001:db8:1:2::beef", false, false, 1},
		{"another /64 connects", nil, many("2001:db8:1:2", maxConns), "2001:db8:1:3::beef", true, false, 2},
		{"ipv4 addresses apart", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, nil, "192.0.2.4", true, false, 4},
		{"ipv4 blocked by its own failures", []string{"192.0.2.1", "192.0.2.1", "192.0.2.1"}, nil, "192.0.2.1", false, true, 1},
		{"ipv4-mapped failures block ipv4", []string{"::ffff:192.0.2.1", "::ffff:192.0.2.1", "192.0.2.1"}, nil, "192.0.2.1", false, true, 1},
		{"ipv4 failures block ipv4-mapped", []string{"192.0.2.1", "192.0.2.1", "192.0.2.1"}, nil, "::ffff:192.0.2.1", false, true, 1},
		{"ipv4-mapped neighbour apart", []string{"::ffff:192.0.2.1", "::ffff:192.0.2.1", "::ffff:192.0.2.1"}, nil, "::ffff:192.0.2.2", true, false, 2},
		{"ipv4-mapped connections share ipv4's cap", nil, []string{"::ffff:192.0.2.1", "192.0.2.1"}, "::ffff:192.0.2.1", false, false, 1},
		{"ipv4-mapped is not the ::/64", []string{"::ffff:192.0.2.1", "::ffff:192.0.2.1", "::ffff:192.0.2.1"}, nil, "::1", true, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newTestClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			g := newGuard(maxConns, maxFails, 15*time.Minute)
			g.now = clk.now
			g.maxSources = 16 // the 10,000 addresses would overflow it one by one
			for _, a := range tt.fail {
				g.fail(netip.MustParseAddr(a))
				clk.advance(time.Millisecond)
			}
			for _, a := range tt.conns {
				if _, ok, _ := g.admit(netip.MustParseAddr(a)); !ok {
					t.Fatalf("connection from %s refused", a)
				}
			}
			_, ok, blocked := g.admit(netip.MustParseAddr(tt.try))
			if ok != tt.wantOK || blocked != tt.wantBlocked {
				t.Errorf("%s: admitted %v, blocked %v; want %v, %v", tt.try, ok, blocked, tt.wantOK, tt.wantBlocked)
			}
			if len(g.m) != tt.wantSources || g.pooled.Load() != 0 || g.evicted.Load() != 0 {
				t.Errorf("%d sources in the table (pooled %d, evicted %d), want %d", len(g.m), g.pooled.Load(), g.evicted.Load(), tt.wantSources)
			}
		})
	}
}
