package ami

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Response is the answer to one action. For list actions (EventList: start)
// Items holds the item events and Complete the closing event.
type Response struct {
	Message
	Items    []Message
	Complete *Message
}

// ConnConfig configures one connection.
type ConnConfig struct {
	Limits       Limits
	WriteTimeout time.Duration // per write; default 5 s
	Logger       *slog.Logger
	// OnEvent receives every asynchronous event on the reader goroutine. It
	// must not block (hand off to a bounded queue).
	OnEvent func(Message)
	// OnList, when set, receives list results of actions sent with
	// DoPublish, on the reader goroutine, in stream order.
	OnList func(r *Response)
	// MaxListItems bounds the item events of one list answer (EventList;
	// default 100,000): a server that never completes a list failed the
	// action only at its timeout, holding every item it had sent. Past it
	// the action fails with ErrListTooLong; later items come as events.
	MaxListItems int
}

// Conn is one AMI connection: a single reader goroutine parses and
// dispatches; any number of goroutines may call Do concurrently.
type Conn struct {
	nc      net.Conn
	cfg     ConnConfig
	log     *slog.Logger
	banner  string
	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[string]*pending
	err     error
	done    chan struct{}
	seq     atomic.Uint64

	malformed atomic.Uint64
	events    atomic.Uint64
}

type pending struct {
	action  string
	publish bool
	resp    *Response
	ch      chan *Response // cap 1
	tooLong bool           // the list passed MaxListItems (set before ch is sent to)
}

// NewConn reads the banner from nc and starts the reader goroutine. The
// reader stops when nc fails or Close is called; Done is closed then.
func NewConn(ctx context.Context, nc net.Conn, cfg ConnConfig) (*Conn, error) {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxListItems <= 0 {
		cfg.MaxListItems = 100000
	}
	c := &Conn{nc: nc, cfg: cfg, log: cfg.Logger, pending: map[string]*pending{}, done: make(chan struct{})}
	r := NewReader(nc, cfg.Limits)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Now()) })
	m, err := r.ReadMessage()
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %w", ErrBanner, err)
	}
	if !strings.HasPrefix(m.Banner, bannerPrefix) {
		nc.Close()
		return nil, fmt.Errorf("%w: %q", ErrBanner, m.String())
	}
	_ = nc.SetReadDeadline(time.Time{})
	c.banner = m.Banner
	go c.readLoop(r)
	return c, nil
}

// Banner returns the greeting, e.g. "Asterisk Call Manager/9.0.0".
func (c *Conn) Banner() string { return c.banner }

// Version returns the protocol version from the banner ("9.0.0").
func (c *Conn) Version() string { return strings.TrimPrefix(c.banner, bannerPrefix) }

// Done is closed when the connection is gone.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (nil while it is up).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Malformed counts packets skipped as malformed.
func (c *Conn) Malformed() uint64 { return c.malformed.Load() }

// Close closes the socket and waits for the reader to stop.
func (c *Conn) Close() error {
	err := c.nc.Close()
	<-c.done
	return err
}

func (c *Conn) readLoop(r *Reader) {
	var err error
	for {
		var m Message
		m, err = r.ReadMessage()
		if err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) {
				c.malformed.Add(1)
				c.log.Debug("malformed packet skipped", "err", err)
				continue
			}
			break
		}
		c.dispatch(m)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	c.mu.Lock()
	c.err = err
	pend := c.pending
	c.pending = map[string]*pending{}
	c.mu.Unlock()
	for _, p := range pend {
		close(p.ch)
	}
	close(c.done)
}

func (c *Conn) dispatch(m Message) {
	id := m.ActionID()
	switch m.Kind() {
	case KindResponse:
		c.mu.Lock()
		p := c.pending[id]
		if p == nil {
			c.mu.Unlock()
			c.log.Debug("response without a waiting action", "actionid", id)
			return
		}
		p.resp = &Response{Message: m}
		if strings.EqualFold(m.Get("EventList"), "start") {
			c.mu.Unlock()
			return // wait for items and the Complete event
		}
		delete(c.pending, id)
		c.mu.Unlock()
		p.ch <- p.resp
		return
	case KindEvent:
		if id != "" {
			c.mu.Lock()
			p := c.pending[id]
			if p != nil && p.resp != nil {
				el := m.Get("EventList")
				if strings.EqualFold(el, "Complete") || strings.EqualFold(el, "Cancelled") {
					delete(c.pending, id)
					c.mu.Unlock()
					p.resp.Complete = &m
					if p.publish && c.cfg.OnList != nil {
						c.cfg.OnList(p.resp)
					}
					p.ch <- p.resp
					return
				}
				if len(p.resp.Items) >= c.cfg.MaxListItems {
					delete(c.pending, id)
					p.tooLong = true
					c.mu.Unlock()
					p.ch <- p.resp
					return
				}
				p.resp.Items = append(p.resp.Items, m)
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
		}
		c.events.Add(1)
		if c.cfg.OnEvent != nil {
			c.cfg.OnEvent(m)
		}
	default:
		c.malformed.Add(1)
		c.log.Debug("packet is neither response nor event", "first", m.String())
	}
}

// Do sends an action and waits for its response (and, for list actions,
// every item up to the Complete event). A "Response: Error" comes back as
// the Response plus an *ActionError.
func (c *Conn) Do(ctx context.Context, a Action) (*Response, error) {
	return c.do(ctx, a, false)
}

// DoPublish is Do that also hands the list result to ConnConfig.OnList.
func (c *Conn) DoPublish(ctx context.Context, a Action) (*Response, error) {
	return c.do(ctx, a, true)
}

func (c *Conn) do(ctx context.Context, a Action, publish bool) (*Response, error) {
	id := ""
	for _, f := range a.Fields {
		if strings.EqualFold(f.Key, "ActionID") {
			id = f.Value
		}
	}
	if id == "" {
		id = "pbxagent-" + strconv.FormatUint(c.seq.Add(1), 10)
	} else {
		a.Fields = removeKey(a.Fields, "ActionID")
	}
	p := &pending{action: a.Name, publish: publish, ch: make(chan *Response, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	if _, dup := c.pending[id]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("ami: ActionID %q already in flight", id)
	}
	c.pending[id] = p
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		if c.pending[id] == p {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}
	if err := c.write(ctx, a.wire(id)); err != nil {
		forget()
		return nil, err
	}
	select {
	case r, ok := <-p.ch:
		if !ok {
			return nil, fmt.Errorf("%w: %s: %w", ErrClosed, a.Name, c.Err())
		}
		if p.tooLong {
			return nil, fmt.Errorf("%w: %s: over %d items", ErrListTooLong, a.Name, c.cfg.MaxListItems)
		}
		resp := r.Get("Response")
		if !strings.EqualFold(resp, "Success") && !strings.EqualFold(resp, "Goodbye") && !strings.EqualFold(resp, "Follows") {
			return r, &ActionError{Action: a.Name, Response: resp, Message: r.Get("Message")}
		}
		return r, nil
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("ami: %s: %w", a.Name, ctx.Err())
	}
}

func removeKey(fs []Field, key string) []Field {
	out := fs[:0:0]
	for _, f := range fs {
		if !strings.EqualFold(f.Key, key) {
			out = append(out, f)
		}
	}
	return out
}

func (c *Conn) write(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	dl := time.Now().Add(c.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.nc.SetWriteDeadline(dl)
	if _, err := c.nc.Write(b); err != nil {
		// A partial write desynchronises the stream: drop the connection.
		c.nc.Close()
		return fmt.Errorf("ami: write: %w", err)
	}
	return nil
}

// Login authenticates with a plain secret, or with Challenge/MD5 when md5 is
// set. events is the Events: header ("on", "off", "call,system"; "" omits it).
func (c *Conn) Login(ctx context.Context, user, secret string, md5Auth bool, events string) error {
	a := NewAction("Login", "Username", user)
	if md5Auth {
		r, err := c.Do(ctx, NewAction("Challenge", "AuthType", "MD5"))
		if err != nil {
			return fmt.Errorf("ami: challenge: %w", err)
		}
		sum := md5.Sum([]byte(r.Get("Challenge") + secret))
		a.Fields = append(a.Fields, Field{"AuthType", "MD5"}, Field{"Key", hex.EncodeToString(sum[:])})
	} else {
		a.Fields = append(a.Fields, Field{"Secret", secret})
	}
	if events != "" {
		a.Fields = append(a.Fields, Field{"Events", events})
	}
	_, err := c.Do(ctx, a)
	var ae *ActionError
	if errors.As(err, &ae) {
		return fmt.Errorf("%w: user %q: %s", ErrAuth, user, ae.Message)
	}
	if err != nil {
		return fmt.Errorf("ami: login: %w", err)
	}
	return nil
}

// Logoff sends Logoff and waits for Goodbye.
func (c *Conn) Logoff(ctx context.Context) error {
	_, err := c.Do(ctx, NewAction("Logoff"))
	return err
}
