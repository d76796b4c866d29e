package metrics

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHandler(t *testing.T) {
	reg := NewRegistry("1.2.3")
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "pbx_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	rec := httptest.NewRecorder()
	Handler(reg, slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`pbx_build_info{version="1.2.3"} 1`, "pbx_test_total 3", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ServeListener(ctx, ln, NewRegistry("x"), slog.New(slog.DiscardHandler)) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "pbx_build_info") {
		t.Errorf("GET /metrics = %d, body %.100q", resp.StatusCode, b)
	}
	if resp, err := http.Post("http://"+ln.Addr().String()+"/metrics", "text/plain", nil); err == nil {
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /metrics = %d, want 405", resp.StatusCode)
		}
		resp.Body.Close()
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("serve returned %v after cancel", err)
	}
}

// TestServeBoundsConnections: the metrics listener had no bound on
// connections (idle keep-alive ones stay a minute and are renewed by one
// request each): every one held a goroutine and a descriptor of the
// agent's. Now at most MaxConns are served; the next waits until one
// closes.
func TestServeBoundsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ServeListener(ctx, ln, NewRegistry("x"), slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-errc }()

	get := func(c net.Conn, br *bufio.Reader, wait time.Duration) bool {
		_ = c.SetDeadline(time.Now().Add(wait))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return false
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return true
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range MaxConns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if !get(c, bufio.NewReader(c), 5*time.Second) {
			t.Fatalf("connection %d not served", i)
		}
	}
	extra, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	br := bufio.NewReader(extra)
	if get(extra, br, 300*time.Millisecond) {
		t.Fatalf("connection %d served while %d idle ones are open", MaxConns+1, MaxConns)
	}
	held[0].Close()
	// The request already sent is answered once a slot is free.
	_ = extra.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("not served after a slot was freed: %v", err)
	}
	resp.Body.Close()
}
