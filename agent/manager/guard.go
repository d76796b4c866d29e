package manager

import (
	"container/heap"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/internal/sourcekey"
)

// guard keeps the per-source state of the TCP listener: connections open
// now (Config.MaxConnsPerSource) and failed AES requests (Config.AESMaxFailures
// within Config.AESBlock block the source for AESBlock, doubled at every
// new block up to maxBlock). A source is an IPv4 address or an IPv6 /64
// (sourcekey.Of: the addresses of one /64 are one host's or one attacker's,
// counted, capped and blocked together); unix-socket peers have none and
// are never limited here.
//
// The table holds at most maxSources sources. When it is full, a new
// source takes the place of the least recently seen source that holds
// nothing in force: no connection open, no failure in its window, no
// block (clean; it loses at most its past blocks' doubling). Only while
// every source holds one of those does a new source share one entry
// (pool): their failures block them together and their connections share
// one source's cap, so holding many sources (IPv4 addresses, IPv6 /64s)
// does not turn the limits off, and filling the table takes failures from
// as many sources within the failure window, which end. Sources in the
// table keep their own entries.
type guard struct {
	mu       sync.Mutex
	m        map[netip.Addr]*source // by sourcekey.Of
	maxConns int
	maxFails int
	block    time.Duration
	now      func() time.Time
	// maxSources bounds m (maxGuardSources; lower in tests).
	maxSources int
	pool       source // the new sources' entry while m holds no clean one
	// clean is the ring of clean sources, most recently seen first;
	// waiting holds the sources with no connection open whose failure
	// window or block has not ended, soonest end first. A source with
	// connections open is on neither.
	clean   source
	waiting waitHeap
	evicted atomic.Uint64 // clean sources forgotten for a new one
	pooled  atomic.Uint64 // new sources counted on pool
}

type source struct {
	conns   int
	fails   int       // failures since first
	first   time.Time // start of the failure window
	until   time.Time // blocked until
	strikes int       // blocks so far: each doubles the next
	total   uint64    // failures ever (for the log)

	addr       netip.Addr // its key in guard.m (sourcekey.Of)
	prev, next *source    // on guard.clean
	wait       int        // index in guard.waiting, -1 when not there
}

const (
	maxGuardSources = 1 << 16
	maxBlock        = 24 * time.Hour
)

func newGuard(maxConns, maxFails int, block time.Duration) *guard {
	g := &guard{m: map[netip.Addr]*source{}, maxConns: maxConns, maxFails: maxFails, block: block, now: time.Now, maxSources: maxGuardSources}
	g.clean.prev, g.clean.next = &g.clean, &g.clean
	g.waiting.block = block
	return g
}

// addrOf is the peer's IP (invalid for unix sockets).
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// ends is when e's failure window and block are both over (the zero time
// when it has neither).
func (e *source) ends(block time.Duration) time.Time {
	t := e.until
	if e.fails > 0 {
		if w := e.first.Add(block); w.After(t) {
			t = w
		}
	}
	return t
}

// get returns the entry of src's source (sourcekey.Of), making one when
// there is room or a clean source to forget, else the pool shared by new
// sources. Each costs O(log n) at most: no scan of the table.
func (g *guard) get(src netip.Addr, now time.Time) *source {
	src = sourcekey.Of(src)
	g.release(now)
	if e := g.m[src]; e != nil {
		return e
	}
	var e *source
	if len(g.m) >= g.maxSources {
		e = g.clean.prev // the least recently seen clean source
		if e == &g.clean {
			g.pooled.Add(1)
			return &g.pool
		}
		g.unlink(e)
		delete(g.m, e.addr)
		g.evicted.Add(1)
		*e = source{}
	} else {
		e = &source{}
	}
	e.addr, e.wait = src, -1
	g.m[src] = e
	g.settle(e, now)
	return e
}

// release moves the waiting sources whose window and block have ended to
// the clean ring, as seen now.
func (g *guard) release(now time.Time) {
	for len(g.waiting.s) > 0 && now.After(g.waiting.s[0].ends(g.block)) {
		e := heap.Pop(&g.waiting).(*source)
		g.push(e)
	}
}

// settle puts e where its state says after a change: nowhere while it has
// connections open, waiting while a failure window or block lasts, else
// at the front of the clean ring. The pool is in no table.
func (g *guard) settle(e *source, now time.Time) {
	if e == &g.pool {
		return
	}
	switch {
	case e.conns > 0:
		g.unlink(e)
		if e.wait >= 0 {
			heap.Remove(&g.waiting, e.wait)
		}
	case now.After(e.ends(g.block)):
		if e.wait >= 0 {
			heap.Remove(&g.waiting, e.wait)
		}
		g.unlink(e)
		g.push(e)
	default:
		g.unlink(e)
		if e.wait >= 0 {
			heap.Fix(&g.waiting, e.wait)
		} else {
			heap.Push(&g.waiting, e)
		}
	}
}

// push puts e at the front of the clean ring.
func (g *guard) push(e *source) {
	e.prev, e.next = &g.clean, g.clean.next
	e.next.prev = e
	g.clean.next = e
}

// unlink takes e off the clean ring (if it is on it).
func (g *guard) unlink(e *source) {
	if e.next == nil {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// waitHeap orders waiting sources by the end of their window and block.
type waitHeap struct {
	s     []*source
	block time.Duration
}

func (h *waitHeap) Len() int { return len(h.s) }
func (h *waitHeap) Less(i, j int) bool {
	return h.s[i].ends(h.block).Before(h.s[j].ends(h.block))
}
func (h *waitHeap) Swap(i, j int) {
	h.s[i], h.s[j] = h.s[j], h.s[i]
	h.s[i].wait, h.s[j].wait = i, j
}
func (h *waitHeap) Push(x any) {
	e := x.(*source)
	e.wait = len(h.s)
	h.s = append(h.s, e)
}
func (h *waitHeap) Pop() any {
	e := h.s[len(h.s)-1]
	h.s[len(h.s)-1] = nil
	h.s = h.s[:len(h.s)-1]
	e.wait = -1
	return e
}

// admit counts a new connection from src; false when src is blocked or
// has MaxConnsPerSource connections open (blocked says which). The entry
// that counted it goes to done (nil for a unix-socket peer).
func (g *guard) admit(src netip.Addr) (e *source, ok, blocked bool) {
	if !src.IsValid() {
		return nil, true, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e = g.get(src, now)
	if now.Before(e.until) {
		return nil, false, true
	}
	if e.conns >= g.maxConns {
		return nil, false, false
	}
	e.conns++
	g.settle(e, now)
	return e, true, false
}

// done ends a connection counted by admit on e (an entry with open
// connections is never forgotten, so e is still the one in use).
func (g *guard) done(e *source) {
	if e == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.conns > 0 {
		e.conns--
	}
	g.settle(e, g.now())
}

// fail records a failed AES request from src. It returns the source's
// failures so far and, when this one blocked it, for how long.
func (g *guard) fail(src netip.Addr) (total uint64, blockedFor time.Duration) {
	if !src.IsValid() {
		return 0, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e := g.get(src, now)
	defer g.settle(e, now)
	e.total++
	if e.fails == 0 || now.Sub(e.first) > g.block {
		e.fails, e.first = 0, now
	}
	e.fails++
	if e.fails < g.maxFails {
		return e.total, 0
	}
	d := min(g.block<<min(e.strikes, 16), maxBlock)
	e.strikes++
	e.fails = 0
	e.until = now.Add(d)
	return e.total, d
}

// blockedNow is the number of sources blocked at the moment.
func (g *guard) blockedNow() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	now, n := g.now(), 0
	for _, e := range g.m {
		if now.Before(e.until) {
			n++
		}
	}
	if now.Before(g.pool.until) {
		n++ // the new sources, together
	}
	return n
}

// replayCache remembers the nonces of sealed requests for twice the
// accepted clock skew, so a recorded request cannot be sent again.
type replayCache struct {
	mu   sync.Mutex
	seen map[[12]byte]time.Time
}

const maxReplayNonces = 1 << 17

func newReplayCache() *replayCache { return &replayCache{seen: map[[12]byte]time.Time{}} }

// fresh reports whether a request sent at sent with nonce may run now, and
// remembers the nonce.
func (c *replayCache) fresh(nonce [12]byte, sent, now time.Time) bool {
	if sent.Before(now.Add(-wire.SealedMaxSkew)) || sent.After(now.Add(wire.SealedMaxSkew)) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.seen[nonce]; dup {
		return false
	}
	if len(c.seen) >= maxReplayNonces {
		for n, t := range c.seen {
			if now.Sub(t) > 2*wire.SealedMaxSkew {
				delete(c.seen, n)
			}
		}
		if len(c.seen) >= maxReplayNonces {
			return false // flooded with fresh nonces: refuse rather than forget one
		}
	}
	c.seen[nonce] = now
	return true
}
