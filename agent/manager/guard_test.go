package manager

import (
	"fmt"
	"net"
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
