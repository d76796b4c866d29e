package spool

import (
	"sync"
	"testing"
)

// TestEnqueueCap: shards hand buffers over at the same time; the bytes
// queued never pass the cap (a buffer goes alone when nothing is queued),
// and what is refused is not accounted.
func TestEnqueueCap(t *testing.T) {
	const max, n = 64 << 10, 16 << 10
	b := &buffers{max: max, freed: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10000 {
				if b.enqueue(n, false) {
					b.written(n)
				}
			}
		})
	}
	wg.Wait()
	if p := b.peak.Load(); p > max || p < n {
		t.Errorf("peak %d bytes queued, cap %d", p, max)
	}
	if q := b.queued.Load(); q != 0 {
		t.Errorf("%d bytes left queued", q)
	}
	if !b.enqueue(2*max, false) || b.enqueue(1, false) || !b.enqueue(1, true) {
		t.Error("an empty queue takes any buffer, a full one only a forced one")
	}
}
