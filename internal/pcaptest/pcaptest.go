// Package pcaptest opens pcap files for tests. It stands apart from
// sniffer/fixture so that a test binary that only locates files does not
// link gopacket's layers (their tables are GC roots, which slows the
// benchmarks of packages that never decode a frame).
package pcaptest

import (
	"os"
	"testing"

	"github.com/google/gopacket/pcapgo"
)

// Open opens the pcap file at path for reading; it is closed when the test
// ends. An error fails the test.
func Open(tb testing.TB, path string) *pcapgo.Reader {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	r, err := pcapgo.NewReader(f)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return r
}
