package manager

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestSocatClient is `echo listcalls | nc 127.0.0.1 5029` and
// `echo listcalls | nc -U /tmp/vm_manager_socket` with socat (nc is not
// always installed): LF-terminated request, stdin EOF half-closes.
func TestSocatClient(t *testing.T) {
	bin, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat not installed; skipping the command-line client test")
	}
	ts := startServer(t, nil)
	want := exchange(t, "tcp", ts.addr, []byte("listcalls\r\n\r\n"), false)
	for _, target := range []string{"TCP:" + ts.addr, "UNIX-CONNECT:" + ts.sock} {
		cmd := exec.Command(bin, "-t", "10", "-", target)
		cmd.Stdin = strings.NewReader("listcalls\n")
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("socat %s: %v", target, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("socat %s: %.80q, want %.80q", target, got, want)
		}
	}
}
