package webui

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"pbx-agent/internal/testkit"
)

// startLimited serves the handler without database through NewServer with
// mod applied to its config; it returns the address.
func startLimited(t *testing.T, mod func(*ServerConfig)) (*Server, string) {
	t.Helper()
	cfg := ServerConfig{Addr: "127.0.0.1:0", Logger: testLogger()}
	if mod != nil {
		mod(&cfg)
	}
	srv := NewServer(cfg, New(Options{Logger: testLogger()}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, func(ctx context.Context) error { return srv.ServeContext(ctx, ln) })
	return srv, ln.Addr().String()
}

// getOn sends one GET on c and reads the answer; false when the connection
// is gone.
func getOn(c net.Conn, br *bufio.Reader) bool {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /console/api/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// alive reports whether the server still holds c open (a read times out
// rather than ending).
func alive(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestConnLimit: the HTTP listener had no bound on connections. 4,000
// idle keep-alive connections (one request each, then nothing, renewed
// within IdleTimeout's 120 s) held 4,000 goroutines, 47 MB of heap and
// 4,000 descriptors of the agent's 65,536: enough of them and the spool,
// the manager API and the database lose their descriptors. Now at most
// MaxConns are open: a new one replaces an idle one, and is closed at once
// when every slot is busy.
func TestConnLimit(t *testing.T) {
	const max = 16
	// A grace longer than the test: the busy slots below (a request begun)
	// are not the silent ones TestConnLimitSilent evicts.
	srv, addr := startLimited(t, func(c *ServerConfig) { c.MaxConns = max; c.HeaderGrace = time.Minute })

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 100 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if !getOn(c, bufio.NewReader(c)) {
			t.Fatalf("connection %d not served", i)
		}
	}
	open := 0
	for _, c := range held {
		if alive(c) {
			open++
		}
	}
	if open > max || srv.conns.openNow() > max {
		t.Errorf("100 idle keep-alive connections: %d held (server counts %d), want at most %d", open, srv.conns.openNow(), max)
	}
	if !alive(held[len(held)-1]) {
		t.Error("the newest connection was closed rather than an idle one")
	}

	// Every slot busy (a request begun, not finished): the next
	// connection is closed at once and counted.
	for _, c := range held {
		c.Close()
	}
	held = held[:0]
	waitFor(t, func() bool { return srv.conns.openNow() == 0 })
	for range max {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if _, err := c.Write([]byte("GET /console/api/me HTTP/1.1\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return srv.conns.openNow() == max })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if getOn(c, bufio.NewReader(c)) {
		t.Error("a connection past the bound was served while every slot was busy")
	}
	waitFor(t, func() bool { return srv.conns.refused.Load() >= 1 })

	// Slots come back when connections close.
	for _, c := range held {
		c.Close()
	}
	held = held[:0]
	waitFor(t, func() bool { return srv.conns.openNow() == 0 })
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if !getOn(c2, bufio.NewReader(c2)) {
		t.Error("not served once the busy connections closed")
	}
}

// TestConnLimitSilent: connections that send nothing, or not a whole
// request header, are StateNew until ReadHeaderTimeout (10 s) and were not
// evictable: MaxConns of them, renewed every 10 s, refused every other
// client. Now, at the bound with none idle, a new connection replaces the
// oldest that has gone HeaderGrace (1 s) without a complete request; within
// the grace it is still refused.
func TestConnLimitSilent(t *testing.T) {
	const max = 16
	srv, addr := startLimited(t, func(c *ServerConfig) { c.MaxConns = max })
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range max {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if i%2 == 1 { // half send a request line and stop there
			if _, err := c.Write([]byte("GET /console/api/me HTTP/1.1\r\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, func() bool { return srv.conns.openNow() == max })
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	served := getOn(c, bufio.NewReader(c))
	c.Close()
	if served && time.Since(start) < time.Second {
		t.Error("a connection served within the grace of the silent ones")
	}

	time.Sleep(1100 * time.Millisecond)
	evicted := srv.conns.evicted.Load()
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !getOn(c, bufio.NewReader(c)) {
			t.Fatalf("request %d refused while %d silent connections held every slot past the grace", i, max)
		}
	}
	if got := srv.conns.evicted.Load() - evicted; got != 3 {
		t.Errorf("%d connections evicted for 3 new ones, want 3", got)
	}
	// The first made room by closing the oldest silent connection; each
	// next one replaced the one before it when that was idle after its
	// answer already (an idle keep-alive connection goes before a silent
	// one), else the next oldest silent one.
	gone := 0
	for gone < len(held) && !alive(held[gone]) {
		gone++
	}
	if gone < 1 || gone > 3 {
		t.Errorf("%d silent connections closed for 3 new ones, want 1 to 3", gone)
	}
	for i, c := range held[gone:] {
		if !alive(c) {
			t.Errorf("silent connection %d closed while %d older ones are open", gone+i, gone)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
