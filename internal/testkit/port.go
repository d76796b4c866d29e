package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
)

// handedOut are the ports FreePort returned in this process.
var handedOut sync.Map

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on, for a
// server a test starts later (a daemon's http_bind or manager port). It is
// picked below the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), where "127.0.0.1:0" listeners
// and outgoing connections never land: a port taken from ":0" and closed
// again could be handed to the test's own next connection before its
// server binds it (seen once under load: "address already in use; the port
// is held by agent.test"). A port is never returned twice in a process.
func FreePort(tb testing.TB) int {
	tb.Helper()
	lo := ephemeralLow()
	for range 200 {
		p := 10000 + rand.IntN(lo-10000)
		if _, dup := handedOut.LoadOrStore(p, true); dup {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		return p
	}
	tb.Skipf("no free TCP port on 127.0.0.1 between 10000 and %d", lo)
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read or leaves too little room below it).
func ephemeralLow() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if n, _ := fmt.Sscan(string(b), &a, &z); n == 2 && a > 12000 {
			lo = a
		}
	}
	return lo
}
