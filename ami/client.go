package ami

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"pbx-agent/internal/every"
	"pbx-agent/internal/opt"
)

// NoteKind says what a Notification carries.
type NoteKind uint8

const (
	// NoteEvent: an asynchronous AMI event.
	NoteEvent NoteKind = iota + 1
	// NoteGap: the connection was lost (or events were dropped); what
	// happened meanwhile is unknown until the next NoteSnapshot.
	NoteGap
	// NoteSnapshot: the CoreShowChannel items of a resync, delivered at the
	// stream position of their Complete event.
	NoteSnapshot
)

// Notification is what subscribers receive.
type Notification struct {
	Kind   NoteKind
	Event  Message   // NoteEvent
	Items  []Message // NoteSnapshot
	Reason string    // NoteGap
}

// Subscription is a bounded queue of notifications. When it is full, new
// notifications are dropped and counted; the reader never waits for it.
type Subscription struct {
	ch      chan Notification
	dropped atomic.Uint64
	owner   *Client
}

// C is the queue.
func (s *Subscription) C() <-chan Notification { return s.ch }

// Dropped counts notifications lost because the queue was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close unsubscribes. C is closed once Client.Run has returned.
func (s *Subscription) Close() { s.owner.unsubscribe(s) }

func (s *Subscription) offer(n Notification) {
	select {
	case s.ch <- n:
	default:
		s.dropped.Add(1)
		s.owner.dropped.Add(1)
	}
}

// Config configures a Client. Zero values are usable where noted.
type Config struct {
	Addr     string      // host:port, default 127.0.0.1:5038
	TLS      *tls.Config // non-nil: TLS
	Username string
	Secret   string
	MD5      bool   // Challenge/MD5 login instead of a plain Secret
	Events   string // Login Events: header, default "on"
	// Dial opens the transport (tests pass net.Pipe or loopback); default net.Dialer.
	Dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger        *slog.Logger
	Limits        Limits
	WriteTimeout  time.Duration // default 5 s
	PingInterval  time.Duration // default 30 s; < 0 disables keepalive
	ActionTimeout time.Duration // for the client's own actions, default 10 s
	BackoffMin    time.Duration // default 500 ms
	BackoffMax    time.Duration // default 10 s
	// ProbeMax caps the wait while the port refuses connections (Asterisk
	// restarting): a refused connect costs the server nothing, so the
	// client probes at least this often and logs in as soon as the port
	// answers. Default 1 s.
	ProbeMax    time.Duration
	AuthBackoff time.Duration // minimum wait after an auth failure, default 30 s
	// BannerTimeout bounds the wait for the server's greeting (a port that
	// accepts and never speaks), default 10 s.
	BannerTimeout time.Duration
	// HealthyAfter is how long a session must stay up before the backoff
	// starts over: a server that accepts the login and then drops or
	// misbehaves is retried with a growing wait, not in a loop. Default 30 s.
	HealthyAfter time.Duration
	// TrackerQueue is the tracker's queue length (default 8192).
	TrackerQueue int
	Tracker      TrackerConfig
}

func (c Config) withDefaults() Config {
	opt.Default(&c.Addr, "127.0.0.1:5038")
	opt.Default(&c.Events, "on")
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	opt.Default(&c.WriteTimeout, 5*time.Second)
	if c.PingInterval == 0 {
		c.PingInterval = 30 * time.Second
	}
	opt.Default(&c.ActionTimeout, 10*time.Second)
	opt.Default(&c.BackoffMin, 500*time.Millisecond)
	opt.Default(&c.BackoffMax, 10*time.Second)
	opt.Default(&c.ProbeMax, time.Second)
	opt.Default(&c.BannerTimeout, 10*time.Second)
	opt.Default(&c.HealthyAfter, 30*time.Second)
	opt.Default(&c.AuthBackoff, 30*time.Second)
	opt.Default(&c.TrackerQueue, 8192)
	return c
}

// Stats are the client's counters.
type Stats struct {
	Connects, Failures, Resyncs, Malformed uint64
	TrackerDropped                         uint64
	// TrackerRefused counts events of new channels past the tracker's limit
	// of live channels (100,000).
	TrackerRefused uint64
	// AuthFailures counts refused logins; Events the events received;
	// Dropped the notifications lost over every subscriber's queue.
	AuthFailures, Events, Dropped uint64
	// LastError is when the last connect failed or a session was lost
	// (zero: never); Err says why.
	LastError time.Time
	Err       string
}

// State is where the client is in its connect cycle.
type State int32

const (
	StateConnecting State = iota // dialling, reading the banner, logging in
	StateUp                      // logged in
	StateBackoff                 // waiting before the next attempt
)

func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateBackoff:
		return "backoff"
	}
	return "connecting"
}

// Client keeps one AMI session up: it reconnects with capped exponential
// backoff and jitter, resyncs the channel tracker after every (re)connect,
// and fans events out to subscribers.
type Client struct {
	cfg     Config
	log     *slog.Logger
	tracker *Tracker

	mu   sync.Mutex
	conn *Conn
	subs []*Subscription
	ran  atomic.Bool // Run has been called

	trackSub                               *Subscription
	connects, failures, resyncs, malformed atomic.Uint64
	authFailures, events, dropped          atomic.Uint64
	state                                  atomic.Int32
	lastErr                                atomic.Pointer[lastError]
	connected                              chan struct{} // signalled (non-blocking) on each successful login
	resyncReq                              chan struct{} // cap 1: the tracker asks for a resync
}

// New returns a client; call Run.
func New(cfg Config) *Client {
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, log: cfg.Logger.With("component", "ami"), tracker: NewTracker(cfg.Tracker),
		connected: make(chan struct{}, 1), resyncReq: make(chan struct{}, 1)}
	c.trackSub = c.Subscribe(cfg.TrackerQueue)
	return c
}

type lastError struct {
	at  time.Time
	err string
}

// State returns where the client is: connecting, up (logged in) or backing off.
func (c *Client) State() State { return State(c.state.Load()) }

func (c *Client) fail(err error) {
	c.failures.Add(1)
	if errors.Is(err, ErrAuth) {
		c.authFailures.Add(1)
	}
	c.lastErr.Store(&lastError{at: time.Now(), err: err.Error()})
}

// Tracker returns the channel table kept by this client.
func (c *Client) Tracker() *Tracker { return c.tracker }

// Stats returns the counters.
func (c *Client) Stats() Stats {
	st := Stats{Connects: c.connects.Load(), Failures: c.failures.Load(), Resyncs: c.resyncs.Load(),
		Malformed: c.malformed.Load(), TrackerDropped: c.trackSub.Dropped(), TrackerRefused: c.tracker.Refused(),
		AuthFailures: c.authFailures.Load(), Events: c.events.Load(), Dropped: c.dropped.Load()}
	if le := c.lastErr.Load(); le != nil {
		st.LastError, st.Err = le.at, le.err
	}
	return st
}

// Up reports whether a logged-in session is open now.
func (c *Client) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// Connected is signalled after each successful login (capacity 1).
func (c *Client) Connected() <-chan struct{} { return c.connected }

// Subscribe adds a subscriber with a queue of n notifications.
func (c *Client) Subscribe(n int) *Subscription {
	opt.Default(&n, 1024)
	s := &Subscription{ch: make(chan Notification, n), owner: c}
	c.mu.Lock()
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	return s
}

func (c *Client) unsubscribe(s *Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.subs {
		if x == s {
			c.subs = append(c.subs[:i:i], c.subs[i+1:]...)
			return
		}
	}
}

func (c *Client) publish(n Notification) {
	c.mu.Lock()
	subs := c.subs
	c.mu.Unlock()
	for _, s := range subs {
		s.offer(n)
	}
}

// Do runs an action on the current session.
func (c *Client) Do(ctx context.Context, a Action) (*Response, error) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return nil, ErrNotConnected
	}
	return conn.Do(ctx, a)
}

// Backoff returns the wait before reconnect attempt n (0-based): min·2^n
// capped at max, with the upper half jittered.
func Backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + rand.N(half+1)
}

// Run keeps the session up until ctx ends; it returns ctx's error. Run may
// be called once.
func (c *Client) Run(ctx context.Context) error {
	if c.ran.Swap(true) {
		return errors.New("ami: Client.Run called twice")
	}

	var wg sync.WaitGroup
	wants := make(chan Want, 1024)
	var wantsDropped atomic.Uint64
	wg.Go(func() { c.trackLoop(ctx, wants, &wantsDropped) })
	wg.Go(func() { c.resolveLoop(ctx, wants) })
	defer func() {
		wg.Wait()
		c.mu.Lock()
		for _, s := range c.subs {
			close(s.ch)
		}
		c.subs = nil
		c.mu.Unlock()
	}()

	defer c.state.Store(int32(StateConnecting))
	attempt := 0
	wait := func(d time.Duration) error {
		c.state.Store(int32(StateBackoff))
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		c.state.Store(int32(StateConnecting))
		return nil
	}
	for {
		c.state.Store(int32(StateConnecting))
		conn, err := c.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.fail(err)
			d := Backoff(attempt, c.cfg.BackoffMin, c.cfg.BackoffMax)
			switch {
			case errors.Is(err, ErrAuth):
				d = max(d, c.cfg.AuthBackoff)
			case errors.Is(err, syscall.ECONNREFUSED):
				d = min(d, c.cfg.ProbeMax) // nobody listens yet: probe often
			}
			attempt++
			c.log.Warn("AMI connect failed", "addr", c.cfg.Addr, "err", err, "retry_in", d)
			if err := wait(d); err != nil {
				return err
			}
			continue
		}
		c.connects.Add(1)
		c.state.Store(int32(StateUp))
		began := time.Now()
		c.session(ctx, conn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lost := fmt.Errorf("connection lost: %w", conn.Err())
		c.fail(lost)
		c.publish(Notification{Kind: NoteGap, Reason: lost.Error()})
		if time.Since(began) >= c.cfg.HealthyAfter {
			// A healthy session ended (Asterisk restarted): reconnect at
			// once, and start the backoff over.
			attempt = 0
			c.log.Warn("AMI connection lost", "err", conn.Err())
			continue
		}
		// Up only briefly: a server that takes the login and then drops or
		// misbehaves is not retried in a loop.
		d := Backoff(attempt, c.cfg.BackoffMin, c.cfg.BackoffMax)
		attempt++
		c.log.Warn("AMI connection lost soon after login", "err", conn.Err(), "up", time.Since(began).Round(time.Millisecond), "retry_in", d)
		if err := wait(d); err != nil {
			return err
		}
	}
}

func (c *Client) connect(ctx context.Context) (*Conn, error) {
	dial := c.cfg.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ami: dial %s: %w", c.cfg.Addr, err)
	}
	if c.cfg.TLS != nil {
		tc := tls.Client(nc, c.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("ami: tls %s: %w", c.cfg.Addr, err)
		}
		nc = tc
	}
	bctx, bcancel := context.WithTimeout(ctx, c.cfg.BannerTimeout)
	defer bcancel()
	conn, err := NewConn(bctx, nc, ConnConfig{
		Limits: c.cfg.Limits, WriteTimeout: c.cfg.WriteTimeout, Logger: c.log,
		OnEvent: func(m Message) {
			c.events.Add(1)
			c.publish(Notification{Kind: NoteEvent, Event: m})
		},
		OnList: func(r *Response) {
			c.resyncs.Add(1)
			c.publish(Notification{Kind: NoteSnapshot, Items: r.Items})
		},
	})
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, c.cfg.ActionTimeout)
	defer cancel()
	if err := conn.Login(lctx, c.cfg.Username, c.cfg.Secret, c.cfg.MD5, c.cfg.Events); err != nil {
		conn.Close()
		return nil, err
	}
	c.log.Info("AMI connected", "addr", c.cfg.Addr, "version", conn.Version(), "user", c.cfg.Username)
	return conn, nil
}

// session runs one logged-in connection: resync, keepalive; returns when
// the connection ends or ctx is done.
func (c *Client) session(ctx context.Context, conn *Conn) {
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.conn = nil
		c.mu.Unlock()
		conn.Close()
		c.malformed.Add(conn.Malformed())
	}()
	select {
	case c.connected <- struct{}{}:
	default:
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			if err := c.resync(sctx, conn); err != nil && sctx.Err() == nil {
				c.log.Warn("AMI resync failed", "err", err)
				conn.nc.Close()
				return
			}
			select {
			case <-sctx.Done():
				return
			case <-c.resyncReq:
			}
		}
	})
	if c.cfg.PingInterval > 0 {
		wg.Go(func() { c.keepalive(sctx, conn) })
	}
	select {
	case <-ctx.Done():
	case <-conn.Done():
	}
	cancel()
	conn.nc.Close()
}

// resync marks a gap and asks for CoreShowChannels; the reader publishes the
// items as a NoteSnapshot in stream order.
func (c *Client) resync(ctx context.Context, conn *Conn) error {
	c.publish(Notification{Kind: NoteGap, Reason: "resync"})
	actx, cancel := context.WithTimeout(ctx, c.cfg.ActionTimeout)
	defer cancel()
	_, err := conn.DoPublish(actx, NewAction("CoreShowChannels"))
	return err
}

func (c *Client) keepalive(ctx context.Context, conn *Conn) {
	every.Tick(ctx, c.cfg.PingInterval, func(time.Time) bool {
		pctx, cancel := context.WithTimeout(ctx, c.cfg.ActionTimeout)
		_, err := conn.Do(pctx, NewAction("Ping"))
		cancel()
		if err != nil && ctx.Err() == nil {
			c.log.Warn("AMI ping failed; reconnecting", "err", err)
			conn.nc.Close()
			return false
		}
		return true
	})
}

// trackLoop feeds the tracker from its subscription; a drop in that queue
// means the table may be wrong, so it forces a resync.
func (c *Client) trackLoop(ctx context.Context, wants chan<- Want, wantsDropped *atomic.Uint64) {
	seen := uint64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-c.trackSub.ch:
			if d := c.trackSub.Dropped(); d != seen {
				seen = d
				c.tracker.Apply(Notification{Kind: NoteGap, Reason: "tracker queue overflow"})
				select {
				case c.resyncReq <- struct{}{}:
				default: // one already pending
				}
			}
			for _, w := range c.tracker.Apply(n) {
				select {
				case wants <- w:
				default:
					wantsDropped.Add(1)
				}
			}
		}
	}
}

// resolveLoop answers the tracker's Getvar wants (the SIP Call-ID).
func (c *Client) resolveLoop(ctx context.Context, wants <-chan Want) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-wants:
			actx, cancel := context.WithTimeout(ctx, c.cfg.ActionTimeout)
			r, err := c.Do(actx, NewAction("Getvar", "Channel", w.Channel, "Variable", w.Variable))
			cancel()
			if err != nil {
				c.log.Debug("Getvar failed", "channel", w.Channel, "variable", w.Variable, "err", err)
				continue
			}
			c.tracker.SetCallID(w.Uniqueid, r.Get("Value"), "Getvar "+w.Variable)
		}
	}
}
