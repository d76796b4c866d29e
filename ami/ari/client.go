// Package ari is the agent's small interface to the Asterisk REST Interface:
// live-recording control (pause/unpause, mute/unmute, state) over REST with a
// context on every request, and an event websocket that keeps the table of
// live recordings (there is no "list live recordings" request: GET
// /recordings/live answers 405) and of the channels they record.
//
// It uses github.com/CyCoreSystems/ari/v5 for the data model (ari.Key,
// LiveRecordingData) and the event decoder (ari.DecodeEvent), but not its
// native client: that client's requests take no context and have no timeout
// (a zero http.Client), it reconnects with a fixed sleep, keeps its
// "connected" flag unsynchronised and drops bus events without counting.
package ari

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	arilib "github.com/CyCoreSystems/ari/v5"

	"pbx-agent/internal/opt"
)

// Config configures a Client. Zero values are usable where noted.
type Config struct {
	// URL is the REST root, e.g. http://127.0.0.1:8088/ari (http.conf
	// bindaddr/bindport/prefix + "/ari").
	URL      string
	Username string
	Password string
	// Application is the Stasis application the event socket registers
	// (default "pbxagent").
	Application string
	// SubscribeAll asks for every channel/bridge/recording event in the
	// system, not only those of the application's own channels.
	SubscribeAll bool
	// HTTPClient sends REST requests (default: a client without a global
	// timeout; every request is bounded by its ctx).
	HTTPClient *http.Client
	Logger     *slog.Logger
	BackoffMin time.Duration // websocket reconnect, default 500 ms
	BackoffMax time.Duration // default 30 s
	// ProbeMax caps the wait while the port refuses connections (Asterisk
	// (re)starting): the socket is back within this long once Asterisk
	// listens. Default 1 s.
	ProbeMax time.Duration
	// UpdateQueue is the length of the Updates queue (default 256).
	UpdateQueue int
	// MaxChannels bounds the remembered channels, and alike the live
	// recordings, the bridges and each bridge's members (default 8192).
	MaxChannels int
}

func (c Config) withDefaults() Config {
	c.URL = strings.TrimRight(c.URL, "/")
	opt.Default(&c.Application, "pbxagent")
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	opt.Default(&c.BackoffMin, 500*time.Millisecond)
	opt.Default(&c.BackoffMax, 30*time.Second)
	opt.Default(&c.ProbeMax, time.Second)
	opt.Default(&c.UpdateQueue, 256)
	opt.Default(&c.MaxChannels, 8192)
	return c
}

// maxBody bounds a REST answer read into memory.
const maxBody = 1 << 20

// Client talks to one Asterisk's ARI. REST methods may be called from any
// goroutine; Run keeps the event socket up.
type Client struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	recs     map[string]*recState       // live recordings by name
	chans    map[string]chanInfo        // channel id → what ARI told about it
	bridges  map[string]map[string]bool // bridge id → member channel ids
	ran      atomic.Bool                // Run has been called
	updates  chan Update
	dropped  atomic.Uint64
	up       atomic.Bool
	connects atomic.Uint64
	bad      atomic.Uint64 // undecodable event frames
	evicted  atomic.Uint64 // channels, recordings, bridges or members forgotten past MaxChannels
	events   atomic.Uint64 // event frames received
	failures atomic.Uint64 // connect attempts that failed plus sockets lost
	lastErr  atomic.Pointer[lastError]
	// stasis is closed (and replaced) on every StasisStart: WaitStasis's wake-up.
	stasis chan struct{}
}

type lastError struct {
	at  time.Time
	err string
}

type recState struct {
	data   arilib.LiveRecordingData
	target string
}

type chanInfo struct {
	name, callID string
	inStasis     bool // between its StasisStart and StasisEnd
}

// New returns a client; call Run to receive events.
func New(cfg Config) *Client {
	cfg = cfg.withDefaults()
	return &Client{cfg: cfg, log: cfg.Logger.With("component", "ari"),
		recs: map[string]*recState{}, chans: map[string]chanInfo{}, bridges: map[string]map[string]bool{},
		updates: make(chan Update, cfg.UpdateQueue), stasis: make(chan struct{})}
}

// Configured reports whether a URL was given.
func (c *Client) Configured() bool { return c.cfg.URL != "" }

// Connected reports whether the event socket is up.
func (c *Client) Connected() bool { return c.up.Load() }

// Stats are the client's counters.
type Stats struct {
	Connects, UpdatesDropped, BadEvents uint64
	// Events counts event frames received; Failures connect attempts that
	// failed plus event sockets lost; LastError is when the last of those
	// happened (zero: never) and Err why.
	Events, Failures uint64
	// Evicted counts table entries forgotten past MaxChannels.
	Evicted   uint64
	LastError time.Time
	Err       string
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	st := Stats{Connects: c.connects.Load(), UpdatesDropped: c.dropped.Load(), BadEvents: c.bad.Load(),
		Events: c.events.Load(), Failures: c.failures.Load(), Evicted: c.evicted.Load()}
	if le := c.lastErr.Load(); le != nil {
		st.LastError, st.Err = le.at, le.err
	}
	return st
}

func (c *Client) fail(err error) {
	c.failures.Add(1)
	c.lastErr.Store(&lastError{at: time.Now(), err: err.Error()})
}

// WaitStasis waits until the channel has entered the Stasis application
// (its StasisStart event was received; one that came before the call
// counts). A channel created with app=… is usable in a bridge only then:
// before it, Asterisk answers 422 "Channel not in Stasis application". It
// returns ErrNotConnected at once while the event socket is down (no event
// can come), else nil or ctx's error.
func (c *Client) WaitStasis(ctx context.Context, channelID string) error {
	for {
		c.mu.Lock()
		in, wake := c.chans[channelID].inStasis, c.stasis
		c.mu.Unlock()
		if in {
			return nil
		}
		if !c.Connected() {
			return ErrNotConnected
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// wakeStasis wakes every WaitStasis; c.mu is held.
func (c *Client) wakeStasis() {
	close(c.stasis)
	c.stasis = make(chan struct{})
}

// PauseRecording pauses (on) or unpauses a live recording: POST or DELETE
// /recordings/live/{name}/pause. Asterisk answers 204 both times when it is
// already in that state; 404 (ErrNotFound) when the name is not live, 409
// (ErrConflict) while the recording is still queued.
func (c *Client) PauseRecording(ctx context.Context, name string, on bool) error {
	return c.toggle(ctx, name, "pause", on)
}

// MuteRecording mutes (on) or unmutes a live recording: silence is written
// instead of audio and the file keeps its timeline.
func (c *Client) MuteRecording(ctx context.Context, name string, on bool) error {
	return c.toggle(ctx, name, "mute", on)
}

func (c *Client) toggle(ctx context.Context, name, what string, on bool) error {
	method := http.MethodDelete
	if on {
		method = http.MethodPost
	}
	if err := c.do(ctx, method, "/recordings/live/"+url.PathEscape(name)+"/"+what, nil); err != nil {
		return err
	}
	if what == "pause" {
		c.mu.Lock()
		if r := c.recs[name]; r != nil {
			r.data.State = "recording"
			if on {
				r.data.State = "paused"
			}
		}
		c.mu.Unlock()
	}
	return nil
}

// LiveRecording fetches a live recording's state (GET /recordings/live/{name}).
func (c *Client) LiveRecording(ctx context.Context, name string) (*arilib.LiveRecordingData, error) {
	var d arilib.LiveRecordingData
	if err := c.do(ctx, http.MethodGet, "/recordings/live/"+url.PathEscape(name), &d); err != nil {
		return nil, err
	}
	d.Key = arilib.NewKey(arilib.LiveRecordingKey, d.Name)
	return &d, nil
}

// do sends one REST request; out, when not nil, receives the JSON answer.
func (c *Client) do(ctx context.Context, method, path string, out any) error {
	if c.cfg.URL == "" {
		return ErrNotConfigured
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.URL+path, nil)
	if err != nil {
		return fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("ari: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(body))
		}
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Message: m.Message}
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("ari: %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
