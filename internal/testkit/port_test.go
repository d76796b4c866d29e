package testkit

import (
	"fmt"
	"net"
	"testing"
)

// TestFreePort: ports below the ephemeral range, never the same twice,
// free to bind.
func TestFreePort(t *testing.T) {
	lo, seen := ephemeralLow(), map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if p < 10000 || p >= lo || seen[p] {
			t.Fatalf("port %d: want a new one in [10000, %d)", p, lo)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		ln.Close()
	}
}
