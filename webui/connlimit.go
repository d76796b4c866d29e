package webui

import (
	"container/list"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connLimit bounds the open connections of the HTTP listener
// (ServerConfig.MaxConns), websockets included. At the bound a new
// connection takes the place of an idle keep-alive one (the client opens
// another when it needs one), else of the oldest one that has sent no
// complete request (http.StateNew) for longer than grace
// (ServerConfig.HeaderGrace): silent or trickling sockets would otherwise
// each hold a slot for ReadHeaderTimeout, and a client renewing the bound's
// worth of them locks everyone out. With neither, the new connection is
// closed at once.
type connLimit struct {
	max   int
	grace time.Duration
	now   func() time.Time

	mu    sync.Mutex
	open  map[*limitedConn]struct{} // holding a slot
	idle  map[*limitedConn]struct{} // keep-alive connections between requests
	fresh list.List                 // of *limitedConn: no request read yet, oldest first

	refused, evicted atomic.Uint64
}

func newConnLimit(max int, grace time.Duration) *connLimit {
	return &connLimit{max: max, grace: grace, now: time.Now,
		open: map[*limitedConn]struct{}{}, idle: map[*limitedConn]struct{}{}}
}

// limitedConn gives its slot back when closed (by net/http, or by a
// websocket that took it over).
type limitedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
	// under l.mu:
	admitted time.Time
	fresh    *list.Element // in l.fresh while no request has been read
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.remove(c) })
	return c.Conn.Close()
}

func (l *connLimit) remove(c *limitedConn) {
	l.mu.Lock()
	l.forgetLocked(c)
	l.mu.Unlock()
}

func (l *connLimit) forgetLocked(c *limitedConn) {
	delete(l.open, c)
	delete(l.idle, c)
	l.unfreshLocked(c)
}

// unfreshLocked notes that c has read a request (or is gone).
func (l *connLimit) unfreshLocked(c *limitedConn) {
	if c.fresh != nil {
		l.fresh.Remove(c.fresh)
		c.fresh = nil
	}
}

// admit tracks c, making room when at the bound by closing an idle
// connection, else the oldest one still without a request past the grace;
// nil when there is no room.
func (l *connLimit) admit(c net.Conn) *limitedConn {
	now := l.now()
	lc := &limitedConn{Conn: c, l: l, admitted: now}
	l.mu.Lock()
	var victim *limitedConn
	if len(l.open) >= l.max {
		for v := range l.idle {
			victim = v
			break
		}
		if e := l.fresh.Front(); victim == nil && e != nil {
			if v := e.Value.(*limitedConn); now.Sub(v.admitted) > l.grace {
				victim = v
			}
		}
		if victim == nil {
			l.mu.Unlock()
			l.refused.Add(1)
			return nil
		}
		l.forgetLocked(victim)
	}
	l.open[lc] = struct{}{}
	lc.fresh = l.fresh.PushBack(lc)
	l.mu.Unlock()
	if victim != nil {
		l.evicted.Add(1)
		victim.once.Do(func() {}) // its slot is already given away
		_ = victim.Conn.Close()   // net/http's read fails and its goroutine ends
	}
	return lc
}

// state is http.Server.ConnState: it keeps the set of idle connections and
// ends a connection's freshness once net/http has read a request from it
// (StateActive), or it was taken over (StateHijacked).
func (l *connLimit) state(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, tracked := l.open[lc]; !tracked {
		return
	}
	if st != http.StateNew {
		l.unfreshLocked(lc)
	}
	if st == http.StateIdle {
		l.idle[lc] = struct{}{}
	} else {
		delete(l.idle, lc)
	}
}

// openNow is the number of connections holding a slot.
func (l *connLimit) openNow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

// limitedListener admits accepted connections through a connLimit.
type limitedListener struct {
	net.Listener
	l *connLimit
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := ln.l.admit(c); lc != nil {
			return lc, nil
		}
		_ = c.Close()
	}
}
