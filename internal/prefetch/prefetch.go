// Package prefetch asks the CPU to load memory into its caches ahead of
// use, without waiting for it: the packet path reads a batch of packets'
// call and stream state ahead of handling them (sniffer/lookahead.go), so
// that their cache misses overlap. On architectures without an
// implementation the functions do nothing.
package prefetch

import "unsafe"

// LineSize is the cache line size the functions step by.
const LineSize = 64

// Lines prefetches the n cache lines from p on (p need not be aligned:
// the lines holding p, p+64, … p+64(n-1)). Nothing is read as data: p may
// point anywhere valid in the Go heap.
func Lines(p unsafe.Pointer, n int) { lines(p, n) }
