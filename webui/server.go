package webui

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"pbx-agent/internal/opt"
	"pbx-agent/internal/promfunc"
)

// ServerConfig configures the HTTP listener. Zero durations take the
// defaults noted.
type ServerConfig struct {
	Addr              string        // http_bind (default 127.0.0.1:8080)
	TLSCert, TLSKey   string        // http_tls_cert / http_tls_key: both set = HTTPS
	ReadHeaderTimeout time.Duration // default 10 s
	ReadTimeout       time.Duration // whole request incl. body (default 60 s)
	WriteTimeout      time.Duration // default 0 = none: pcap and audio downloads may be long; handlers bound their own work
	StallTimeout      time.Duration // each write of a response must progress within this (default 30 s)
	IdleTimeout       time.Duration // keep-alive (default 120 s)
	MaxHeaderBytes    int           // default 64 KiB
	// MaxConns bounds the open connections, websockets included (default
	// 1024): at the bound a new connection replaces an idle keep-alive
	// one, else the oldest one that has sent no complete request for longer
	// than HeaderGrace (default 1 s), else it is closed at once.
	MaxConns    int
	HeaderGrace time.Duration
	Logger      *slog.Logger
}

// Server is the HTTP server around a Handler (or any http.Handler).
type Server struct {
	cfg   ServerConfig
	srv   *http.Server
	conns *connLimit
	log   *slog.Logger
	mu    sync.Mutex
	addr  net.Addr

	// Series for Register (pbx_http_*), fed by every request.
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewServer builds a server; nothing listens until ListenAndServe or Serve.
func NewServer(cfg ServerConfig, h http.Handler) *Server {
	opt.Default(&cfg.Addr, "127.0.0.1:8080")
	opt.Default(&cfg.ReadHeaderTimeout, 10*time.Second)
	opt.Default(&cfg.ReadTimeout, 60*time.Second)
	opt.Default(&cfg.IdleTimeout, 120*time.Second)
	opt.Default(&cfg.MaxHeaderBytes, 64<<10)
	opt.Default(&cfg.StallTimeout, 30*time.Second)
	opt.Default(&cfg.MaxConns, 1024)
	opt.Default(&cfg.HeaderGrace, time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("component", "http")
	s := &Server{cfg: cfg, log: log, conns: newConnLimit(cfg.MaxConns, cfg.HeaderGrace),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pbx_http_requests_total",
			Help: "HTTP requests answered, by status code and method."}, []string{"code", "method"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pbx_http_request_duration_seconds",
			Help: "Time to answer an HTTP request (a websocket: its whole life).", Buckets: prometheus.DefBuckets}, []string{"method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pbx_http_requests_in_flight", Help: "HTTP requests being answered now."}),
	}
	handler := cutStalled(cfg.StallTimeout, promhttp.InstrumentHandlerInFlight(s.inFlight,
		promhttp.InstrumentHandlerDuration(s.duration,
			promhttp.InstrumentHandlerCounter(s.requests, LogRequests(log, h)))))
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		ConnState:         s.conns.state,
	}
	return s
}

// Register puts the server's series (pbx_http_*) on reg.
func (s *Server) Register(reg prometheus.Registerer) error {
	return promfunc.Register(reg, s.requests, s.duration, s.inFlight,
		promfunc.Counter("pbx_http_connections_refused_total", "HTTP connections closed at once: every connection slot (http MaxConns) busy, none idle nor silent past the grace.", s.conns.refused.Load),
		promfunc.Counter("pbx_http_connections_evicted_total", "HTTP connections closed to make room for a new one at the connection bound: idle keep-alive ones, else ones without a complete request past HeaderGrace (default 1 s), the oldest first.", s.conns.evicted.Load),
		promfunc.Gauge("pbx_http_connections", "HTTP connections open now (websockets included).", func() float64 { return float64(s.conns.openNow()) }))
}

// Addr is the bound address once listening (nil before).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ListenAndServe listens on cfg.Addr and serves until ctx ends or Shutdown
// is called; it then shuts down gracefully (up to 10 s) and returns nil.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("webui: listen %s: %w", s.cfg.Addr, err)
	}
	return s.ServeContext(ctx, ln)
}

// ServeContext serves on ln (bound by the caller, e.g. before the daemon
// reports ready) until ctx ends or Shutdown is called, then shuts down
// gracefully (up to 10 s) and returns nil.
func (s *Server) ServeContext(ctx context.Context, ln net.Listener) error {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := s.Shutdown(sctx); err != nil {
				s.log.Warn("http shutdown", "err", err)
			}
		case <-done:
		}
	}()
	err := s.Serve(ln)
	close(done)
	wg.Wait()
	if errors.Is(err, ErrServerClosed) {
		return nil
	}
	return err
}

// Serve serves on ln (HTTPS when TLSCert/TLSKey are set). It returns
// ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	ln = &limitedListener{Listener: ln, l: s.conns}
	tlsOn := s.cfg.TLSCert != "" && s.cfg.TLSKey != ""
	s.log.Info("http listening", "addr", ln.Addr().String(), "tls", tlsOn)
	var err error
	if tlsOn {
		err = s.srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
	} else {
		err = s.srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting, waits for requests in flight until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return err
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (websocket, flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// cutStalled gives every write of a response d to progress: the
// connection's write deadline is pushed back before each write and when
// the handler returns (net/http then flushes what it buffered), so a long
// download goes on while the client reads, and a client that stops
// reading (or never reads: pipelined requests) is cut after d instead of
// holding the handler, its connection and the socket's buffer for ever
// (the server has no WriteTimeout: a whole download may take longer than
// any fixed bound). While the handler works before its first write there
// is no deadline (a slow answer — a long call's audio, a fax decoded — is
// not cut; a keep-alive connection's previous deadline is cleared). A
// websocket sets its own deadlines once it took the connection over.
func cutStalled(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{})
		h.ServeHTTP(&stallWriter{ResponseWriter: w, rc: rc, d: d}, r)
		_ = rc.SetWriteDeadline(time.Now().Add(d)) // fails once hijacked: nothing to do then
	})
}

// stallWriter pushes the write deadline back before each write.
type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *stallWriter) Write(b []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (websocket, flush).
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// LogRequests logs one line per request: method, path (never the query: it
// may hold a password), status, bytes, duration, client. The access log is
// Debug (the dashboard polls every second); a 5xx answer is a Warn.
func LogRequests(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		level := slog.LevelDebug
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		log.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Int64("bytes", sw.n),
			slog.Duration("dur", time.Since(start)), slog.String("remote", r.RemoteAddr))
	})
}
