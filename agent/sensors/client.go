package sensors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/agent/manager/client"
	"pbx-agent/agent/manager/wire"
	"pbx-agent/internal/opt"
	"pbx-agent/sniffer/call"
)

// Defaults for zero ClientOptions.
const (
	DefaultTimeout      = 3 * time.Second
	DefaultFileTimeout  = 60 * time.Second
	DefaultMaxPerSensor = 4
	DefaultMaxConns     = 64
	DefaultMaxReply     = 64 << 20
	DefaultMaxFile      = 512 << 20
	DefaultCooldown     = 5 * time.Second
)

// Directory is where a Client finds sensors (*Registry).
type Directory interface {
	List(ctx context.Context) ([]Sensor, error)
	Lookup(ctx context.Context, id int) (Sensor, error)
	SelfID() int
}

// ClientOptions configure a Client.
type ClientOptions struct {
	Dir  Directory // required
	Keys *Keys     // nil = plaintext to every sensor
	// Timeout bounds one command to one sensor (dial, send, whole reply);
	// it is the per-sensor deadline of the listActiveCalls fan-out.
	Timeout time.Duration
	// FileTimeout bounds a getfile (default 60 s).
	FileTimeout time.Duration
	// MaxPerSensor bounds the connections open to one sensor at once
	// (default 4): a hung sensor holds at most this many, each until its
	// deadline, and can never take the slots other sensors need.
	MaxPerSensor int
	// MaxConns bounds the connections open to all sensors (default 64).
	MaxConns int
	MaxReply int64 // listcalls and other text replies (default 64 MiB)
	MaxFile  int64 // getfile replies (default 512 MiB)
	// Cooldown: after a sensor timed out in a fan-out, later fan-outs
	// report it at once instead of waiting for it again, for this long
	// (default 5 s; negative = always wait).
	Cooldown time.Duration
	Logger   *slog.Logger
}

// Counters are the client's figures (for /metrics).
type Counters struct {
	Requests, Failures, Timeouts, Busy, Skipped uint64
	InFlight                                    int64
	// PeakPerSensor is the most connections ever open to one sensor at once.
	PeakPerSensor int64
}

// Client talks to other sensors' manager APIs. The manager protocol is one
// command per connection (the server closes after its reply), so "pooled"
// here means bounded: slots per sensor and in total, taken for the life of
// one exchange. Safe for concurrent use.
type Client struct {
	o   ClientOptions
	log *slog.Logger
	all chan struct{}

	mu      sync.Mutex
	per     map[int]chan struct{}
	coolTil map[int]time.Time

	requests, failures, timeouts, busy, skipped atomic.Uint64
	inFlight, peak                              atomic.Int64
}

// NewClient builds a Client.
func NewClient(o ClientOptions) *Client {
	opt.Default(&o.Timeout, DefaultTimeout)
	opt.Default(&o.FileTimeout, DefaultFileTimeout)
	opt.Default(&o.MaxPerSensor, DefaultMaxPerSensor)
	opt.Default(&o.MaxConns, DefaultMaxConns)
	opt.Default(&o.MaxReply, DefaultMaxReply)
	opt.Default(&o.MaxFile, DefaultMaxFile)
	if o.Cooldown == 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		o: o, log: o.Logger.With("component", "sensors"),
		all: make(chan struct{}, o.MaxConns),
		per: map[int]chan struct{}{}, coolTil: map[int]time.Time{},
	}
}

// Counters returns a snapshot of the client's counters.
func (c *Client) Counters() Counters {
	return Counters{Requests: c.requests.Load(), Failures: c.failures.Load(), Timeouts: c.timeouts.Load(),
		Busy: c.busy.Load(), Skipped: c.skipped.Load(), InFlight: c.inFlight.Load(), PeakPerSensor: c.peak.Load()}
}

// SelfID is the id_sensor of this agent (its calls are served locally).
func (c *Client) SelfID() int { return c.o.Dir.SelfID() }

// acquire takes a slot for sensor id, waiting at most until ctx ends.
func (c *Client) acquire(ctx context.Context, id int) (func(), error) {
	c.mu.Lock()
	sem := c.per[id]
	if sem == nil {
		sem = make(chan struct{}, c.o.MaxPerSensor)
		c.per[id] = sem
	}
	c.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		c.busy.Add(1)
		return nil, fmt.Errorf("%w %d: %w", ErrBusy, id, ctx.Err())
	}
	select {
	case c.all <- struct{}{}:
	case <-ctx.Done():
		<-sem
		c.busy.Add(1)
		return nil, fmt.Errorf("%w (all sensors): %w", ErrBusy, ctx.Err())
	}
	if err := ctx.Err(); err != nil { // a slot freed as the deadline passed
		<-c.all
		<-sem
		c.busy.Add(1)
		return nil, fmt.Errorf("%w %d: %w", ErrBusy, id, err)
	}
	c.inFlight.Add(1)
	for n := int64(len(sem)); ; {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return func() {
		c.inFlight.Add(-1)
		<-c.all
		<-sem
	}, nil
}

// Target is how to reach a sensor's manager API (for live listening's
// listen_stream, which keeps its connection open).
func (c *Client) Target(ctx context.Context, id int) (addr string, key *wire.AESKey, err error) {
	s, err := c.o.Dir.Lookup(ctx, id)
	if err != nil {
		return "", nil, err
	}
	if !s.State.Reachable() {
		return "", nil, fmt.Errorf("%w: sensor %d is %v", ErrOffline, id, s.State)
	}
	if s.Addr() == "" {
		return "", nil, fmt.Errorf("%w: sensor %d", ErrNoAddress, id)
	}
	key, err = c.o.Keys.For(ctx, id, false)
	return s.Addr(), forPeer(key, s), err
}

// forPeer returns the key to talk to s with: a sensor that registered as a
// pbx-agent (agent_version set) gets the authenticated scheme, anything
// else (a VoIPmonitor sniffer) VoIPmonitor's CBC.
func forPeer(key *wire.AESKey, s Sensor) *wire.AESKey {
	if key == nil || s.Version == "" {
		return key
	}
	k := *key
	k.Sealed = true
	return &k
}

// Command sends one manager command to sensor id and returns its reply
// (text replies; at most MaxReply bytes), bounded by Timeout.
func (c *Client) Command(ctx context.Context, id int, cmd string) ([]byte, error) {
	s, err := c.reachable(ctx, id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	return c.do(ctx, s, cmd, c.o.MaxReply)
}

func (c *Client) reachable(ctx context.Context, id int) (Sensor, error) {
	s, err := c.o.Dir.Lookup(ctx, id)
	if err != nil {
		return s, err
	}
	if !s.State.Reachable() {
		return s, fmt.Errorf("%w: sensor %d is %v (heartbeat %s ago)", ErrOffline, id, s.State, s.Age)
	}
	return s, nil
}

// do runs one exchange under a slot, with the sensor's key; a key the
// sensor refuses is re-read once (the `system` row may have changed).
func (c *Client) do(ctx context.Context, s Sensor, cmd string, limit int64) ([]byte, error) {
	addr := s.Addr()
	if addr == "" {
		return nil, fmt.Errorf("%w: sensor %d", ErrNoAddress, s.ID)
	}
	c.requests.Add(1)
	release, err := c.acquire(ctx, s.ID)
	if err != nil {
		c.failures.Add(1)
		return nil, err
	}
	defer release()
	key, err := c.o.Keys.For(ctx, s.ID, false)
	if err != nil {
		c.failures.Add(1)
		return nil, err
	}
	key = forPeer(key, s)
	reply, err := exchange(ctx, addr, cmd, key, limit)
	if errors.Is(err, ErrKeyRejected) || errors.Is(err, ErrNeedAES) {
		if k2, kerr := c.o.Keys.For(ctx, s.ID, true); kerr == nil && !sameKey(key, forPeer(k2, s)) {
			reply, err = exchange(ctx, addr, cmd, forPeer(k2, s), limit)
		}
	}
	if err != nil {
		c.failures.Add(1)
		if errors.Is(err, context.DeadlineExceeded) {
			c.timeouts.Add(1)
		}
		return nil, fmt.Errorf("sensor %d (%s): %w", s.ID, addr, err)
	}
	return reply, nil
}

func sameKey(a, b *wire.AESKey) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Manager replies that say the request was not executed (spec §1.2).
var (
	replyNeedAES       = []byte("need aes!")
	replyFailedDecrypt = []byte("failed aes decrypt!")
)

// exchange is one manager request: dial, send, read until close (at most
// limit bytes), decrypt. ctx bounds it all.
func exchange(ctx context.Context, addr, cmd string, key *wire.AESKey, limit int64) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("dial: %w", err))
	}
	defer conn.Close()
	defer client.BindContext(ctx, conn)()
	req, sess := client.Request(cmd, key)
	if _, err := conn.Write(req); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("send: %w", err))
	}
	// The AES framing adds "aes:" and up to one block of padding; the
	// sealed one a prefix and 21 bytes per 16 KiB record.
	max := limit + 4 + 16
	if sess != nil {
		max = limit + int64(len(wire.SealedReplyPrefix)) + 21*(limit/(16<<10)+2)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(conn, max+1))
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("read reply: %w", err))
	}
	if n > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrReplyTooLarge, limit)
	}
	reply := buf.Bytes()
	if bytes.HasPrefix(reply, replyNeedAES) {
		return nil, ErrNeedAES
	}
	if key != nil {
		pt, err := client.OpenReply(reply, key, sess)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKeyRejected, err)
		}
		reply = pt
	}
	if bytes.HasPrefix(reply, replyFailedDecrypt) {
		return nil, ErrKeyRejected
	}
	return reply, nil
}

// ctxErr prefers the context's error (deadline, cancel) over the I/O error
// it caused.
func ctxErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The conn's deadline is the ctx's: it may fire a moment before ctx's own timer.
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// Pause pauses (on) or resumes recording of call ref on sensor id
// (pausecall / unpausecall).
func (c *Client) Pause(ctx context.Context, id int, ref uint64, on bool) error {
	cmd := "unpausecall"
	if on {
		cmd = "pausecall"
	}
	reply, err := c.Command(ctx, id, fmt.Sprintf("%s 0x%x", cmd, ref))
	if err != nil {
		return err
	}
	text := strings.TrimSpace(string(reply))
	switch {
	case text == "":
		return nil
	case strings.Contains(strings.ToLower(text), "not found"): // "Call id not found"
		return fmt.Errorf("sensors: %w: 0x%x on sensor %d", call.ErrNoCall, ref, id)
	}
	return fmt.Errorf("%w: %s 0x%x on sensor %d: %q", ErrBadReply, cmd, ref, id, text)
}

// GetFile fetches a spool file (path relative to the sensor's spool
// directory) with getfile, bounded by FileTimeout and MaxFile. A file the
// sensor does not have is an error wrapping fs.ErrNotExist.
func (c *Client) GetFile(ctx context.Context, id int, rel string) ([]byte, error) {
	if rel == "" || strings.ContainsAny(rel, " \t\r\n\x00") {
		return nil, fmt.Errorf("%w: spool path %q", ErrBadReply, rel)
	}
	s, err := c.reachable(ctx, id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.FileTimeout)
	defer cancel()
	b, err := c.do(ctx, s, "getfile "+rel, c.o.MaxFile)
	if err != nil {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(b, []byte("error: cannot open file")), bytes.HasPrefix(b, []byte("error: missing file")):
		return nil, fmt.Errorf("%w: %s on sensor %d", fs.ErrNotExist, rel, id)
	case bytes.Equal(bytes.TrimSpace(b), []byte("access denied")):
		return nil, fmt.Errorf("%w: %s on sensor %d", ErrAccessDenied, rel, id)
	}
	return b, nil
}
