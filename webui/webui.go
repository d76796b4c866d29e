// Package webui serves VoIPmonitor's web APIs from the agent's own data, so
// scripts written against a VoIPmonitor GUI work by changing only the host
// (seed 001): php/model/sql.php (bypass_login sessions, CDR LISTING),
// php/api.php (getVoipCalls, getVoiceRecording, listActiveCalls,
// handleActiveCall, reportSummary, getShareURL, getPCAP, listCdrIds),
// php/pcap.php, php/pcap2text.php (SIP history) and admin.php?cdr_filter=.
//
// Every route is also served under one leading path segment
// (/demo/php/api.php) with the session cookie PHPSESSID-demo, as a GUI
// installed in a subdirectory is.
//
// Responses are written the way PHP's json_encode writes them (member order,
// "\/", \u escapes); database values are strings, NULL is null. Errors are
// {"success":false,"error":"…"} with a 4xx status, or 500 with a fixed text
// (the cause goes to the log, never to the client).
//
// webui imports no agent/... package: it declares what it needs (Calls,
// Remote, Spool; player.Remote and player.FrameSource) and the daemon wires
// the implementations. An unknown call is call.ErrNoCall from every layer;
// active calls are rendered from call.Summary.
package webui

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"pbx-agent/internal/opt"
	"pbx-agent/sniffer/call"
	"pbx-agent/webui/cdrquery"
)

// Calls is what the web APIs need from the call table (a subset of
// agent/manager.Calls, so the same value serves both).
type Calls interface {
	// Active returns snapshots of the calls in progress.
	Active() []call.CDR
	// Pause pauses (on) or resumes recording of a call; an error wrapping
	// call.ErrNoCall (unknown reference) is reported as 404.
	// ctx carries who asked (call.RequesterFrom).
	Pause(ctx context.Context, ref uint64, on bool) error
}

// Options configure the handler. DB is required for every CDR route;
// the others turn features on.
type Options struct {
	DB    *sql.DB
	Users []User // manager.conf users followed by users_file users (later wins)
	// DisableAuth is api_disable_auth: every request is served as an admin.
	DisableAuth bool
	Calls       Calls
	Spool       Spool
	SensorID    int // this agent's id_sensor (listActiveCalls); -1 = unset
	// Remote reaches the other sensors of a multi-sensor site
	// (agent/sensors); nil = this agent's calls only.
	Remote Remote
	Logger *slog.Logger

	// Location is the zone of the times stored in the database
	// (VoIPmonitor's local time, or UTC with utc = yes: the agent's
	// config Location) and so of dates in requests and responses, which
	// mean the stored wall clock as in VoIPmonitor's GUI. nil = UTC.
	Location *time.Location
	// ShareKey signs getShareURL links; nil = a random key (links die
	// with the process).
	ShareKey []byte
	ShareTTL time.Duration // default 7 days
	// PublicURL is the scheme://host[:port] put in share links
	// (http_public_url); "" = BindAddr when it names one address, else the
	// request's Host only when AllowedHost accepts it.
	PublicURL string
	// BindAddr is http_bind (share links when PublicURL is empty).
	BindAddr string
	// AllowedHosts are host names (http_allowed_hosts) accepted in the Host
	// header besides IP literals and localhost. With DisableAuth every
	// request must name one of them (DNS rebinding), and share links are
	// only built from such a Host.
	AllowedHosts []string

	SessionTTL     time.Duration // idle session lifetime (default 24 min, PHP's gc_maxlifetime)
	SessionMaxLife time.Duration // absolute session lifetime, however busy (default 12 h)
	MaxSessions    int           // sessions in all (default 10000)
	MaxBadLogins   int           // failed logins per user and per address before refusing (default 5)
	BadLoginWindow time.Duration // default 15 min
	MaxBodyBytes   int64         // request body cap (default 1 MiB)
	MaxRows        int           // rows one getVoipCalls/listCdrIds/report may return (default 10000)
	VMVersion      int           // _vm_version in bypass_login (default 240034, the seed's)

	// MaxUserSessions is how many sessions one user may hold (default 32):
	// their next login ends their least recently used one, never another
	// user's. MaxSessions stays the bound of the whole table.
	MaxUserSessions int

	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
	// CallsNow is the clock of the active calls (listActiveCalls
	// durations): the sniffer's, a capture's own clock while it is
	// replayed; nil = Now.
	CallsNow func() time.Time
}

// Handler serves the web APIs. Build it with New.
type Handler struct {
	o        Options
	log      *slog.Logger
	mux      *http.ServeMux
	users    atomic.Pointer[directory]
	sessions *sessions
	throttle *throttle
	share    []byte
	audit    auditLog
	xorigin  *http.CrossOriginProtection
	faxes    faxCache
	ipm      ipMode // the database's IP column type (ipmode.go)
}

// New builds the handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	opt.Default(&o.ShareTTL, 7*24*time.Hour)
	opt.Default(&o.SessionTTL, 24*time.Minute)
	opt.Default(&o.SessionMaxLife, 12*time.Hour)
	opt.Default(&o.MaxSessions, 10000)
	opt.Default(&o.MaxUserSessions, 32)
	opt.Default(&o.MaxBadLogins, 5)
	opt.Default(&o.BadLoginWindow, 15*time.Minute)
	opt.Default(&o.MaxBodyBytes, 1<<20)
	opt.Default(&o.MaxRows, 10000)
	if o.VMVersion == 0 {
		o.VMVersion = 240034
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CallsNow == nil {
		o.CallsNow = o.Now
	}
	h := &Handler{
		o: o, log: o.Logger.With("component", "webui"), mux: http.NewServeMux(),
		sessions: newSessions(o.SessionTTL, o.SessionMaxLife, o.MaxSessions, o.MaxUserSessions),
		xorigin:  http.NewCrossOriginProtection(),
		throttle: newThrottle(o.MaxBadLogins, o.BadLoginWindow),
		share:    o.ShareKey,
	}
	if len(h.share) == 0 {
		h.share = make([]byte, 32)
		_, _ = randRead(h.share)
	}
	h.audit.db = o.DB
	h.SetUsers(o.Users)
	h.routes()
	return h
}

// SetUsers replaces the user list (config reload). Sessions of removed users
// stop working at their next request.
func (h *Handler) SetUsers(users []User) {
	d := newDirectory(users)
	h.users.Store(&d)
}

// Handle adds a route to the handler's mux (the player page, websocket,
// /metrics), so one handler serves the whole HTTP side.
func (h *Handler) Handle(pattern string, handler http.Handler) { h.mux.Handle(pattern, handler) }

func (h *Handler) now() time.Time { return h.o.Now() }

// AllowedHost reports whether a Host header (host[:port]) names this agent:
// an IP literal, localhost, or one of AllowedHosts. A DNS-rebinding page
// always arrives with its own domain name, which none of these is.
func (h *Handler) AllowedHost(hostport string) bool {
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	for _, a := range h.o.AllowedHosts {
		if strings.EqualFold(strings.TrimSuffix(a, "."), host) {
			return true
		}
	}
	return false
}

// route registers fn under /path and /{prefix}/path for GET and POST.
func (h *Handler) route(path string, fn http.HandlerFunc) {
	for _, m := range []string{"GET ", "POST "} {
		h.mux.HandleFunc(m+path, fn)
		h.mux.HandleFunc(m+"/{prefix}"+path, fn)
	}
}

func (h *Handler) routes() {
	h.route("/php/model/sql.php", h.sqlPHP)
	h.route("/php/api.php", h.apiPHP)
	h.route("/php/pcap.php", h.pcapPHP)
	h.route("/php/pcap2text.php", h.pcap2text)
	h.route("/admin.php", h.adminPHP)
	h.mux.HandleFunc("GET /share.php", h.sharePHP)
	h.consoleRoutes()
}

// ServeHTTP refuses a foreign Host when authorization is off (DNS
// rebinding) and state-changing requests a browser sends from another origin
// (CSRF), limits the body, recovers from panics (logged, never shown) and
// dispatches.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.o.DisableAuth && !h.AllowedHost(r.Host) {
		h.log.Warn("request for a foreign Host refused", "host", r.Host, "remote", r.RemoteAddr)
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not this agent's: use its IP address or localhost, or add the name to http_allowed_hosts", r.Host))
		return
	}
	if err := h.xorigin.Check(r); err != nil {
		h.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	h.mux.ServeHTTP(w, r)
}

// --- responses -------------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v any) {
	b := appendJSON(make([]byte, 0, 512), v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, obj{{"success", false}, {"error", msg}})
}

// fail maps an error to a status and a message the client may see.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *cdrquery.ParamError
	switch {
	case errors.Is(err, errAlreadyAnswered):
		return
	case errors.As(err, &pe), errors.Is(err, cdrquery.ErrNoDate), errors.Is(err, cdrquery.ErrBadObject),
		errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, clean(err))
	case errors.Is(err, ErrThrottled):
		w.Header().Set("Retry-After", strconv.Itoa(int(h.o.BadLoginWindow/time.Second)))
		writeError(w, http.StatusTooManyRequests, clean(err))
	case errors.Is(err, ErrAuth):
		writeError(w, http.StatusUnauthorized, "authentication required: log in with module=bypass_login or pass user and password")
	case errors.Is(err, ErrForbidden):
		writeError(w, http.StatusForbidden, clean(err))
	case errors.Is(err, ErrNotFound), errors.Is(err, fs.ErrNotExist):
		writeError(w, http.StatusNotFound, clean(err))
	case errors.Is(err, ErrBadToken):
		writeError(w, http.StatusForbidden, clean(err))
	case errors.Is(err, ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, clean(err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "request cancelled or timed out")
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
			return
		}
		h.log.Error("request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// clean strips the package prefixes from an error meant for a client.
func clean(err error) string {
	s := err.Error()
	for _, p := range []string{"webui: ", "cdrquery: "} {
		for {
			i := indexOf(s, p)
			if i < 0 {
				break
			}
			s = s[:i] + s[i+len(p):]
		}
	}
	return s
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// need authenticates r and checks rights; on failure it has answered.
func (h *Handler) need(w http.ResponseWriter, r *http.Request, rights Rights) (*User, bool) {
	u, err := h.Authenticate(r)
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	if !u.Rights.Has(rights) {
		h.fail(w, r, fmt.Errorf("%w: user %s lacks %v", ErrForbidden, u.Name, (rights&^u.Rights).Names()))
		return nil, false
	}
	return u, true
}

func (h *Handler) db() (*sql.DB, error) {
	if h.o.DB == nil {
		return nil, fmt.Errorf("%w: no database configured", ErrUnavailable)
	}
	return h.o.DB, nil
}

// form parses query and body parameters as PHP's $_REQUEST.
func form(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}

// copyLimited streams a file to the client.
func copyLimited(w io.Writer, r io.Reader) error {
	_, err := io.Copy(w, r)
	return err
}

// needForm is need followed by form: it authenticates r, checks rights and
// parses r's parameters; on failure it has answered.
func (h *Handler) needForm(w http.ResponseWriter, r *http.Request, rights Rights) (*User, bool) {
	u, ok := h.need(w, r, rights)
	if !ok {
		return nil, false
	}
	if err := form(r); err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return u, true
}

// formInt is the parsed form's parameter name as a whole number within
// [lo, hi]; def when absent or empty.
func formInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.Form.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s: %q is not a whole number in [%d, %d]", ErrBadRequest, name, v, lo, hi)
	}
	return n, nil
}
