package sdnotify

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket as systemd does and returns its path.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Skipf("unixgram socket unavailable: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	srv := listen(t, path)
	abstract := "@pbx-agent-sdnotify-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	asrv := listen(t, "\x00"+abstract[1:])
	tests := []struct {
		name   string
		socket string
		srv    *net.UnixConn
		send   func(n *Notifier) error
		want   []string // lines that must be in the datagram
	}{
		{name: "ready", socket: path, srv: srv, send: (*Notifier).Ready, want: []string{"READY=1", "STATUS=running"}},
		{name: "stopping", socket: path, srv: srv, send: (*Notifier).Stopping, want: []string{"STOPPING=1"}},
		{name: "reloading", socket: path, srv: srv, send: (*Notifier).Reloading, want: []string{"RELOADING=1", "MONOTONIC_USEC="}},
		{name: "status newline", socket: path, srv: srv, send: func(n *Notifier) error { return n.Status("a\nb") }, want: []string{"STATUS=a b"}},
		{name: "abstract", socket: abstract, srv: asrv, send: (*Notifier).Ready, want: []string{"READY=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := New(tt.socket)
			if err := tt.send(n); err != nil {
				t.Fatal(err)
			}
			got := recv(t, tt.srv)
			lines := strings.Split(got, "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					if strings.HasPrefix(l, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("datagram %q lacks %q", got, w)
				}
			}
		})
	}
}

func TestNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	if err := n.Ready(); err != nil {
		t.Fatalf("no-op notifier returned %v", err)
	}
	var nilN *Notifier
	if err := nilN.Stopping(); err != nil {
		t.Fatalf("nil notifier returned %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	srv := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	if err := FromEnv().Ready(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, srv); !strings.HasPrefix(got, "READY=1") {
		t.Errorf("got %q", got)
	}
}

func TestSendError(t *testing.T) {
	err := New(filepath.Join(t.TempDir(), "missing.sock")).Ready()
	if !errors.Is(err, ErrSend) {
		t.Fatalf("err = %v, want ErrSend", err)
	}
}
