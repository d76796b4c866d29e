package call

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// mediaIndex maps the media addresses calls announced to their calls: the
// lookup every RTP/RTCP packet makes (MatchMedia). An open-addressing table
// with linear probing over fixed 24-byte keys and a seeded multiply hash:
// about half the CPU time of a Go map keyed by netip.AddrPort, whose
// generic hash and equality go through the address's zone handle
// (BenchmarkMediaIndex). Zones are not part of the key (no packet or SDP
// address carries one).
type mediaIndex struct {
	slots []mediaSlot // len is a power of two, or 0
	n     int
	seed  [3]uint64
}

type mediaSlot struct {
	hi, lo uint64 // the address as 16 bytes (IPv4-mapped for IPv4)
	port   uint32 // port | family<<16 (1 IPv4, 2 IPv6)
	party  Party
	c      *callState // nil: free
}

// mediaKey is an address as the index keys it.
type mediaKey struct {
	hi, lo uint64
	port   uint32
}

func keyOf(ap netip.AddrPort) mediaKey {
	a := ap.Addr()
	if a.Is4() {
		b := a.As4()
		return mediaKey{0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:])), uint32(ap.Port()) | 1<<16}
	}
	b := a.As16()
	return mediaKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), uint32(ap.Port()) | 2<<16}
}

func newMediaIndex() mediaIndex {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return mediaIndex{seed: [3]uint64{
		binary.LittleEndian.Uint64(b[0:]) | 1,
		binary.LittleEndian.Uint64(b[8:]),
		binary.LittleEndian.Uint64(b[16:]) | 1,
	}}
}

// hash mixes the key with the table's random seed (addresses come from
// the network: an unseeded hash would let a sender choose colliding ones).
func (x *mediaIndex) hash(k mediaKey) uint64 {
	h, l := bits.Mul64(k.hi^x.seed[0], k.lo^x.seed[1])
	h, l = bits.Mul64(h^l^uint64(k.port), x.seed[2])
	return h ^ l
}

func (s *mediaSlot) is(k mediaKey) bool { return s.lo == k.lo && s.port == k.port && s.hi == k.hi }

// get returns the entry of an address.
func (x *mediaIndex) get(ap netip.AddrPort) (mediaEntry, bool) {
	if x.n == 0 {
		return mediaEntry{}, false
	}
	k := keyOf(ap)
	if s := x.find(k, x.home(k)); s != nil {
		return mediaEntry{c: s.c, party: s.party}, true
	}
	return mediaEntry{}, false
}

// home is the slot where k's probe starts (the index is not empty).
func (x *mediaIndex) home(k mediaKey) uint64 { return x.hash(k) & uint64(len(x.slots)-1) }

// find probes from slot i for k's slot; nil when k is not indexed.
func (x *mediaIndex) find(k mediaKey, i uint64) *mediaSlot {
	mask := uint64(len(x.slots) - 1)
	for ; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.c == nil {
			return nil
		}
		if s.is(k) {
			return s
		}
	}
}

// set adds or replaces an address's entry.
func (x *mediaIndex) set(ap netip.AddrPort, e mediaEntry) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.resize(max(64, 2*len(x.slots)))
	}
	x.put(keyOf(ap), e)
}

func (x *mediaIndex) put(k mediaKey, e mediaEntry) {
	mask := uint64(len(x.slots) - 1)
	for i := x.hash(k) & mask; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.c == nil {
			*s = mediaSlot{hi: k.hi, lo: k.lo, port: k.port, party: e.party, c: e.c}
			x.n++
			return
		}
		if s.is(k) {
			s.party, s.c = e.party, e.c
			return
		}
	}
}

// del removes an address, shifting later entries of its probe run back so
// that lookups need no tombstones.
func (x *mediaIndex) del(ap netip.AddrPort) {
	if x.n == 0 {
		return
	}
	k := keyOf(ap)
	mask := uint64(len(x.slots) - 1)
	i := x.hash(k) & mask
	for ; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.c == nil {
			return
		}
		if s.is(k) {
			break
		}
	}
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := &x.slots[j]
		if s.c == nil {
			break
		}
		// s may move to the hole at i unless its home lies cyclically in (i, j].
		home := x.hash(mediaKey{s.hi, s.lo, s.port}) & mask
		if (j-home)&mask >= (j-i)&mask {
			x.slots[i] = *s
			i = j
		}
	}
	x.slots[i] = mediaSlot{}
	x.n--
	if len(x.slots) > 64 && x.n*8 < len(x.slots) {
		x.resize(len(x.slots) / 2) // give memory back after a peak of calls
	}
}

func (x *mediaIndex) resize(size int) {
	old := x.slots
	x.slots, x.n = make([]mediaSlot, size), 0
	for i := range old {
		if s := &old[i]; s.c != nil {
			x.put(mediaKey{s.hi, s.lo, s.port}, mediaEntry{c: s.c, party: s.party})
		}
	}
}

// len is the number of addresses indexed.
func (x *mediaIndex) len() int { return x.n }
