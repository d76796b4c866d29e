package manager

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// settle waits (bounded) for goroutines and fds to come back to a baseline.
func settle(t *testing.T, wantG, wantFD int) (int, int) {
	t.Helper()
	var g, fd int
	for range 200 {
		runtime.GC()
		g, fd = runtime.NumGoroutine(), openFDs(t)
		if g <= wantG && fd <= wantFD {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return g, fd
}

// TestFlood opens 1,000 concurrent idle connections: at most MaxConns are
// held (the rest are closed at once), a client on the unix socket is served
// meanwhile, a TCP client is served once the flood ends, and no goroutine
// or fd is left behind.
func TestFlood(t *testing.T) {
	const flood = 1000
	ts := startServer(t, func(c *Config) {
		c.MaxConns = 64
		c.ReadTimeout = 10 * time.Second // idle flooders are held until they go away
	})
	// Warm up so lazily created runtime goroutines/fds are in the baseline.
	_ = exchange(t, "tcp", ts.addr, []byte("totalcalls\r\n\r\n"), false)
	baseG, baseFD := settle(t, 0, 0)

	conns := make([]net.Conn, 0, flood)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
			if err != nil {
				return // the backlog may refuse some: also bounded
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// The server holds at most MaxConns TCP connections.
	deadline := time.Now().Add(5 * time.Second)
	for ts.s.Counters().Refused == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c := ts.s.Counters()
	if c.Active > 64 {
		t.Errorf("%d active connections, limit 64", c.Active)
	}
	if c.Refused == 0 {
		t.Errorf("no connection refused with %d dialled: %+v", len(conns), c)
	}
	// The unix socket has its own limit: still served during the TCP flood.
	if got := exchange(t, "unix", ts.sock, []byte("totalcalls\n"), true); string(got) != "3" {
		t.Errorf("unix socket during flood: %q", got)
	}
	// Refused connections see EOF at once rather than hanging.
	refusedSeen := 0
	for _, fc := range conns {
		_ = fc.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := fc.Read(make([]byte, 1)); err == io.EOF {
			refusedSeen++
		}
	}
	if refusedSeen == 0 {
		t.Error("no flood connection was closed by the server")
	}
	for _, fc := range conns {
		_ = fc.Close()
	}
	if got := exchange(t, "tcp", ts.addr, []byte("totalcalls\r\n\r\n"), false); string(got) != "3" {
		t.Errorf("after flood: %q", got)
	}
	g, fd := settle(t, baseG, baseFD)
	if g > baseG || fd > baseFD {
		t.Errorf("leak: goroutines %d -> %d, fds %d -> %d", baseG, g, baseFD, fd)
	}
	t.Logf("flood of %d: accepted %d, refused %d; goroutines %d->%d, fds %d->%d",
		len(conns), ts.s.Counters().Accepted, ts.s.Counters().Refused, baseG, g, baseFD, fd)
}
