package portowner

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
)

func TestFindOwnListener(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("%s: %v (skipped)", network, err)
			continue
		}
		port := ln.Addr().(*net.TCPAddr).Port
		o, err := Find(context.Background(), port)
		ln.Close()
		if err != nil {
			t.Fatalf("%s: Find(%d) = %v", network, port, err)
		}
		if o.PID != os.Getpid() || o.Name == "" {
			t.Errorf("%s: Find(%d) = %+v, want pid %d", network, port, o, os.Getpid())
		}
	}
}

func TestFindNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if _, err := Find(context.Background(), port); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find(closed port) = %v, want ErrNotFound", err)
	}
}

func TestListeningInodes(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 99999 1 0000000000000000 100 0 0 10 0
   2: 0100007F:13A5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22222 1
   3: garbage
`
	got := map[string]bool{}
	if err := listeningInodes(strings.NewReader(table), 8080, got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got["12345"] {
		t.Errorf("inodes for 8080 = %v, want only 12345 (LISTEN, not the established one)", got)
	}
}
