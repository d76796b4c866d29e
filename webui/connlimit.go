package webui

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// connLimit bounds the open connections of the HTTP listener
// (ServerConfig.MaxConns), websockets included. At the bound a new
// connection takes the place of an idle keep-alive one (the client opens
// another when it needs one); with none idle it is closed at once.
type connLimit struct {
	max int

	mu   sync.Mutex
	open map[*limitedConn]struct{} // holding a slot
	idle map[*limitedConn]struct{} // keep-alive connections between requests

	refused, evicted atomic.Uint64
}

func newConnLimit(max int) *connLimit {
	return &connLimit{max: max, open: map[*limitedConn]struct{}{}, idle: map[*limitedConn]struct{}{}}
}

// limitedConn gives its slot back when closed (by net/http, or by a
// websocket that took it over).
type limitedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.remove(c) })
	return c.Conn.Close()
}

func (l *connLimit) remove(c *limitedConn) {
	l.mu.Lock()
	delete(l.open, c)
	delete(l.idle, c)
	l.mu.Unlock()
}

// admit tracks c, making room by closing an idle connection when at the
// bound; nil when there is no room.
func (l *connLimit) admit(c net.Conn) *limitedConn {
	lc := &limitedConn{Conn: c, l: l}
	l.mu.Lock()
	var victim *limitedConn
	if len(l.open) >= l.max {
		for v := range l.idle {
			victim = v
			break
		}
		if victim == nil {
			l.mu.Unlock()
			l.refused.Add(1)
			return nil
		}
		delete(l.open, victim)
		delete(l.idle, victim)
	}
	l.open[lc] = struct{}{}
	l.mu.Unlock()
	if victim != nil {
		l.evicted.Add(1)
		victim.once.Do(func() {}) // its slot is already given away
		_ = victim.Conn.Close()   // net/http's read fails and its goroutine ends
	}
	return lc
}

// state is http.Server.ConnState: it keeps the set of idle connections.
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
