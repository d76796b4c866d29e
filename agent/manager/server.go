package manager

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/internal/opt"
	"pbx-agent/sniffer/call"
)

// Defaults for the zero values of Config.
const (
	DefaultAddr            = "127.0.0.1:5029"
	DefaultMaxConns        = 128
	DefaultMaxRequestBytes = 64 << 10
	DefaultIdleWait        = 500 * time.Millisecond
	DefaultReadTimeout     = 5 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultMaxSnapshots    = 4
	// DefaultMaxConnsPerSource bounds one source's open connections (an
	// IPv4 address, an IPv6 /64), so a few idle clients cannot take every
	// slot (manager_max_conns_per_source).
	DefaultMaxConnsPerSource = 16
	// DefaultFirstByteTimeout closes a connection that sends nothing
	// (manager_first_byte_timeout).
	DefaultFirstByteTimeout = 2 * time.Second
	// DefaultAESMaxFailures failed AES requests within DefaultAESBlock block
	// their source for DefaultAESBlock, doubled at every new block up to 24 h
	// (manager_aes_max_failures, manager_aes_block): 5 guesses, then 15 min,
	// 30 min, 1 h, … — an adaptive attack needing thousands of requests
	// gets a few dozen a day.
	DefaultAESMaxFailures = 5
	DefaultAESBlock       = 15 * time.Minute
	// CompatVersion is the VoIPmonitor version getversion reports by default:
	// the GUI enables features (AES, live listening) by sniffer version.
	CompatVersion = "2026.04.0"
)

// Config configures a Server. The zero value serves nothing useful but is
// valid: every limit has a default.
type Config struct {
	Addr   string // managerip:managerport; "" = no TCP listener (ListenAndServe)
	Socket string // managersocket; "" = none. Cannot be stopped with `manager_file stop`.

	Keys              wire.KeySource // nil = no AES key anywhere: plaintext accepted
	EnableUnencrypted bool           // manager_enable_unencrypted: plaintext allowed even with a key

	Calls    Calls                           // active calls and REGISTERs; nil = none
	Audio    AudioSource                     // live listening; nil = `liveaudio is disabled`
	SpoolDir string                          // root for getfile / file_exists; "" = every file request denied
	SensorID int                             // id_sensor in listcalls' summary and rows
	Version  string                          // getversion; "" = CompatVersion
	Build    string                          // getbuild; "" = "pbx-agent"
	Location *time.Location                  // for calldate strings; nil = time.Local
	ZoneName string                          // sql_time_information's zone name; "" = Location's ("UTC" for UTC)
	Stats    func() Stats                    // sniffer_stat figures; nil = zeros
	Reload   func(ctx context.Context) error // `reload`; nil = nothing to reload

	// Commands adds or replaces commands (e.g. listchannels from the AMI side).
	Commands map[string]Command

	MaxConns        int           // per listener; further connections are closed at once
	MaxRequestBytes int           // longer requests are dropped without a reply
	IdleWait        time.Duration // plaintext request ended by idleness (VoIPmonitor: 500 ms)
	ReadTimeout     time.Duration // whole request must arrive within this
	WriteTimeout    time.Duration // each reply write must progress within this
	// MaxSnapshots bounds the commands that snapshot the call table
	// (listcalls, listregisters, active_call_info, totalcalls) running at once,
	// so a flood of them cannot load the sniffer's call table; others wait.
	MaxSnapshots int

	MaxConnsPerSource int           // per client source on TCP, an IPv4 address or IPv6 /64 (default DefaultMaxConnsPerSource)
	FirstByteTimeout  time.Duration // a connection silent this long is closed (default DefaultFirstByteTimeout)
	AESMaxFailures    int           // failed AES requests that block a source (default DefaultAESMaxFailures)
	AESBlock          time.Duration // failure window and first block length (default DefaultAESBlock)

	Logger *slog.Logger
}

// Stats are the figures sniffer_stat reports.
type Stats struct {
	PacketBufferStat      string // pbStatString
	PacketsDropped        uint64 // pbCountPacketDrop
	StoringCdrLastWriteAt time.Time
	MemoryIsFull          bool
	TerminatingError      string
}

// Counters are the server's own figures (for /metrics).
type Counters struct {
	Accepted, Refused, Served, TooLarge, TimedOut, NeedAES, DecryptFailed, NotFound uint64
	// Blocked counts connections closed unread because their source was
	// blocked after failed AES requests; SourcesBlocked counts the blocks.
	Blocked, SourcesBlocked uint64
	// SourcesEvicted counts sources holding nothing in force (no
	// connection, failure in its window or block) forgotten to make room
	// for a new one in the full per-source table; SourcesPooled counts
	// connections and failed requests of new sources counted on the
	// shared entry because every source in the table held something.
	SourcesEvicted, SourcesPooled uint64
	BlockedNow                    int // sources blocked at the moment
	Active                        int64
}

// Server is the manager API server. Build it with New; it is safe for
// concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	commands map[string]Command
	names    []string // sorted command names, for the legacy substring match
	ready    atomic.Bool
	start    time.Time
	listen   *listenRegistry
	bufs     sync.Pool // *connBufs, reused across connections
	snapshot chan struct{}
	guard    *guard
	replays  *replayCache

	// baseCtx is the parent of every connection's ctx: made from
	// ListenAndServe's ctx (or by the first Serve), ended by
	// Shutdown/Close. Under mu.
	baseCtx    context.Context
	cancelBase context.CancelFunc
	wg         sync.WaitGroup // connection goroutines and serve loops

	mu        sync.Mutex
	listeners map[net.Listener]*listenerState
	bound     []net.Listener // by Bind, not yet served
	conns     map[net.Conn]struct{}
	closed    bool
	tcpAddr   net.Addr
	runtime   *unixSocket // manager_file start
	cfgSocket *unixSocket // managersocket

	accepted, refused, served, tooLarge, timedOut, needAES, decryptFailed, notFound atomic.Uint64
	blocked, sourcesBlocked                                                         atomic.Uint64
	active                                                                          atomic.Int64
}

type listenerState struct {
	sem  chan struct{}
	unix bool
}

type unixSocket struct {
	path string
	ln   net.Listener
	made os.FileInfo // the socket file this server created (runtime sockets)
}

// remove deletes the socket file, only if it is still the one this server
// made (a runtime socket) or any socket (the configured one).
func (u *unixSocket) remove() {
	if u.made == nil {
		removeSocket(u.path)
		return
	}
	if fi, err := os.Lstat(u.path); err == nil && os.SameFile(fi, u.made) {
		_ = os.Remove(u.path)
	}
}

// New builds a Server from cfg; it starts nothing (ListenAndServe does).
func New(cfg Config) *Server {
	opt.Default(&cfg.MaxConns, DefaultMaxConns)
	opt.Default(&cfg.MaxRequestBytes, DefaultMaxRequestBytes)
	opt.Default(&cfg.IdleWait, DefaultIdleWait)
	opt.Default(&cfg.ReadTimeout, DefaultReadTimeout)
	opt.Default(&cfg.WriteTimeout, DefaultWriteTimeout)
	opt.Default(&cfg.MaxSnapshots, DefaultMaxSnapshots)
	opt.Default(&cfg.MaxConnsPerSource, DefaultMaxConnsPerSource)
	opt.Default(&cfg.FirstByteTimeout, DefaultFirstByteTimeout)
	opt.Default(&cfg.AESMaxFailures, DefaultAESMaxFailures)
	opt.Default(&cfg.AESBlock, DefaultAESBlock)
	opt.Default(&cfg.Version, CompatVersion)
	opt.Default(&cfg.Build, "pbx-agent")
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "manager"),
		start:     time.Now(),
		listeners: make(map[net.Listener]*listenerState),
		conns:     make(map[net.Conn]struct{}),
	}
	s.listen = newListenRegistry(cfg.Audio)
	s.snapshot = make(chan struct{}, cfg.MaxSnapshots)
	s.guard = newGuard(cfg.MaxConnsPerSource, cfg.AESMaxFailures, cfg.AESBlock)
	s.replays = newReplayCache()
	s.commands, s.names = s.builtinCommands(cfg.Commands)
	return s
}

// SetReady enables (or disables) command processing. Until the agent is
// ready, connections are closed without a reply, as VoIPmonitor does before
// its initialisation is finished.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Counters returns a snapshot of the server's counters.
func (s *Server) Counters() Counters {
	return Counters{
		Accepted: s.accepted.Load(), Refused: s.refused.Load(), Served: s.served.Load(),
		TooLarge: s.tooLarge.Load(), TimedOut: s.timedOut.Load(), NeedAES: s.needAES.Load(),
		DecryptFailed: s.decryptFailed.Load(), NotFound: s.notFound.Load(), Active: s.active.Load(),
		Blocked: s.blocked.Load(), SourcesBlocked: s.sourcesBlocked.Load(), BlockedNow: s.guard.blockedNow(),
		SourcesEvicted: s.guard.evicted.Load(), SourcesPooled: s.guard.pooled.Load(),
	}
}

// Addr returns the TCP listener's address once ListenAndServe has bound it (nil before).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpAddr
}

// Bind binds Config.Addr and Config.Socket (when set) without serving
// them, so a daemon can fail before reporting ready; ListenAndServe then
// serves these listeners. On error nothing stays bound.
func (s *Server) Bind(ctx context.Context) error {
	var lns []net.Listener
	if s.cfg.Addr != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("manager: listen %s: %w", s.cfg.Addr, err)
		}
		lns = append(lns, ln)
	}
	if s.cfg.Socket != "" {
		ln, err := listenUnix(s.cfg.Socket)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return err
		}
		s.mu.Lock()
		s.cfgSocket = &unixSocket{path: s.cfg.Socket, ln: ln}
		s.mu.Unlock()
		lns = append(lns, ln)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Addr != "" {
		s.tcpAddr = lns[0].Addr() // published once every listener is bound
	}
	s.bound = lns
	return nil
}

// ListenAndServe binds Config.Addr and Config.Socket (unless Bind did),
// serves them and the live-listening janitor until ctx is done or
// Shutdown/Close is called. It returns ErrServerClosed after Shutdown/Close
// and nil when ctx ended.
func (s *Server) ListenAndServe(ctx context.Context) error {
	s.mu.Lock()
	lns := s.bound
	s.bound = nil
	s.mu.Unlock()
	if lns == nil {
		if err := s.Bind(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		lns, s.bound = s.bound, nil
		s.mu.Unlock()
	}
	// Connections outlive ctx by Shutdown's grace: their ctx keeps ctx's
	// values, not its end.
	base := s.base(context.WithoutCancel(ctx))
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- s.Serve(ln) }()
	}
	janitorDone := make(chan struct{})
	jctx, jcancel := context.WithCancel(base)
	go func() {
		defer close(janitorDone)
		s.listen.janitor(jctx)
	}()
	remaining := len(lns)
	var first error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
		_ = s.Shutdown(sctx)
		cancel()
	case first = <-errc:
		remaining--
		if !errors.Is(first, ErrServerClosed) {
			_ = s.Close()
		}
	case <-base.Done():
	}
	for range remaining {
		if e := <-errc; first == nil || errors.Is(first, ErrServerClosed) {
			first = e
		}
	}
	jcancel()
	<-janitorDone
	if ctx.Err() != nil && (first == nil || errors.Is(first, ErrServerClosed)) {
		return nil
	}
	if first == nil {
		first = ErrServerClosed
	}
	return first
}

// Serve accepts connections on ln until Shutdown or Close. A unix-socket
// listener takes plaintext even when an AES key exists. It always returns a
// non-nil error: ErrServerClosed after Shutdown/Close.
func (s *Server) Serve(ln net.Listener) error {
	st := &listenerState{sem: make(chan struct{}, s.cfg.MaxConns), unix: ln.Addr().Network() == "unix"}
	base := s.base(context.Background())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = st
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				s.mu.Lock()
				delete(s.listeners, ln)
				s.mu.Unlock()
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				backoff = max(5*time.Millisecond, min(2*backoff, time.Second))
				s.log.Warn("accept error, retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
				case <-base.Done():
					return ErrServerClosed
				}
				continue
			}
			s.mu.Lock()
			delete(s.listeners, ln)
			s.mu.Unlock()
			return fmt.Errorf("manager: accept: %w", err)
		}
		backoff = 0
		src := addrOf(c.RemoteAddr())
		entry, ok, blocked := s.guard.admit(src)
		if !ok {
			// A blocked source, or one holding its share of the slots:
			// close unread, at once.
			if blocked {
				s.blocked.Add(1)
			} else {
				s.refused.Add(1)
			}
			_ = c.Close()
			continue
		}
		select {
		case st.sem <- struct{}{}:
		default:
			// Full: close at once so the client sees EOF instead of waiting.
			s.refused.Add(1)
			s.guard.done(entry)
			_ = c.Close()
			continue
		}
		if !s.trackConn(c) {
			<-st.sem
			s.guard.done(entry)
			_ = c.Close()
			return ErrServerClosed
		}
		s.accepted.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-st.sem }()
			defer s.guard.done(entry)
			s.serveConn(base, c, st.unix, src)
		}()
	}
}

// base returns the server's base ctx, made from parent by the first
// caller.
func (s *Server) base(parent context.Context) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.baseCtx == nil {
		s.baseCtx, s.cancelBase = context.WithCancel(parent)
	}
	return s.baseCtx
}

// endBase ends the base ctx (making an ended one when none was made: a
// Serve after Shutdown returns at once anyway).
func (s *Server) endBase() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.baseCtx == nil {
		s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	}
	s.cancelBase()
}

func (s *Server) trackConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrackConn(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// closeListeners stops accepting and removes the unix sockets.
func (s *Server) closeListeners() {
	s.mu.Lock()
	s.closed = true
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	clear(s.listeners)
	sockets := []*unixSocket{s.runtime, s.cfgSocket}
	s.runtime, s.cfgSocket = nil, nil
	s.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, u := range sockets {
		if u != nil {
			_ = u.ln.Close()
			u.remove()
		}
	}
}

// Shutdown stops accepting, then waits for the connections in progress to
// finish their reply, like net/http's Server.Shutdown. When ctx ends first the
// remaining connections are closed and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.listen.closeAll()
		s.endBase()
		return nil
	case <-ctx.Done():
		s.endBase()
		s.closeConns()
		<-done
		s.listen.closeAll()
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once and waits for
// their goroutines.
func (s *Server) Close() error {
	s.closeListeners()
	s.endBase()
	s.closeConns()
	s.wg.Wait()
	s.listen.closeAll()
	return nil
}

func (s *Server) closeConns() {
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
}

// StartSocket opens a runtime unix socket (`manager_file start [path]`). An
// empty path makes a fresh name in the temp directory. It returns the path.
func (s *Server) StartSocket(path string) (string, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrServerClosed
	}
	if s.runtime != nil {
		p := s.runtime.path
		s.mu.Unlock()
		return p, fmt.Errorf("%w: %s", ErrSocketRunning, p)
	}
	s.mu.Unlock()
	if path == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		path = filepath.Join(os.TempDir(), "pbx_agent_manager_"+hex.EncodeToString(b[:]))
	}
	// A requested path is confined to the temp directory and must not
	// exist: the command cannot take over another program's socket, nor
	// (on stop) delete anything but the socket it made.
	if !filepath.IsAbs(path) || filepath.Dir(filepath.Clean(path)) != filepath.Clean(os.TempDir()) {
		return "", fmt.Errorf("%w: %s is not a new name directly in %s", ErrSocketPath, path, os.TempDir())
	}
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("%w: %s exists", ErrSocketPath, path)
	}
	ln, err := listenUnixNew(path)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.closed || s.runtime != nil {
		s.mu.Unlock()
		_ = ln.Close()
		removeSocket(path)
		return "", fmt.Errorf("%w: %s", ErrSocketRunning, path)
	}
	made, _ := os.Lstat(path)
	s.runtime = &unixSocket{path: path, ln: ln, made: made}
	s.mu.Unlock()
	go func() { _ = s.Serve(ln) }()
	return path, nil
}

// StopSocket closes the runtime unix socket and removes its file.
func (s *Server) StopSocket() error {
	s.mu.Lock()
	u := s.runtime
	s.runtime = nil
	cfg := s.cfgSocket != nil
	if u != nil {
		delete(s.listeners, u.ln)
	}
	s.mu.Unlock()
	if u == nil {
		if cfg {
			return ErrSocketConfigured
		}
		return ErrSocketNotRunning
	}
	_ = u.ln.Close()
	u.remove()
	return nil
}

// listenUnix binds a unix socket at path with mode 0600 and no window in
// which it is reachable with a looser mode: it is bound inside a private 0700
// directory, chmod-ed, then renamed into place. An existing socket at path is
// replaced; any other existing file is refused (VoIPmonitor unlinks
// whatever is there, which would let a plaintext `manager_file start` delete files).
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%w: %s", ErrNotSocket, path)
		}
	}
	return bindUnix(path, os.Rename)
}

// listenUnixNew is listenUnix for a path that must not exist: the socket
// is hard-linked into place, which fails rather than replace anything.
func listenUnixNew(path string) (net.Listener, error) {
	return bindUnix(path, os.Link)
}

// bindUnix binds a 0600 socket in a private directory and moves it to path
// with place (rename or link).
func bindUnix(path string, place func(oldpath, newpath string) error) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".pbx-agent-sock-")
	if err != nil {
		return nil, fmt.Errorf("manager: socket %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("manager: socket %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("manager: socket %s: %w", path, err)
	}
	if err := place(tmp, path); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("manager: socket %s: %w", path, err)
	}
	return &namedUnixListener{Listener: ln, path: path}, nil
}

// namedUnixListener reports the final path as its address (the socket was bound under a temp name).
type namedUnixListener struct {
	net.Listener
	path string
}

func (l *namedUnixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func removeSocket(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == fs.ModeSocket {
		_ = os.Remove(path)
	}
}

// peer says who is on the other end of a manager connection, for the
// audit of actions (pausecall): the TCP client's address, or on the unix
// socket the peer process's pid and user (SO_PEERCRED). The manager API has
// no users: User is the unix user, or "manager" on TCP.
func peer(c net.Conn, onSocket bool) call.Requester {
	if !onSocket {
		return call.Requester{User: "manager", Source: c.RemoteAddr().String(), Via: "manager-tcp"}
	}
	rq := call.Requester{Source: "unix", Via: "manager-socket"}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return rq
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return rq
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) { cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if cred == nil {
		return rq
	}
	rq.Source += fmt.Sprintf(" pid=%d uid=%d", cred.Pid, cred.Uid)
	rq.User = "uid " + strconv.FormatUint(uint64(cred.Uid), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(cred.Uid), 10)); err == nil {
		rq.User = u.Username
	}
	return rq
}

// serveConn runs one request on c and closes it.
func (s *Server) serveConn(base context.Context, c net.Conn, unix bool, src netip.Addr) {
	s.active.Add(1)
	defer s.active.Add(-1)
	defer s.untrackConn(c)
	defer c.Close()

	cb, _ := s.bufs.Get().(*connBufs)
	if cb == nil {
		cb = &connBufs{read: make([]byte, 0, firstReadSize+1), w: bufio.NewWriterSize(nil, 32<<10)}
	}
	defer func() {
		if cap(cb.read) <= 2*(firstReadSize+1) { // do not keep buffers grown by big requests
			cb.w.Reset(nil)
			s.bufs.Put(cb)
		}
	}()
	buf, err := readRequest(c, cb.read, s.cfg.MaxRequestBytes, s.cfg.IdleWait, s.cfg.ReadTimeout, s.cfg.FirstByteTimeout)
	switch {
	case errors.Is(err, ErrRequestTooLarge):
		s.tooLarge.Add(1)
		s.log.Debug("request too large", "remote", c.RemoteAddr(), "bytes", len(buf))
		return
	case errors.Is(err, ErrRequestTimeout):
		s.timedOut.Add(1)
		return
	case err != nil || len(buf) == 0:
		return
	}
	if !s.ready.Load() {
		return
	}
	ctx, cancel := context.WithCancel(call.WithRequester(base, peer(c, unix)))
	defer cancel()
	_ = c.SetReadDeadline(time.Time{})
	dw := &deadlineWriter{c: c, timeout: s.cfg.WriteTimeout}
	bw := cb.w
	bw.Reset(dw)
	if err := s.handle(ctx, bw, parseRequest(buf), unix, src); err != nil {
		s.log.Debug("reply failed", "remote", c.RemoteAddr(), "err", err)
		return
	}
	if err := bw.Flush(); err != nil {
		s.log.Debug("reply failed", "remote", c.RemoteAddr(), "err", err)
		return
	}
	s.served.Add(1)
	lingerClose(c)
}

// connBufs are one connection's request buffer and reply writer.
type connBufs struct {
	read []byte
	w    *bufio.Writer
}

// lingerClose half-closes and drains briefly so that a client that sent more
// than we read (e.g. "cmd\r\n" + "\r\n" in two writes) still gets the reply
// instead of a reset.
func lingerClose(c net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	cw, ok := c.(closeWriter)
	if !ok {
		return
	}
	if cw.CloseWrite() != nil {
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, _ = io.CopyN(io.Discard, c, 64<<10)
}

// deadlineWriter extends the write deadline before every write, so a reply
// keeps going as long as the client reads, and a stalled client is cut.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.c.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.c.Write(p)
}
