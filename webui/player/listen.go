package player

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/webui"
)

// FrameSource gives the decoded frames of this sensor's calls
// (spool.Spool.Subscribe).
type FrameSource interface {
	Subscribe(ctx context.Context, ref uint64, depth int) (*audio.Subscription, error)
}

// End reasons sent in {"type":"end","reason":…}.
const (
	ReasonCallEnded  = "call ended"
	ReasonRightsLost = "rights lost"
	ReasonShutdown   = "server shutdown"
	ReasonNotFound   = "call not found"
	ReasonSlow       = "listener too slow (write timed out)"
)

// status is a text message to the page.
type status struct {
	Type     string `json:"type"` // start, stats, end, error
	Reason   string `json:"reason,omitempty"`
	CallRef  string `json:"callref,omitempty"`
	SensorID *int   `json:"sensor_id,omitempty"`
	Layout   string `json:"layout,omitempty"`
	Rate     int    `json:"rate,omitempty"`
	FrameMS  int    `json:"frame_ms,omitempty"`
	Codec    string `json:"codec,omitempty"`
	Caller   string `json:"caller,omitempty"`
	Called   string `json:"called,omitempty"`
	Remote   bool   `json:"remote,omitempty"`
	Sent     uint64 `json:"sent,omitempty"`
	Dropped  uint64 `json:"dropped"`
	Paused   bool   `json:"paused,omitempty"`
	// ClockOffsetMS is wall clock − capture clock in ms (start message):
	// non-zero while a capture is replayed; the page subtracts it from its
	// latency.
	ClockOffsetMS float64 `json:"clock_offset_ms,omitempty"`
}

func appendJSONObject(dst []byte, kv ...any) []byte {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return append(dst, b...)
}

// listenRequest is what /ws/listen was asked.
type listenRequest struct {
	ref    uint64
	sensor int
	layout byte
	rate   int    // highest frame rate the listener takes
	remote Remote // nil: this sensor
}

func (h *Handler) parseListen(r *http.Request) (listenRequest, error) {
	q := r.URL.Query()
	var lr listenRequest
	var err error
	if lr.ref, err = parseRef(q.Get("callref")); err != nil {
		return lr, err
	}
	s := q.Get("sensor_id")
	if s == "" {
		s = q.Get("sensor")
	}
	if lr.sensor, err = h.sensorOf(s); err != nil {
		return lr, err
	}
	switch strings.ToLower(q.Get("layout")) {
	case "", "stereo":
		lr.layout = LayoutStereo
	case "mono":
		lr.layout = LayoutMono
	default:
		return lr, fmt.Errorf("%w: layout %q (stereo or mono)", ErrBadRequest, q.Get("layout"))
	}
	switch v := q.Get("rate"); v {
	case "":
		lr.rate = audio.MaxRate
	case "8000", "16000", "24000", "48000":
		lr.rate, _ = strconv.Atoi(v)
	default:
		return lr, fmt.Errorf("%w: rate %q (8000, 16000, 24000 or 48000)", ErrBadRequest, v)
	}
	if lr.sensor != h.o.SensorID {
		rm, err := h.remote(r.Context(), lr.sensor)
		if err != nil {
			return lr, err
		}
		lr.remote = rm
	}
	return lr, nil
}

// remote finds how to reach sensor: Remotes, then RemoteLookup.
func (h *Handler) remote(ctx context.Context, sensor int) (Remote, error) {
	if rm, ok := h.o.Remotes[sensor]; ok {
		return rm, nil
	}
	if h.o.RemoteLookup == nil {
		return nil, fmt.Errorf("%w: %d (this agent is %d)", ErrUnknownSensor, sensor, h.o.SensorID)
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.DialTimeout)
	defer cancel()
	rm, err := h.o.RemoteLookup(ctx, sensor)
	switch {
	case errors.Is(err, ErrUnknownSensor):
		return nil, err
	case err != nil:
		h.log.Info("remote sensor lookup failed", "sensor", sensor, "err", err)
		return nil, fmt.Errorf("%w: sensor %d: %w", ErrUnavailable, sensor, err)
	case rm == nil:
		return nil, fmt.Errorf("%w: sensor %d has no manager address", ErrUnavailable, sensor)
	}
	return rm, nil
}

// hijackable unwraps middleware writers (webui.LogRequests) down to the
// one that can hand over the connection.
func hijackable(w http.ResponseWriter) http.ResponseWriter {
	for {
		if _, ok := w.(http.Hijacker); ok {
			return w
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// listen is GET /ws/listen?callref=0x…&sensor_id=N[&layout=mono][&rate=16000].
func (h *Handler) listen(w http.ResponseWriter, r *http.Request) {
	u, ok := h.authorize(w, r, webui.CanListenActiveCall)
	if !ok {
		h.refusals.Add(1)
		return
	}
	lr, err := h.parseListen(r)
	if err != nil {
		h.refusals.Add(1)
		status := http.StatusBadRequest
		msg := strings.TrimPrefix(err.Error(), "player: ")
		switch {
		case errors.Is(err, ErrUnknownSensor):
			status = http.StatusNotFound
		case errors.Is(err, ErrUnavailable):
			// Details (addresses, key errors) went to the log.
			status, msg = http.StatusServiceUnavailable, fmt.Sprintf("sensor %d is offline or unreachable", lr.sensor)
		}
		httpError(w, status, msg)
		return
	}
	if !u.SeesSensor(lr.sensor) {
		h.refusals.Add(1)
		httpError(w, http.StatusForbidden, fmt.Sprintf("user %s may not see sensor %d", u.Name, lr.sensor))
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		h.refusals.Add(1)
		httpError(w, http.StatusBadRequest, "websocket upgrade required")
		return
	}
	if err := h.enter(r); err != nil {
		h.refusals.Add(1)
		httpError(w, http.StatusServiceUnavailable, ReasonShutdown)
		return
	}
	defer h.wg.Done()
	conn, err := h.up.Upgrade(hijackable(w), r, nil)
	if err != nil {
		return // the upgrader answered (403 for a foreign origin)
	}
	h.listeners.Add(1)
	h.seen.Add(1)
	defer h.listeners.Add(-1)
	h.serveListener(r, conn, lr)
}

// subscribe opens the listener's feed: local decode or remote stream.
func (h *Handler) subscribe(ctx context.Context, lr listenRequest) (feed, error) {
	if lr.remote != nil {
		return h.remotes.subscribe(ctx, lr.sensor, lr.ref, lr.remote, h.o.QueueDepth)
	}
	if h.o.Audio == nil {
		return nil, ErrNoAudio
	}
	return h.o.Audio.Subscribe(ctx, lr.ref, h.o.QueueDepth)
}

// serveListener is the listener's writer: frames from its queue, status
// messages, the rights re-check; a reader goroutine notices the close.
func (h *Handler) serveListener(r *http.Request, conn *websocket.Conn, lr listenRequest) {
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer cancel()
		conn.SetReadLimit(4096)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	defer func() {
		conn.Close() // ends the reader
		<-readerDone
	}()

	l := &listener{h: h, r: r, conn: conn, lr: lr, refHex: fmt.Sprintf("0x%x", lr.ref)}
	f, err := h.subscribe(ctx, lr)
	if err != nil {
		reason := l.refusal(ctx, err)
		_ = l.writeText(status{Type: "error", Reason: reason, CallRef: l.refHex})
		l.closeWith(reason, websocket.CloseNormalClosure)
		return
	}
	defer f.Close()
	if err := l.writeText(l.start()); err != nil {
		return
	}
	l.stream(ctx, f)
}

// listener is one websocket listener once upgraded: its request, its
// connection and the call it listens to.
type listener struct {
	h      *Handler
	r      *http.Request
	conn   *websocket.Conn
	lr     listenRequest
	refHex string
}

func (l *listener) writeText(st status) error {
	b, _ := json.Marshal(st)
	_ = l.conn.SetWriteDeadline(time.Now().Add(l.h.o.WriteTimeout))
	return l.conn.WriteMessage(websocket.TextMessage, b)
}

// closeWith sends the end message and a close frame with reason.
func (l *listener) closeWith(reason string, code int) {
	_ = l.writeText(status{Type: "end", Reason: reason})
	if len(reason) > 120 { // a close frame's payload is at most 125 bytes
		reason = reason[:120]
	}
	msg := websocket.FormatCloseMessage(code, reason)
	_ = l.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}

// refusal is the reason told to the page when the feed could not be opened.
func (l *listener) refusal(ctx context.Context, err error) string {
	var why interface{ ListenReason() string }
	switch {
	case errors.As(err, &why):
		return why.ListenReason() // e.g. the ARI tap's failure, not "call not found"
	case errors.Is(err, ErrNoAudio):
		return "live audio is disabled"
	case errors.Is(err, ErrClosed), ctx.Err() != nil:
		return ReasonShutdown
	case l.lr.remote != nil && !errors.Is(err, call.ErrNoCall):
		l.h.log.Warn("remote sensor listen failed", "sensor", l.lr.sensor, "callref", l.refHex, "err", err)
		return "remote sensor unreachable"
	}
	return ReasonNotFound
}

// start is the first text message: the stream's format and the call.
func (l *listener) start() status {
	h, lr := l.h, l.lr
	start := status{Type: "start", CallRef: l.refHex, SensorID: &l.lr.sensor, Layout: "stereo",
		Rate: lr.rate, FrameMS: int(audio.FrameDuration / time.Millisecond), Remote: lr.remote != nil}
	if h.o.Now != nil && lr.remote == nil {
		if off := time.Since(h.o.Now()); off > time.Second || off < -time.Second {
			start.ClockOffsetMS = float64(off.Milliseconds())
		}
	}
	if lr.layout == LayoutMono {
		start.Layout = "mono"
	}
	if lr.remote == nil && h.o.Calls != nil {
		if c, ok := h.o.Calls.Lookup(lr.ref); ok {
			start.Caller, start.Called = c.Caller, c.Called
			sum := c.Summary(h.o.SensorID, time.Now())
			start.Codec = codecName(&sum)
		}
	}
	return start
}

// stream writes f's frames, the periodic stats and the rights re-check
// until the call ends, the page goes or the server shuts down.
func (l *listener) stream(ctx context.Context, f feed) {
	h, lr := l.h, l.lr
	statsT := time.NewTicker(h.o.StatsEvery)
	defer statsT.Stop()
	recheck := time.NewTicker(h.o.RecheckEvery)
	defer recheck.Stop()
	buf := make([]byte, 0, FrameHeaderSize+audio.MaxFrameSamples*4)
	conv := audio.NewConverter(lr.rate) // frames above the listener's rate go down to it
	var sent, lastDropped uint64
	defer func() { h.dropped.Add(f.Dropped() - lastDropped) }()
	for {
		select {
		case <-ctx.Done():
			if h.ctx.Err() != nil {
				l.closeWith(ReasonShutdown, websocket.CloseGoingAway)
			}
			return // else the browser went away
		case fr, ok := <-f.Frames():
			if !ok {
				reason := ReasonCallEnded
				if e, ok := f.(ender); ok && e.EndReason() != "" {
					reason = e.EndReason()
				}
				l.closeWith(reason, websocket.CloseNormalClosure)
				return
			}
			var flags byte
			if d := f.Dropped(); d != lastDropped {
				flags |= FlagDropped
				h.dropped.Add(d - lastDropped)
				lastDropped = d
			}
			if fr.Rate > lr.rate {
				fr = conv.Convert(fr)
			}
			buf = AppendFrame(buf[:0], fr, lr.layout, flags)
			_ = l.conn.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
			if err := l.conn.WriteMessage(websocket.BinaryMessage, buf); err != nil {
				if isTimeout(err) {
					h.log.Info("listener too slow, closed", "callref", l.refHex, "remote", l.r.RemoteAddr)
				}
				return
			}
			sent++
			h.frames.Add(1)
		case <-statsT.C:
			st := status{Type: "stats", Sent: sent, Dropped: f.Dropped()}
			if lr.remote == nil && h.o.Calls != nil {
				if c, ok := h.o.Calls.Lookup(lr.ref); ok {
					st.Paused = c.PausedNow()
				}
			}
			if err := l.writeText(st); err != nil {
				return
			}
		case <-recheck.C:
			u, err := h.o.Auth.Authenticate(l.r)
			if err != nil || !u.Rights.Has(webui.CanListenActiveCall) || !u.SeesSensor(lr.sensor) {
				l.closeWith(ReasonRightsLost, websocket.ClosePolicyViolation)
				return
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
