// Package player serves live listening in the browser: VoIPmonitor's
// ChunkPlayer page at /api/chunkplayer/index.html (callref + sensor id +
// play, seed 002), a live calls dashboard at /, the active calls as JSON
// for it, and the websocket /ws/listen that pushes one call's decoded audio
// as 20 ms binary frames (header layout in frame.go) with JSON status text
// messages.
//
// Every listener has one writer goroutine fed by a small bounded queue
// (an audio.Subscription: the call's single decode is shared by all its
// listeners); a slow browser loses its oldest frames, counted, and never
// holds up the packet path or other listeners. Calls of another sensor are
// heard through that agent's manager API (listen_stream, AES when a key is
// set): one connection per remote call, shared by its listeners.
//
// The pages are plain HTML/JS/CSS embedded with go:embed; playback runs in
// an AudioWorklet (ScriptProcessor where AudioWorklet is missing, e.g. on
// plain http to a non-local host) with an adaptive jitter buffer.
package player

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"pbx-agent/internal/opt"
	"pbx-agent/sniffer/call"
	"pbx-agent/webui"
)

//go:embed assets
var assetFS embed.FS

// Authenticator says who a request is (webui.Handler: session cookie from
// bypass_login, or user/password parameters; anyone when api_disable_auth).
type Authenticator interface {
	Authenticate(r *http.Request) (*webui.User, error)
}

// Calls gives the active calls (sniffer.Sniffer: ActiveCalls, Lookup).
type Calls interface {
	ActiveCalls() []call.CDR
	Lookup(ref uint64) (call.CDR, bool)
}

// Options configure a Handler. Auth is required.
type Options struct {
	Auth Authenticator
	// Audio gives the decoded frames of this sensor's calls (spool.Spool).
	// nil = local live listening off.
	Audio FrameSource
	// Calls feeds the dashboard and the paused/codec status; nil = none.
	Calls Calls
	// SensorID is this agent's id_sensor; a listen request without
	// sensor_id, or with this one, is served locally.
	SensorID int
	// Remotes are other sensors by id_sensor (a fixed list; see
	// RemoteLookup). The daemon's are agent/sensors.ManagerRemote: the
	// sensor's manager API listen_stream.
	Remotes map[int]Remote
	// RemoteLookup finds a sensor not in Remotes when a listener asks for
	// it (agent/sensors: any online sensor of the shared database, with its
	// manager key). Errors wrapping ErrUnknownSensor answer 404, others
	// and a nil Remote 503; nil = only Remotes.
	RemoteLookup func(ctx context.Context, sensor int) (Remote, error)
	// Channels gives the Asterisk channel names of a call once AMI is
	// correlated (dashboard); nil = none shown.
	Channels func(c *call.CDR) []string
	// Now is the clock of the frames' capture times (the sniffer's: a
	// capture's own clock while it is replayed); nil = time.Now. The page
	// is told the offset to the wall clock, so its latency stays true.
	Now func() time.Time
	// Location is the zone calldates are shown in: the zone of the times
	// stored in the database (utc, timezone), as the CDR pages show them.
	// nil = UTC.
	Location *time.Location
	// AllowedOrigins are extra websocket origins ("https://gui.example.com")
	// besides the page's own host.
	AllowedOrigins []string

	QueueDepth   int           // frames queued per listener (default 50 = 1 s; only a stalled listener fills it)
	WriteTimeout time.Duration // per websocket write (default 5 s)
	StatsEvery   time.Duration // status message to the page (default 1 s)
	RecheckEvery time.Duration // the listener's rights are checked again (default 5 s)
	DialTimeout  time.Duration // remote sensor's manager API (default 5 s)
	Logger       *slog.Logger
}

// Stats are the handler's figures (for /metrics).
type Stats struct {
	Listeners     int64  // websockets open now
	ListenersSeen uint64 // websockets accepted so far
	Frames        uint64 // audio messages sent
	Dropped       uint64 // frames lost by slow listeners (queue full)
	Refused       uint64 // upgrades refused (auth, rights, origin, bad request)
	RemoteStreams int64  // listen_stream connections open to other sensors
	RemoteTotal   uint64
}

// Handler serves the player, the dashboard and the websocket. Build it with
// New (it starts nothing) and Run it: listeners and remote streams live
// until Run's ctx ends (hijacked websockets are not tracked by
// http.Server.Shutdown).
type Handler struct {
	o       Options
	log     *slog.Logger
	mux     *http.ServeMux
	up      websocket.Upgrader
	remotes *remoteHub
	wg      sync.WaitGroup // listeners (enter)
	gate    sync.Mutex     // orders a listener's enter with the end of Run
	// running is closed by Run once ctx (Run's) is set; listeners wait
	// for it.
	running chan struct{}
	ctx     context.Context
	runOnce sync.Once

	listeners                       atomic.Int64
	seen, frames, dropped, refusals atomic.Uint64
}

// New builds a Handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	opt.Default(&o.QueueDepth, 50)
	opt.Default(&o.WriteTimeout, 5*time.Second)
	opt.Default(&o.StatsEvery, time.Second)
	opt.Default(&o.RecheckEvery, 5*time.Second)
	opt.Default(&o.DialTimeout, 5*time.Second)
	log := o.Logger.With("component", "player")
	h := &Handler{o: o, log: log, mux: http.NewServeMux(), running: make(chan struct{}),
		remotes: newRemoteHub(log, o.DialTimeout)}
	h.up = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		CheckOrigin:      h.checkOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			h.refusals.Add(1)
			http.Error(w, reason.Error(), status)
		},
	}
	for _, p := range Patterns {
		h.mux.Handle(p, h.route(p))
	}
	return h
}

// Patterns are the routes the handler serves; Register mounts each on a
// mux (webui.Handler.Handle).
var Patterns = []string{
	"GET /{$}",
	"GET /api/chunkplayer/{$}",
	"GET /api/chunkplayer/{file}",
	"GET /api/chunkplayer/calls.json",
	"GET /ws/listen",
}

func (h *Handler) route(p string) http.Handler {
	switch p {
	case "GET /{$}":
		return h.asset("dashboard.html")
	case "GET /api/chunkplayer/{$}":
		return h.asset("index.html")
	case "GET /api/chunkplayer/calls.json":
		return http.HandlerFunc(h.callsJSON)
	case "GET /ws/listen":
		return http.HandlerFunc(h.listen)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.asset(r.PathValue("file")).ServeHTTP(w, r)
	})
}

// Mount adds the handler's routes to a mux such as webui.Handler (its
// Handle method), so one HTTP server serves the web APIs and the player.
func (h *Handler) Mount(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	for _, p := range Patterns {
		mux.Handle(p, h)
	}
}

// ServeHTTP serves the handler's own routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Run lets listeners in until ctx ends, then ends every listener (with an
// "end" message, reason "server shutdown") and every remote stream, waits
// for their goroutines and returns nil. A listener that comes before Run
// waits for it; a second Run returns ErrRunning at once.
func (h *Handler) Run(ctx context.Context) error {
	first := false
	h.runOnce.Do(func() {
		first = true
		h.ctx = ctx
		h.remotes.ctx = ctx
		close(h.running)
	})
	if !first {
		return ErrRunning
	}
	<-ctx.Done()
	h.gate.Lock() // a listener entering from now on sees ctx ended; one before is in wg
	h.gate.Unlock()
	h.wg.Wait()
	h.remotes.wait()
	return nil
}

// enter waits for Run (or the request's end) and counts a listener in
// h.wg, which the caller leaves (wg.Done); ErrClosed once Run's ctx ended.
// Run waits for a listener that entered even when it is still upgrading.
func (h *Handler) enter(r *http.Request) error {
	select {
	case <-h.running:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	h.gate.Lock()
	defer h.gate.Unlock()
	if h.ctx.Err() != nil {
		return ErrClosed
	}
	h.wg.Add(1)
	return nil
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	return Stats{
		Listeners: h.listeners.Load(), ListenersSeen: h.seen.Load(), Frames: h.frames.Load(),
		Dropped: h.dropped.Load(), Refused: h.refusals.Load(),
		RemoteStreams: h.remotes.streams.Load(), RemoteTotal: h.remotes.total.Load(),
	}
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// asset serves one embedded file (404 for anything else).
func (h *Handler) asset(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.ContainsAny(name, "/\\") || name == "" {
			http.NotFound(w, r)
			return
		}
		b, err := fs.ReadFile(assetFS, "assets/"+name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		ct := "application/octet-stream"
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			if v, ok := contentTypes[name[i:]]; ok {
				ct = v
			}
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; img-src 'self' data:")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})
}

// checkOrigin accepts requests without Origin (not a browser), from the
// page's own host, or from AllowedOrigins.
func (h *Handler) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range h.o.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	h.log.Warn("websocket origin refused", "origin", origin, "host", r.Host, "remote", r.RemoteAddr)
	return false
}

// parseRef reads a callreference: 0x hex or decimal.
func parseRef(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	var v uint64
	var err error
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		v, err = strconv.ParseUint(h, 16, 64)
	} else {
		v, err = strconv.ParseUint(s, 10, 64)
		if err != nil {
			v, err = strconv.ParseUint(s, 16, 64)
		}
	}
	if err != nil || v == 0 {
		return 0, fmt.Errorf("%w: callref %q (want 0x… as listcalls shows it)", ErrBadRequest, s)
	}
	return v, nil
}

// sensorOf parses sensor_id ("" = this agent's).
func (h *Handler) sensorOf(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return h.o.SensorID, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: sensor_id %q", ErrBadRequest, s)
	}
	return n, nil
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(appendJSONObject(nil, "success", false, "error", msg))
}

// authorize authenticates r and checks right; on failure it has answered.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, right webui.Rights) (*webui.User, bool) {
	if h.o.Auth == nil {
		httpError(w, http.StatusServiceUnavailable, "no authentication configured")
		return nil, false
	}
	u, err := h.o.Auth.Authenticate(r)
	switch {
	case errors.Is(err, webui.ErrThrottled):
		httpError(w, http.StatusTooManyRequests, "too many failed logins")
		return nil, false
	case errors.Is(err, webui.ErrForbidden):
		httpError(w, http.StatusForbidden, "login refused from this address")
		return nil, false
	case err != nil:
		httpError(w, http.StatusUnauthorized, "authentication required: log in with module=bypass_login or pass user and password")
		return nil, false
	case !u.Rights.Has(right):
		httpError(w, http.StatusForbidden, fmt.Sprintf("user %s lacks %s", u.Name, strings.Join(right.Names(), ",")))
		return nil, false
	}
	return u, true
}
