// Package testkit holds the small helpers the tests of several packages
// share: a buffer safe for a logger and the test at once, the test logger,
// running a component's Run(ctx) for the length of a test, a zero-allocation
// check, a file system that refuses one file, golden files, the error a
// table case wants, a UDP socket sending through lo and a free TCP port.
// Test support only; nothing in the agent imports it.
package testkit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that goroutines (a logger, a child's
// output) write while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger returns a Debug logger to stderr under -v, else one that
// discards.
func Logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Run runs run(ctx) in a goroutine until stop is called or the test ends.
// stop ends ctx, waits for run to return and returns its error; calling
// it again returns the same error.
func Run(tb testing.TB, run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	tb.Cleanup(func() { _ = stop() })
	return stop
}

// HTTP reads a test's HTTP responses: HTTP(t).Read(client.Do(req)).
func HTTP(tb testing.TB) Responses { return Responses{tb} }

// Responses reads HTTP responses for a test (see HTTP).
type Responses struct{ tb testing.TB }

// Read returns resp's status, body and header; the request's error or a
// failed read fails the test.
func (r Responses) Read(resp *http.Response, err error) (int, []byte, http.Header) {
	r.tb.Helper()
	if err != nil {
		r.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.tb.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// NoAllocs fails tb when f allocates (testing.AllocsPerRun over 100 runs).
func NoAllocs(tb testing.TB, f func()) {
	tb.Helper()
	if allocs := testing.AllocsPerRun(100, f); allocs != 0 {
		tb.Errorf("allocs = %v, want 0", allocs)
	}
}

// DeniedFS serves FS but refuses to open the file Name with
// fs.ErrPermission, as the kernel does for a mode-640 file when the process
// is not in its group (root included, unlike chmod).
type DeniedFS struct {
	fs.FS
	Name string
}

// Open opens name from FS, or fails with fs.ErrPermission for Name.
func (d DeniedFS) Open(name string) (fs.File, error) {
	if name == d.Name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.FS.Open(name)
}

// Golden compares got with the golden file at path; with update (the
// package's -update flag) it writes got there first.
func Golden(tb testing.TB, path string, got []byte, update bool) {
	tb.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs (run with -update if intended); got:\n%s", path, got)
	}
}

// WantErr checks the error of a table case that wants the error want (nil:
// none). A wrong error fails the test at once. It reports whether an error
// was wanted, so the case has nothing more to check:
//
//	if testkit.WantErr(t, err, tt.wantErr) {
//		return
//	}
func WantErr(tb testing.TB, err, want error) bool {
	tb.Helper()
	if want != nil {
		if !errors.Is(err, want) {
			tb.Fatalf("err = %v, want %v", err, want)
		}
		return true
	}
	if err != nil {
		tb.Fatal(err)
	}
	return false
}

// LoopbackUDP returns a UDP socket connected to another on 127.0.0.1 that
// nobody reads: what it sends goes through lo, for a capture to see. Both
// are closed when the test ends.
func LoopbackUDP(tb testing.TB) net.Conn {
	tb.Helper()
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sink.Close() })
	conn, err := net.Dial("udp", sink.LocalAddr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}
