package hep

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Handler gets one HEP packet (the bytes are valid only during the call)
// and its arrival time. Handlers run on the listener goroutines.
type Handler func(b []byte, recv time.Time)

// ListenConfig configures HEP input listeners (VoIPmonitor's hep_bind_ip,
// hep_bind_port, hep_bind_udp).
type ListenConfig struct {
	Addr    string // host:port, e.g. 127.0.0.1:9060
	UDP     bool   // listen for datagrams (res_hep, heplify's default)
	TCP     bool   // listen for HEP3 streams
	Handler Handler
	// MaxConns bounds concurrent TCP connections (default 64); a new one
	// past it closes the connection idle the longest (counted).
	MaxConns int
	Logger   *slog.Logger
}

// ListenStats counts what the listeners received.
type ListenStats struct {
	Datagrams    uint64
	TCPFrames    uint64
	TCPConns     uint64
	TCPEvicted   uint64 // connections closed, idle the longest, for a new one past MaxConns
	FramingError uint64 // TCP streams closed for a bad HEP3 header
}

// Listener receives HEP over UDP and TCP and hands every packet to the
// handler. Bad HEP inside a packet is the handler's to count; the listener
// counts what it cannot frame.
type Listener struct {
	cfg  ListenConfig
	log  *slog.Logger
	udp  net.PacketConn
	tcp  net.Listener
	mu   sync.Mutex
	open map[*hepConn]struct{} // the TCP connections being read

	datagrams, frames, accepted, evicted, framing atomic.Uint64
}

// hepConn is a TCP connection being read.
type hepConn struct {
	c    net.Conn
	last atomic.Int64 // when its last frame came (or it was accepted), Unix ns
}

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// Listen binds the configured sockets (so errors surface at start-up and
// Addr is known); Serve receives.
func Listen(cfg ListenConfig) (*Listener, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 64
	}
	l := &Listener{cfg: cfg, log: cfg.Logger.With("component", "hep-input"), open: map[*hepConn]struct{}{}}
	var err error
	if cfg.UDP {
		if l.udp, err = net.ListenPacket("udp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("hep: listen udp %s: %w", cfg.Addr, err)
		}
		if uc, ok := l.udp.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(4 << 20)
		}
	}
	if cfg.TCP {
		addr := cfg.Addr
		if l.udp != nil {
			addr = l.udp.LocalAddr().String() // the same port when it was 0
		}
		if l.tcp, err = net.Listen("tcp", addr); err != nil {
			if l.udp != nil {
				l.udp.Close()
			}
			return nil, fmt.Errorf("hep: listen tcp %s: %w", addr, err)
		}
	}
	return l, nil
}

// UDPAddr and TCPAddr are the bound addresses (nil when not listening).
func (l *Listener) UDPAddr() net.Addr {
	if l.udp == nil {
		return nil
	}
	return l.udp.LocalAddr()
}

func (l *Listener) TCPAddr() net.Addr {
	if l.tcp == nil {
		return nil
	}
	return l.tcp.Addr()
}

// Serve receives until ctx ends, then closes the sockets.
func (l *Listener) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		if l.udp != nil {
			l.udp.Close()
		}
		if l.tcp != nil {
			l.tcp.Close()
		}
	})
	defer stop()
	if l.udp != nil {
		l.log.Info("HEP input listening", "udp", l.udp.LocalAddr())
		wg.Add(1)
		go func() { defer wg.Done(); l.serveUDP(ctx) }()
	}
	if l.tcp != nil {
		l.log.Info("HEP input listening", "tcp", l.tcp.Addr())
		wg.Add(1)
		go func() { defer wg.Done(); l.serveTCP(ctx, &wg) }()
	}
	wg.Wait()
	return ctx.Err()
}

func (l *Listener) serveUDP(ctx context.Context) {
	buf := make([]byte, maxDatagram)
	for {
		n, _, err := l.udp.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("HEP UDP read", "err", err)
			continue
		}
		l.datagrams.Add(1)
		l.cfg.Handler(buf[:n], time.Now())
	}
}

func (l *Listener) serveTCP(ctx context.Context, wg *sync.WaitGroup) {
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("HEP TCP accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		hc := &hepConn{c: c}
		hc.last.Store(time.Now().UnixNano())
		l.admit(hc)
		l.accepted.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer l.drop(hc)
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			defer c.Close()
			if err := l.readStream(c, &hc.last); err != nil && ctx.Err() == nil {
				l.log.Debug("HEP TCP stream closed", "remote", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

// admit adds a connection; past MaxConns the one idle the longest is
// closed for it. Refusing the new one instead let MaxConns idle
// connections (opened and left silent) lock every sender out for good.
func (l *Listener) admit(hc *hepConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.open) >= l.cfg.MaxConns {
		var idle *hepConn
		for o := range l.open {
			if idle == nil || o.last.Load() < idle.last.Load() {
				idle = o
			}
		}
		delete(l.open, idle)
		idle.c.Close() // its reader goroutine ends
		l.evicted.Add(1)
		l.log.Debug("HEP TCP connection closed for a new one", "remote", idle.c.RemoteAddr())
	}
	l.open[hc] = struct{}{}
}

func (l *Listener) drop(hc *hepConn) {
	l.mu.Lock()
	delete(l.open, hc)
	l.mu.Unlock()
}

// readStream frames a HEP3 TCP stream by the header's total length; last
// gets the time of each frame.
func (l *Listener) readStream(r io.Reader, last *atomic.Int64) error {
	br := bufio.NewReaderSize(r, maxDatagram)
	for {
		hdr, err := br.Peek(HeaderLen)
		if err != nil {
			if errors.Is(err, io.EOF) && len(hdr) == 0 {
				return nil
			}
			return err
		}
		n, _, err := FrameLen(hdr)
		if err != nil {
			l.framing.Add(1)
			return err // no way to resynchronise a stream reliably
		}
		frame, err := br.Peek(n)
		if err != nil {
			return err
		}
		l.frames.Add(1)
		now := time.Now()
		last.Store(now.UnixNano())
		l.cfg.Handler(frame, now)
		if _, err := br.Discard(n); err != nil {
			return err
		}
	}
}

// Stats returns the listeners' counters.
func (l *Listener) Stats() ListenStats {
	return ListenStats{Datagrams: l.datagrams.Load(), TCPFrames: l.frames.Load(), TCPConns: l.accepted.Load(),
		TCPEvicted: l.evicted.Load(), FramingError: l.framing.Load()}
}

// Register exposes the listeners' counters on reg.
func (l *Listener) Register(reg prometheus.Registerer) error {
	return registerCounters(reg, []counterFunc{
		{"pbx_hep_input_datagrams_total", "HEP UDP datagrams received.", l.datagrams.Load},
		{"pbx_hep_input_tcp_frames_total", "HEP3 packets received over TCP.", l.frames.Load},
		{"pbx_hep_input_tcp_connections_total", "HEP TCP connections accepted.", l.accepted.Load},
		{"pbx_hep_input_tcp_evicted_total", "HEP TCP connections closed, idle the longest, for a new one past the connection limit.", l.evicted.Load},
		{"pbx_hep_input_tcp_framing_errors_total", "HEP TCP streams closed for a header that is not HEP3.", l.framing.Load},
	})
}

type counterFunc struct {
	name, help string
	f          func() uint64
}

func registerCounters(reg prometheus.Registerer, cs []counterFunc) error {
	for _, c := range cs {
		f := c.f
		if err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(f()) })); err != nil {
			return err
		}
	}
	return nil
}
