// Package tap hears, through Asterisk, calls the sniffer cannot decode
// (SRTP, media on another host): for a listened call it asks ARI for a
// snoop channel on the call's Asterisk channel and an externalMedia
// channel sending µ-law RTP to a UDP port the agent listens on, bridged
// together (spec asterisk-ami.md §10.2), and decodes that RTP into the same
// 20 ms frames (package audio) the spool gives live listeners. A Tapper is
// a FrameSource for webui/player: Subscribe(ref, depth).
//
// A tap is set up by the first listener of a call and shared by the
// following ones; it is torn down (externalMedia and snoop channels hung
// up, bridge destroyed) when its last listener has been gone for
// Config.Idle, when the call ends, and when Run returns. Every object is
// named Config.Prefix + kind + "-" + n, so Cleanup (run at start) removes
// what an agent that died left behind.
package tap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/ami/ari"
	"pbx-agent/internal/opt"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/rtp"
)

// ARI is the part of *ari.Client a Tapper uses.
type ARI interface {
	Snoop(ctx context.Context, channelID string, o ari.SnoopOptions) (*ari.Channel, error)
	ExternalMedia(ctx context.Context, o ari.ExternalMediaOptions) (*ari.Channel, error)
	ChannelVar(ctx context.Context, channelID, name string) (string, error)
	CreateBridge(ctx context.Context, id, typ, name string) (*ari.Bridge, error)
	AddChannels(ctx context.Context, bridgeID string, channelIDs ...string) error
	Hangup(ctx context.Context, channelID string) error
	DestroyBridge(ctx context.Context, bridgeID string) error
	ListChannels(ctx context.Context) ([]ari.Channel, error)
	ListBridges(ctx context.Context) ([]ari.Bridge, error)
}

// stasisWaiter is the optional part of ARI (*ari.Client has it) that
// waits for a channel's StasisStart before it is bridged.
type stasisWaiter interface {
	WaitStasis(ctx context.Context, channelID string) error
}

// Target is the Asterisk channel of a sniffed call.
type Target struct {
	Channel string // Uniqueid (ARI channel id)
	// Outbound is set when Asterisk placed the channel (the callee side of
	// a Dial): its incoming audio is then the SIP leg's callee. Only
	// matters with Config.Split.
	Outbound bool
}

// Config configures a Tapper. ARI and Target are required.
type Config struct {
	ARI ARI
	// Target finds the Asterisk channel of a sniffed call (AMI
	// correlation); false = not correlated (ErrNoChannel).
	Target func(ref uint64) (Target, bool)
	// Listen is the UDP address RTP is received on (default
	// "127.0.0.1:0": Asterisk on the same host, any free port).
	Listen string
	// Advertise is the host:port Asterisk is told to send to (external_host;
	// default the listening address, 127.0.0.1 when it is unspecified).
	Advertise string
	// Paused reports whether the call's recording is paused now: its
	// listeners hear silence then. nil = never.
	Paused func(ref uint64) bool
	// Active reports whether the call is still going on; a tap of an ended
	// call is torn down. nil = until its listeners leave.
	Active func(ref uint64) bool
	// Split taps each direction with its own snoop (spy=in and spy=out),
	// externalMedia and bridge: caller left, callee right, twice the
	// Asterisk channels. Default: one snoop with spy=both, the mixed
	// conversation on the caller (left) channel.
	Split bool
	// Prefix names everything the tapper creates (default
	// "pbxagent-tap-"); Cleanup removes every channel and bridge with it.
	// Make it unique per agent when several share an Asterisk.
	Prefix string
	// App is the Stasis application the channels enter (default
	// "pbxagent"; the ARI client's event socket must be registered for it).
	App string
	// Delay is how long decoded audio waits for late packets (default
	// 60 ms).
	Delay time.Duration
	// Idle is how long a tap without listeners is kept (default 2 s: a
	// page reload does not rebuild it).
	Idle time.Duration
	// CheckEvery is how often idle and ended taps are looked for (default 500 ms).
	CheckEvery time.Duration
	// ActionTimeout bounds each ARI request (default 5 s).
	ActionTimeout time.Duration
	Logger        *slog.Logger
}

// Stats are a Tapper's counters.
type Stats struct {
	Taps      int    // taps up now
	Started   uint64 // taps set up
	Failed    uint64 // set-ups that failed
	Packets   uint64 // RTP packets decoded
	Unknown   uint64 // datagrams from a source no tap expects
	NotRTP    uint64 // datagrams that are not RTP
	Teardowns uint64
	Leftovers uint64 // channels and bridges removed by Cleanup
	Retries   uint64 // addChannel requests repeated after a 422/409
}

// Tapper runs the taps. Subscribe may be called from any goroutine; Run
// receives the RTP and tears idle taps down.
type Tapper struct {
	cfg  Config
	log  *slog.Logger
	conn *net.UDPConn
	adv  string

	cleaned chan struct{} // closed once Run's Cleanup is done
	once    sync.Once
	now     func() time.Time // arrival clock of the RTP (time.Now; tests replace it before Run)

	mu     sync.Mutex
	closed bool
	taps   map[uint64]*tap
	bySrc  map[netip.AddrPort]leg
	byPort map[uint16]leg // when Asterisk's reported address is not the packets' source
	seq    uint64

	started, failed, packets, unknown, notRTP, teardowns, leftovers, retries atomic.Uint64
}

type leg struct {
	t   *tap
	dir audio.Dir
}

type tap struct {
	ref      uint64
	target   Target
	ready    chan struct{} // closed when set up (or failed: err)
	err      error
	call     *audio.Call
	channels []string // created, in creation order
	bridges  []string
	srcs     []netip.AddrPort
	idle     time.Time // when it was first seen without listeners
}

// New opens the UDP socket; Run must be called to receive.
func New(cfg Config) (*Tapper, error) {
	if cfg.ARI == nil || cfg.Target == nil {
		return nil, fmt.Errorf("%w: ARI and Target are required", ErrConfig)
	}
	opt.Default(&cfg.Listen, "127.0.0.1:0")
	opt.Default(&cfg.Prefix, "pbxagent-tap-")
	opt.Default(&cfg.App, "pbxagent")
	opt.Default(&cfg.Delay, 60*time.Millisecond)
	opt.Default(&cfg.Idle, 2*time.Second)
	opt.Default(&cfg.CheckEvery, 500*time.Millisecond)
	opt.Default(&cfg.ActionTimeout, 5*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	la, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: listen %q: %w", ErrConfig, cfg.Listen, err)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("tap: listen %s: %w", cfg.Listen, err)
	}
	adv := cfg.Advertise
	if adv == "" {
		ap := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		host := ap.Addr().Unmap()
		if host.IsUnspecified() {
			host = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		adv = netip.AddrPortFrom(host, ap.Port()).String()
	}
	return &Tapper{cfg: cfg, log: cfg.Logger.With("component", "tap"), conn: conn, adv: adv, cleaned: make(chan struct{}), now: time.Now,
		taps: map[uint64]*tap{}, bySrc: map[netip.AddrPort]leg{}, byPort: map[uint16]leg{}}, nil
}

// Addr is the UDP address RTP is received on.
func (t *Tapper) Addr() netip.AddrPort { return t.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Advertised is the external_host Asterisk is told to send to.
func (t *Tapper) Advertised() string { return t.adv }

// Stats returns the counters.
func (t *Tapper) Stats() Stats {
	t.mu.Lock()
	n := len(t.taps)
	t.mu.Unlock()
	return Stats{Taps: n, Started: t.started.Load(), Failed: t.failed.Load(), Packets: t.packets.Load(),
		Unknown: t.unknown.Load(), NotRTP: t.notRTP.Load(), Teardowns: t.teardowns.Load(), Leftovers: t.leftovers.Load(), Retries: t.retries.Load()}
}

// Subscribe returns a live feed of the call's audio heard through
// Asterisk, setting the tap up on first use (this waits for the ARI
// requests, bounded by ctx and the action timeout). The feed ends when the
// tap is torn down.
func (t *Tapper) Subscribe(ctx context.Context, ref uint64, depth int) (*audio.Subscription, error) {
	target, ok := t.cfg.Target(ref)
	if !ok || target.Channel == "" {
		return nil, &ListenError{Reason: "no Asterisk channel found for this call (AMI correlation), so it cannot be heard through ARI",
			Err: fmt.Errorf("%w: callref %#x", ErrNoChannel, ref)}
	}
	// Nothing is created before Run has removed the leftovers (Cleanup
	// would take a new tap for one).
	wait := time.NewTimer(3 * t.cfg.ActionTimeout)
	select {
	case <-t.cleaned:
		wait.Stop()
	case <-wait.C:
		return nil, ErrNotRunning
	case <-ctx.Done():
		wait.Stop()
		return nil, ctx.Err()
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	tp := t.taps[ref]
	owner := tp == nil
	if owner {
		tp = &tap{ref: ref, target: target, ready: make(chan struct{}),
			call: audio.NewCall(audio.Config{Delay: t.cfg.Delay})}
		t.taps[ref] = tp
	}
	t.mu.Unlock()
	if owner {
		sctx, cancel := context.WithTimeout(ctx, 4*t.cfg.ActionTimeout)
		tp.err = t.setup(sctx, tp)
		cancel()
		if tp.err != nil {
			t.failed.Add(1)
			t.log.Warn("ARI tap failed", "callref", fmt.Sprintf("%#x", ref), "channel", target.Channel, "err", tp.err)
			t.teardown(tp)
		} else {
			t.started.Add(1)
			t.log.Info("ARI tap up", "callref", fmt.Sprintf("%#x", ref), "channel", target.Channel, "channels", tp.channels, "sources", tp.srcs)
		}
		close(tp.ready)
	} else {
		select {
		case <-tp.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if tp.err != nil {
		return nil, &ListenError{Reason: "ARI tap failed: " + tp.err.Error(), Err: tp.err}
	}
	sub, err := tp.call.Subscribe(depth)
	if err != nil { // torn down meanwhile
		return nil, fmt.Errorf("tap: callref %#x: %w", ref, err)
	}
	return sub, nil
}

// setup creates the snoop, externalMedia and bridge of each direction and
// registers where Asterisk sends from before the bridge starts the RTP.
func (t *Tapper) setup(ctx context.Context, tp *tap) error {
	type dir struct {
		spy string
		to  audio.Dir
	}
	dirs := []dir{{"both", audio.FromCaller}}
	if t.cfg.Split {
		in, out := audio.FromCaller, audio.FromCallee
		if tp.target.Outbound {
			in, out = out, in
		}
		dirs = []dir{{"in", in}, {"out", out}}
	}
	uid := tp.target.Channel
	for _, d := range dirs {
		t.mu.Lock()
		t.seq++
		n := strconv.FormatUint(t.seq, 10)
		t.mu.Unlock()
		snoopID, emID, bridgeID := t.cfg.Prefix+"snoop-"+n, t.cfg.Prefix+"em-"+n, t.cfg.Prefix+"bridge-"+n
		actx, cancel := context.WithTimeout(ctx, t.cfg.ActionTimeout)
		err := func() error {
			if _, err := t.cfg.ARI.Snoop(actx, uid, ari.SnoopOptions{Spy: d.spy, App: t.cfg.App, AppArgs: "tap," + uid, SnoopID: snoopID}); err != nil {
				return fmt.Errorf("%w: snoop on %s: %w", ErrSetup, uid, err)
			}
			tp.channels = append(tp.channels, snoopID)
			t.waitStasis(actx, snoopID)
			em, err := t.cfg.ARI.ExternalMedia(actx, ari.ExternalMediaOptions{App: t.cfg.App, ExternalHost: t.adv, Format: "ulaw", ChannelID: emID, Data: "tap:" + uid})
			if err != nil {
				return fmt.Errorf("%w: externalMedia to %s: %w", ErrSetup, t.adv, err)
			}
			tp.channels = append(tp.channels, emID)
			t.waitStasis(actx, emID)
			src, err := t.source(actx, em)
			if err != nil {
				return err
			}
			if _, err := t.cfg.ARI.CreateBridge(actx, bridgeID, "mixing", "tap-"+uid); err != nil {
				return fmt.Errorf("%w: bridge: %w", ErrSetup, err)
			}
			tp.bridges = append(tp.bridges, bridgeID)
			t.mu.Lock()
			tp.srcs = append(tp.srcs, src)
			t.bySrc[src] = leg{tp, d.to}
			t.byPort[src.Port()] = leg{tp, d.to}
			t.mu.Unlock()
			if err := t.addChannels(actx, bridgeID, snoopID, emID); err != nil {
				return fmt.Errorf("%w: addChannel: %w", ErrSetup, err)
			}
			return nil
		}()
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// waitStasis waits (bounded) for a channel created with app=… to enter
// the application: Asterisk refuses to bridge it before (422). Without the
// event socket it returns at once; addChannels retries then.
func (t *Tapper) waitStasis(ctx context.Context, id string) {
	w, ok := t.cfg.ARI.(stasisWaiter)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.ActionTimeout/2)
	defer cancel()
	if err := w.WaitStasis(ctx, id); err != nil {
		t.log.Debug("no StasisStart seen; bridging with retries", "channel", id, "err", err)
	}
}

// addChannelTries bounds the retries of a 422/409 addChannel: 20 ms
// doubling, about 1.3 s in all.
const addChannelTries = 7

// addChannels adds the channels to the bridge, retrying while Asterisk
// answers that one is not in the Stasis application yet (422; 409 on
// older versions).
func (t *Tapper) addChannels(ctx context.Context, bridgeID string, ids ...string) error {
	wait := 20 * time.Millisecond
	for i := 1; ; i++ {
		err := t.cfg.ARI.AddChannels(ctx, bridgeID, ids...)
		if err == nil || i == addChannelTries || !(errors.Is(err, ari.ErrNotInStasis) || errors.Is(err, ari.ErrConflict)) {
			return err
		}
		t.retries.Add(1)
		tm := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			tm.Stop()
			return errors.Join(err, ctx.Err())
		case <-tm.C:
		}
		wait *= 2
	}
}

// source is Asterisk's side of an externalMedia channel's RTP: from its
// channel variables, read back when the answer lacks them.
func (t *Tapper) source(ctx context.Context, em *ari.Channel) (netip.AddrPort, error) {
	get := func(name string) (string, error) {
		if v := em.ChannelVars[name]; v != "" {
			return v, nil
		}
		return t.cfg.ARI.ChannelVar(ctx, em.ID, name)
	}
	a, err := get("UNICASTRTP_LOCAL_ADDRESS")
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %s UNICASTRTP_LOCAL_ADDRESS: %w", ErrSetup, em.ID, err)
	}
	p, err := get("UNICASTRTP_LOCAL_PORT")
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %s UNICASTRTP_LOCAL_PORT: %w", ErrSetup, em.ID, err)
	}
	addr, err1 := netip.ParseAddr(a)
	port, err2 := strconv.ParseUint(p, 10, 16)
	if err := errors.Join(err1, err2); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %s RTP source %q:%q: %w", ErrSetup, em.ID, a, p, err)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// Run receives RTP and tears down idle and ended taps until ctx ends, then
// tears every tap down and closes the socket. It first removes what an
// earlier run left in Asterisk (Cleanup); Subscribe waits for that. Run may
// be called once.
func (t *Tapper) Run(ctx context.Context) error {
	started := false
	t.once.Do(func() { started = true })
	if !started {
		return errors.New("tap: Run called twice")
	}
	if n, err := t.Cleanup(ctx); err != nil {
		t.log.Warn("ARI tap leftovers not cleaned", "removed", n, "err", err)
	} else if n > 0 {
		t.log.Info("ARI tap leftovers removed", "removed", n)
	}
	close(t.cleaned)
	var wg sync.WaitGroup
	wg.Go(func() { t.receive() })
	tick := time.NewTicker(t.cfg.CheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.mu.Lock()
			t.closed = true
			var all []*tap
			for _, tp := range t.taps {
				all = append(all, tp)
			}
			t.mu.Unlock()
			for _, tp := range all {
				<-tp.ready
				t.teardown(tp)
			}
			t.conn.Close()
			wg.Wait()
			return ctx.Err()
		case now := <-tick.C:
			t.sweep(now)
		}
	}
}

// sweep tears down taps whose call ended or that had no listener for Idle.
func (t *Tapper) sweep(now time.Time) {
	t.mu.Lock()
	var check []*tap
	for _, tp := range t.taps {
		select {
		case <-tp.ready:
			if tp.err == nil {
				check = append(check, tp)
			}
		default: // still being set up
		}
	}
	t.mu.Unlock()
	for _, tp := range check {
		ended := t.cfg.Active != nil && !t.cfg.Active(tp.ref)
		if tp.call.Stats().Subscribers > 0 && !ended {
			tp.idle = time.Time{}
			continue
		}
		if tp.idle.IsZero() {
			tp.idle = now
		}
		if ended || now.Sub(tp.idle) >= t.cfg.Idle {
			reason := "no listener"
			if ended {
				reason = "call ended"
			}
			t.log.Info("ARI tap down", "callref", fmt.Sprintf("%#x", tp.ref), "reason", reason)
			t.teardown(tp)
		}
	}
}

// teardown forgets the tap, removes its Asterisk objects (externalMedia
// first: the RTP stops) and ends its listeners' feeds.
func (t *Tapper) teardown(tp *tap) {
	t.mu.Lock()
	if t.taps[tp.ref] == tp {
		delete(t.taps, tp.ref)
	}
	for _, s := range tp.srcs {
		if l, ok := t.bySrc[s]; ok && l.t == tp {
			delete(t.bySrc, s)
		}
		if l, ok := t.byPort[s.Port()]; ok && l.t == tp {
			delete(t.byPort, s.Port())
		}
	}
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.ActionTimeout)
	defer cancel()
	var errs []error
	for i := len(tp.channels) - 1; i >= 0; i-- { // em before its snoop
		if err := t.cfg.ARI.Hangup(ctx, tp.channels[i]); err != nil && !errors.Is(err, ari.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	for _, b := range tp.bridges {
		if err := t.cfg.ARI.DestroyBridge(ctx, b); err != nil && !errors.Is(err, ari.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.log.Warn("ARI tap teardown incomplete (Cleanup removes it at the next start)", "callref", fmt.Sprintf("%#x", tp.ref), "err", err)
	}
	tp.call.Close()
	t.teardowns.Add(1)
}

// Cleanup hangs up every channel and destroys every bridge whose id starts
// with the prefix: what an agent that stopped without tearing its taps
// down left in Asterisk. It returns how many it removed.
func (t *Tapper) Cleanup(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*t.cfg.ActionTimeout)
	defer cancel()
	var errs []error
	n := 0
	chs, err := t.cfg.ARI.ListChannels(ctx)
	errs = append(errs, err)
	for _, ch := range chs {
		if strings.HasPrefix(ch.ID, t.cfg.Prefix) {
			if err := t.cfg.ARI.Hangup(ctx, ch.ID); err != nil && !errors.Is(err, ari.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	bs, err := t.cfg.ARI.ListBridges(ctx)
	errs = append(errs, err)
	for _, b := range bs {
		if strings.HasPrefix(b.ID, t.cfg.Prefix) {
			if err := t.cfg.ARI.DestroyBridge(ctx, b.ID); err != nil && !errors.Is(err, ari.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	t.leftovers.Add(uint64(n))
	return n, errors.Join(errs...)
}

// receive reads the socket until it is closed.
func (t *Tapper) receive() {
	buf := make([]byte, 2048)
	var hdr rtp.Header
	for {
		n, src, err := t.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Debug("tap socket read", "err", err)
			continue
		}
		t.handle(&hdr, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), buf[:n], t.now())
	}
}

// handle feeds one datagram to the tap expecting its source.
func (t *Tapper) handle(hdr *rtp.Header, src netip.AddrPort, b []byte, now time.Time) {
	t.mu.Lock()
	l, ok := t.bySrc[src]
	if !ok {
		l, ok = t.byPort[src.Port()]
	}
	t.mu.Unlock()
	if !ok {
		t.unknown.Add(1)
		return
	}
	n, err := hdr.Unmarshal(b)
	if err != nil || rtp.LooksLikeRTCP(b) {
		t.notRTP.Add(1)
		return
	}
	paused := t.cfg.Paused != nil && t.cfg.Paused(l.t.ref)
	l.t.call.Feed(l.dir, hdr, hdr.Payload(b, n), now, paused)
	t.packets.Add(1)
}
