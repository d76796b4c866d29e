package webui

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"pbx-agent/internal/testkit"
)

// TestStalledReaderCut: a client that asks for responses and never reads
// them. With no write timeout (downloads may be long) a handler blocked in
// Write stayed blocked for as long as the peer's kernel acknowledged
// zero-window probes, i.e. for ever: anyone could hold a goroutine, a
// connection and up to 4 MiB of socket buffer (tcp_wmem) per connection by
// pipelining requests for a 51 kB console asset, and the connection is
// busy, so IdleTimeout never applies. Now each write must progress within
// StallTimeout.
func TestStalledReaderCut(t *testing.T) {
	h := New(Options{Logger: testLogger()})
	srv := NewServer(ServerConfig{Addr: "127.0.0.1:0", StallTimeout: 300 * time.Millisecond, Logger: testLogger()}, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := testkit.Run(t, func(ctx context.Context) error { return srv.ServeContext(ctx, ln) })
	defer func() { _ = stop() }()

	base := runtime.NumGoroutine()
	const conns = 20
	req := strings.Repeat("GET /console/uPlot.iife.min.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200) // 200 × 51 kB
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		_ = tc.SetReadBuffer(4096) // a small window: the server's writes block soon
		held = append(held, c)
		go func() { _, _ = c.Write([]byte(req)) }() // never read
	}
	time.Sleep(500 * time.Millisecond)
	during := runtime.NumGoroutine() - base
	// Past the stall timeout every blocked handler has given up and its
	// connection is closed.
	deadline := time.Now().Add(5 * time.Second)
	after := during
	for time.Now().Before(deadline) {
		runtime.Gosched()
		if after = runtime.NumGoroutine() - base; after <= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("goroutines over the baseline: %d while stalled, %d after the stall timeout", during, after)
	if after > 2 {
		t.Errorf("%d goroutines still held by %d stalled readers after %v", after, conns, 5*time.Second)
	}
}

// TestSlowHandlerNotCut: the stall timeout bounds a write's progress, not
// the time a handler works before it writes (a long call's audio, a fax
// decoded), nor an answer with no body written after a keep-alive
// connection's previous request.
func TestSlowHandlerNotCut(t *testing.T) {
	const stall = 200 * time.Millisecond
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * stall)
		_, _ = w.Write([]byte("done"))
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("fast")) })
	mux.HandleFunc("/header", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * stall)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := NewServer(ServerConfig{Addr: "127.0.0.1:0", StallTimeout: stall, Logger: testLogger()}, mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := testkit.Run(t, func(ctx context.Context) error { return srv.ServeContext(ctx, ln) })
	defer func() { _ = stop() }()
	client := &http.Client{Timeout: 10 * time.Second} // one keep-alive connection for all
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/slow", "done", 200},
		{"/fast", "fast", 200},
		{"/header", "", 204}, // after /fast's deadline passed on the same connection
	} {
		if tc.path == "/header" {
			time.Sleep(2 * stall)
		}
		resp, err := client.Get("http://" + ln.Addr().String() + tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.code || string(b) != tc.body {
			t.Errorf("%s: %d %q (%v), want %d %q", tc.path, resp.StatusCode, b, err, tc.code, tc.body)
		}
	}
}
