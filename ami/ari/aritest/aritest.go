// Package aritest is a fake Asterisk ARI server for tests: it answers REST
// requests with the answers of recorded exchanges (shared/fixtures/asterisk-ari
// *.jsonl: status, headers and body as Asterisk sent them), serves the event
// websocket (HTTP 401 on bad credentials, as Asterisk does), pushes recorded
// or scripted events to connected sockets, and logs every request it got.
// Test code only.
package aritest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/websocket"
)

// Exchange is one recorded REST request and Asterisk's answer.
type Exchange struct {
	Method, Path string // Path as sent, without the query (/ari/recordings/live/x/pause)
	Query        string // raw query as sent
	Status       int
	Headers      [][2]string
	Body         []byte // compact JSON as Asterisk sends it; nil when empty
	Label        string
}

// Event is one recorded websocket text frame.
type Event struct {
	App  string // the socket's application label
	Type string
	Data []byte // compact JSON
}

// Recording is one jsonl file: exchanges and events in recorded order.
// Items interleaves them: Items[i] is an *Exchange or an *Event.
type Recording struct {
	Exchanges []*Exchange
	Events    []*Event
	Items     []any
}

type line struct {
	Kind    string `json:"kind"`
	WS      string `json:"ws"`
	Label   string `json:"label"`
	Request *struct {
		Method string `json:"method"`
		Path   string `json:"path"`
		URL    string `json:"url"`
	} `json:"request"`
	Response *struct {
		Status  int             `json:"status"`
		Headers [][2]string     `json:"headers"`
		Body    json.RawMessage `json:"body"`
	} `json:"response"`
	Event json.RawMessage `json:"event"`
}

// Load parses a recorded jsonl stream. Websocket upgrades, notes and close
// frames are skipped.
func Load(r io.Reader) (*Recording, error) {
	rec := &Recording{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	n := 0
	for sc.Scan() {
		n++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("aritest: line %d: %w", n, err)
		}
		switch {
		case l.Kind == "http" && l.WS == "" && l.Request != nil && l.Response != nil:
			ex := &Exchange{Method: l.Request.Method, Path: l.Request.Path, Status: l.Response.Status,
				Headers: l.Response.Headers, Label: l.Label}
			if _, q, ok := strings.Cut(l.Request.URL, "?"); ok {
				ex.Query = q
			}
			if b := bytes.TrimSpace(l.Response.Body); len(b) > 0 && !bytes.Equal(b, []byte("null")) {
				var buf bytes.Buffer
				if err := json.Compact(&buf, b); err != nil {
					return nil, fmt.Errorf("aritest: line %d body: %w", n, err)
				}
				ex.Body = buf.Bytes()
			}
			rec.Exchanges = append(rec.Exchanges, ex)
			rec.Items = append(rec.Items, ex)
		case l.Kind == "ws" && len(l.Event) > 0:
			var buf bytes.Buffer
			if err := json.Compact(&buf, l.Event); err != nil {
				return nil, fmt.Errorf("aritest: line %d event: %w", n, err)
			}
			var t struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(buf.Bytes(), &t)
			ev := &Event{App: l.WS, Type: t.Type, Data: buf.Bytes()}
			rec.Events = append(rec.Events, ev)
			rec.Items = append(rec.Items, ev)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("aritest: %w", err)
	}
	return rec, nil
}

// LoadFile loads a jsonl file or fails the test.
func LoadFile(tb testing.TB, path string) *Recording {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rec, err := Load(f)
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

// Request is what the server received.
type Request struct {
	Method, Path, Query string
	Status              int // what it answered
}

// String renders "POST /ari/recordings/live/x/pause → 204".
func (r Request) String() string {
	s := r.Method + " " + r.Path
	if r.Query != "" {
		s += "?" + r.Query
	}
	return s + " → " + strconv.Itoa(r.Status)
}

// Server is the fake ARI.
type Server struct {
	User, Password string

	srv      *httptest.Server
	mu       sync.Mutex
	queue    map[string][]*Exchange
	received []Request
	sockets  map[*websocket.Conn]string // → app
	joined   chan string                // app of each socket that connected
	wmu      sync.Mutex                 // serialises frames
}

// NewServer starts a fake ARI answering with rec's exchanges (rec may be
// nil), user agent / agentpw unless changed before the first request. It is
// closed by tb.Cleanup.
func NewServer(tb testing.TB, rec *Recording) *Server {
	tb.Helper()
	s := &Server{User: "agent", Password: "agentpw", queue: map[string][]*Exchange{},
		sockets: map[*websocket.Conn]string{}, joined: make(chan string, 64)}
	if rec != nil {
		for _, ex := range rec.Exchanges {
			s.Add(ex)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/ari/events", http.HandlerFunc(s.events))
	mux.Handle("/", http.HandlerFunc(s.rest))
	s.srv = httptest.NewServer(mux)
	tb.Cleanup(s.Close)
	return s
}

// URL is the REST root (…/ari).
func (s *Server) URL() string { return s.srv.URL + "/ari" }

// Close drops the sockets and stops the server.
func (s *Server) Close() {
	s.DropSockets()
	s.srv.Close()
}

func key(method, path string) string { return method + " " + path }

// Add queues an answer for its method and path. Answers are used in order;
// the last one is reused.
func (s *Server) Add(ex *Exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(ex.Method, ex.Path)
	s.queue[k] = append(s.queue[k], ex)
}

// Requests returns what the server received, in order (event socket
// upgrades included, as "GET /ari/events").
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.received...)
}

func (s *Server) log(r *http.Request, status int) {
	s.mu.Lock()
	s.received = append(s.received, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: status})
	s.mu.Unlock()
}

func (s *Server) authorized(r *http.Request) bool {
	if k := r.URL.Query().Get("api_key"); k != "" {
		return k == s.User+":"+s.Password
	}
	u, p, ok := r.BasicAuth()
	return ok && u == s.User && p == s.Password
}

// write sends an answer shaped like Asterisk's (Server, Cache-Control,
// lower-case-t Content-type).
func write(w http.ResponseWriter, status int, headers [][2]string, body []byte) {
	h := w.Header()
	if headers == nil {
		headers = [][2]string{{"Server", "Asterisk"}, {"Cache-Control", "no-cache, no-store"}}
		if body != nil {
			headers = append(headers, [2]string{"Content-type", "application/json"})
		}
	}
	for _, kv := range headers {
		switch strings.ToLower(kv[0]) {
		case "date", "content-length", "connection":
			continue
		}
		h[kv[0]] = append(h[kv[0]], kv[1]) // as recorded, not canonicalised
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	s.log(r, http.StatusUnauthorized)
	write(w, http.StatusUnauthorized, [][2]string{{"Server", "Asterisk"}, {"Cache-Control", "no-cache, no-store"},
		{"WWW-Authenticate", `Basic realm="Asterisk REST Interface"`}, {"Content-type", "application/json"}},
		[]byte(`{"message":"Authentication required"}`))
}

func (s *Server) rest(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.unauthorized(w, r)
		return
	}
	s.mu.Lock()
	k := key(r.Method, r.URL.Path)
	var ex *Exchange
	if q := s.queue[k]; len(q) > 0 {
		ex = q[0]
		if len(q) > 1 {
			s.queue[k] = q[1:]
		}
	}
	s.mu.Unlock()
	if ex == nil {
		// Asterisk's answers for names it does not know (ari-info.jsonl).
		msg := "Resource not found"
		if strings.HasPrefix(r.URL.Path, "/ari/recordings/live/") {
			msg = "Recording not found"
		}
		s.log(r, http.StatusNotFound)
		write(w, http.StatusNotFound, nil, []byte(`{"message":"`+msg+`"}`))
		return
	}
	s.log(r, ex.Status)
	write(w, ex.Status, ex.Headers, ex.Body)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.unauthorized(w, r) // a plain HTTP 401 on the upgrade, not a close frame
		return
	}
	s.log(r, http.StatusSwitchingProtocols)
	app := r.URL.Query().Get("app")
	websocket.Server{Handler: func(ws *websocket.Conn) {
		s.mu.Lock()
		s.sockets[ws] = app
		s.mu.Unlock()
		s.joined <- app
		defer func() {
			s.mu.Lock()
			delete(s.sockets, ws)
			s.mu.Unlock()
			ws.Close()
		}()
		var sink []byte
		for websocket.Message.Receive(ws, &sink) == nil {
		}
	}}.ServeHTTP(w, r)
}

// Joined delivers the application name of every event socket that
// connected, in order.
func (s *Server) Joined() <-chan string { return s.joined }

// Emit sends one event frame to every socket of app ("" = all sockets) and
// returns how many got it.
func (s *Server) Emit(app string, data []byte) int {
	s.mu.Lock()
	var to []*websocket.Conn
	for ws, a := range s.sockets {
		if app == "" || a == app {
			to = append(to, ws)
		}
	}
	s.mu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n := 0
	for _, ws := range to {
		if websocket.Message.Send(ws, string(data)) == nil {
			n++
		}
	}
	return n
}

// DropSockets closes every event socket (a lost connection for the client).
func (s *Server) DropSockets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ws := range s.sockets {
		ws.Close()
	}
}

// BasicAuth renders an Authorization header value (handy for raw requests).
func BasicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// Prepend queues exs ahead of the answers already queued for method and
// path: exs are answered first, in order.
func (s *Server) Prepend(method, path string, exs ...*Exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(method, path)
	s.queue[k] = append(append([]*Exchange(nil), exs...), s.queue[k]...)
}
