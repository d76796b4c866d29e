package call

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"pbx-agent/internal/cputime"
)

// randomAddr returns one of a small set of addresses (so that sets, deletes
// and lookups hit each other), IPv4, IPv4-mapped IPv6 or IPv6.
func randomAddr(r *rand.Rand) netip.AddrPort {
	port := uint16(10000 + r.IntN(64))
	b := byte(r.IntN(64))
	switch r.IntN(3) {
	case 0:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, b}), port)
	case 1:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 10, 15: b}), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: b}), port)
}

// TestMediaIndexMatchesMap runs random sets and deletes (growing and
// shrinking the table) against a Go map and compares every lookup.
func TestMediaIndexMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	calls := make([]*callState, 8)
	for i := range calls {
		calls[i] = &callState{}
	}
	x := newMediaIndex()
	want := map[netip.AddrPort]mediaEntry{}
	for step := 0; step < 200000; step++ {
		a := randomAddr(r)
		// phases: mostly sets, then mostly deletes, so the table grows and shrinks
		if grow := step/20000%2 == 0; r.IntN(10) < 7 == grow {
			e := mediaEntry{c: calls[r.IntN(len(calls))], party: Party(r.IntN(2))}
			x.set(a, e)
			want[a] = e
		} else {
			x.del(a)
			delete(want, a)
		}
		q := randomAddr(r)
		got, ok := x.get(q)
		w, wok := want[q]
		if ok != wok || got != w {
			t.Fatalf("step %d: get(%v) = %v %v, map has %v %v", step, q, got, ok, w, wok)
		}
		if x.len() != len(want) {
			t.Fatalf("step %d: %d entries, map has %d", step, x.len(), len(want))
		}
	}
	for a, w := range want {
		if got, ok := x.get(a); !ok || got != w {
			t.Fatalf("get(%v) = %v %v, want %v", a, got, ok, w)
		}
	}
}

// BenchmarkMediaIndex compares the index with a Go map keyed by
// netip.AddrPort on the lookups of 600 streams' packets (10,000 calls'
// addresses in the table).
func BenchmarkMediaIndex(b *testing.B) {
	const calls = 10000
	addrs := make([]netip.AddrPort, 2*calls)
	for i := range addrs {
		addrs[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(10000+2*i))
	}
	c := &callState{}
	b.Run("map", func(b *testing.B) {
		m := map[netip.AddrPort]mediaEntry{}
		for _, a := range addrs {
			m[a] = mediaEntry{c: c}
		}
		i, cpu0 := 0, cputime.Process()
		for b.Loop() {
			if _, ok := m[addrs[i%600]]; !ok {
				b.Fatal("missing")
			}
			i++
		}
		cputime.PerOp(b, cpu0)
	})
	b.Run("index", func(b *testing.B) {
		x := newMediaIndex()
		for _, a := range addrs {
			x.set(a, mediaEntry{c: c})
		}
		i, cpu0 := 0, cputime.Process()
		for b.Loop() {
			if _, ok := x.get(addrs[i%600]); !ok {
				b.Fatal("missing")
			}
			i++
		}
		cputime.PerOp(b, cpu0)
	})
}
