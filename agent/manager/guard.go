package manager

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"pbx-agent/agent/manager/wire"
)

// guard keeps the per-source state of the TCP listener: connections open
// now (Config.MaxConnsPerSource) and failed AES requests (Config.AESMaxFailures
// within Config.AESBlock block the source for AESBlock, doubled at every
// new block up to maxBlock). A source is an IP address; unix-socket peers
// have none and are never limited here. While the table is full of sources
// that cannot be forgotten yet, every new source shares one entry (pool):
// their failures block them together and their connections share one
// source's cap, so holding many addresses (an IPv6 /64) does not turn the
// limits off; sources already in the table keep their own.
type guard struct {
	mu       sync.Mutex
	m        map[netip.Addr]*source
	maxConns int
	maxFails int
	block    time.Duration
	now      func() time.Time
	// maxSources bounds m (maxGuardSources; lower in tests).
	maxSources int
	pool       source    // the new sources' entry while m is full
	swept      time.Time // last scan of a full m for idle entries
}

type source struct {
	conns   int
	fails   int       // failures since first
	first   time.Time // start of the failure window
	until   time.Time // blocked until
	strikes int       // blocks so far: each doubles the next
	total   uint64    // failures ever (for the log)
}

const (
	maxGuardSources = 1 << 16
	maxBlock        = 24 * time.Hour
)

func newGuard(maxConns, maxFails int, block time.Duration) *guard {
	return &guard{m: map[netip.Addr]*source{}, maxConns: maxConns, maxFails: maxFails, block: block, now: time.Now, maxSources: maxGuardSources}
}

// addrOf is the peer's IP (invalid for unix sockets).
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// get returns src's entry, making one when there is room, else the pool
// shared by new sources. A full table is scanned for idle entries at most
// once a second (a scan of maxGuardSources entries on every connection
// would make each new source's connection cost that scan).
func (g *guard) get(src netip.Addr, now time.Time) *source {
	e := g.m[src]
	if e != nil {
		return e
	}
	if len(g.m) >= g.maxSources {
		if now.Sub(g.swept) >= time.Second || now.Before(g.swept) {
			g.swept = now
			for a, v := range g.m {
				if v.idle(now, g.block) {
					delete(g.m, a)
				}
			}
		}
		if len(g.m) >= g.maxSources {
			return &g.pool
		}
	}
	e = &source{}
	g.m[src] = e
	return e
}

func (e *source) idle(now time.Time, block time.Duration) bool {
	return e.conns == 0 && now.After(e.until) && now.Sub(e.first) > block && now.Sub(e.until) > maxBlock
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
