package ari

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	arilib "github.com/CyCoreSystems/ari/v5"
	"golang.org/x/net/websocket"

	"pbx-agent/ami"
)

// Recording is the client's view of one live recording.
type Recording struct {
	Name   string      `json:"name"`
	Key    *arilib.Key `json:"-"`
	State  string      `json:"state"`  // queued, recording, paused (as last seen)
	Target string      `json:"target"` // target_uri: "channel:<id>" or "bridge:<id>"
	// Channels are the Uniqueids whose audio the recording holds: the target
	// channel, the channel a Snoop/<uniqueid>-… target spies on, or the
	// known members of a target bridge.
	Channels []string `json:"channels,omitempty"`
	// CallIDs are the SIP Call-IDs (ARI protocol_id) of those channels, when known.
	CallIDs []string `json:"callids,omitempty"`
}

// UpdateKind says what an Update carries.
type UpdateKind uint8

const (
	// UpdateConnected: the event socket (re)connected; recordings may have
	// changed meanwhile (the table was refreshed before this is sent).
	UpdateConnected UpdateKind = iota + 1
	// UpdateDisconnected: the event socket was lost.
	UpdateDisconnected
	// UpdateRecordingStarted: RecordingStarted.
	UpdateRecordingStarted
	// UpdateRecordingEnded: RecordingFinished or RecordingFailed.
	UpdateRecordingEnded
)

// Update is what the Updates queue delivers.
type Update struct {
	Kind      UpdateKind
	Recording Recording // for the recording kinds
}

// Updates is a bounded queue; when it is full, updates are dropped and
// counted (Stats.UpdatesDropped). It is closed when Run returns.
func (c *Client) Updates() <-chan Update { return c.updates }

func (c *Client) offer(u Update) {
	select {
	case c.updates <- u:
	default:
		c.dropped.Add(1)
	}
}

// Recordings returns the live recordings seen on the event socket, by name.
func (c *Client) Recordings() []Recording {
	c.mu.Lock()
	out := make([]Recording, 0, len(c.recs))
	for _, r := range c.recs {
		out = append(out, c.view(r))
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Recording) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// view resolves a recording's channels under c.mu.
func (c *Client) view(r *recState) Recording {
	v := Recording{Name: r.data.Name, Key: arilib.NewKey(arilib.LiveRecordingKey, r.data.Name), State: r.data.State, Target: r.target}
	kind, id, _ := strings.Cut(r.target, ":")
	var ids []string
	switch kind {
	case "channel":
		ids = []string{id}
	case "bridge":
		for m := range c.bridges[id] {
			ids = append(ids, m)
		}
		slices.Sort(ids)
	}
	for _, ch := range ids {
		info := c.chans[ch]
		if spied := SnoopedChannel(info.name); spied != "" {
			ch, info = spied, c.chans[spied]
		}
		if !slices.Contains(v.Channels, ch) {
			v.Channels = append(v.Channels, ch)
		}
		if info.callID != "" && !slices.Contains(v.CallIDs, info.callID) {
			v.CallIDs = append(v.CallIDs, info.callID)
		}
	}
	return v
}

// SnoopedChannel returns the Uniqueid a snoop channel spies on
// ("Snoop/1795561806.10-00000002" → "1795561806.10"), or "".
func SnoopedChannel(name string) string {
	rest, ok := strings.CutPrefix(name, "Snoop/")
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(rest, '-'); i > 0 {
		return rest[:i]
	}
	return ""
}

// eventFields are the parts of an event the table needs that ari/v5's
// ChannelData lacks (protocol_id, the SIP Call-ID, Asterisk 16.30+/18.16+).
type eventFields struct {
	Channel *struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		ProtocolID string `json:"protocol_id"`
	} `json:"channel"`
}

// HandleEvent applies one event frame (a websocket text message) to the
// table. Run calls it; tests and replays may call it directly.
func (c *Client) HandleEvent(data []byte) error {
	c.events.Add(1)
	ev, err := arilib.DecodeEvent(data)
	if err != nil {
		c.bad.Add(1)
		return fmt.Errorf("ari: event: %w", err)
	}
	var f eventFields
	if err := json.Unmarshal(data, &f); err != nil {
		c.bad.Add(1)
		return fmt.Errorf("ari: event: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := f.Channel; ch != nil && ch.ID != "" {
		info := c.chans[ch.ID]
		if ch.Name != "" {
			info.name = ch.Name
		}
		if ch.ProtocolID != "" {
			info.callID = ch.ProtocolID
		}
		if _, known := c.chans[ch.ID]; !known {
			makeRoom(c, c.chans)
		}
		c.chans[ch.ID] = info
	}
	switch e := ev.(type) {
	case *arilib.RecordingStarted:
		r := &recState{data: e.Recording, target: e.Recording.TargetURI}
		if _, known := c.recs[e.Recording.Name]; !known {
			makeRoom(c, c.recs)
		}
		c.recs[e.Recording.Name] = r
		c.offer(Update{Kind: UpdateRecordingStarted, Recording: c.view(r)})
	case *arilib.RecordingFinished:
		c.endRecording(e.Recording)
	case *arilib.RecordingFailed:
		c.endRecording(e.Recording)
	case *arilib.ChannelEnteredBridge:
		m := c.bridges[e.Bridge.ID]
		if m == nil {
			makeRoom(c, c.bridges)
			m = map[string]bool{}
			c.bridges[e.Bridge.ID] = m
		}
		if !m[e.Channel.ID] {
			makeRoom(c, m)
		}
		m[e.Channel.ID] = true
	case *arilib.ChannelLeftBridge:
		if m := c.bridges[e.Bridge.ID]; m != nil {
			delete(m, e.Channel.ID)
			if len(m) == 0 {
				delete(c.bridges, e.Bridge.ID) // an empty bridge waits for its destruction without a table
			}
		}
	case *arilib.BridgeDestroyed:
		delete(c.bridges, e.Bridge.ID)
	case *arilib.StasisStart:
		c.setStasis(e.Channel.ID, true)
	case *arilib.StasisEnd:
		c.setStasis(e.Channel.ID, false)
	case *arilib.ChannelDestroyed:
		c.forgetChannel(e.Channel.ID)
	}
	return nil
}

// makeRoom evicts an entry of a table the server fills (channels,
// recordings, bridges, a bridge's members) when it holds MaxChannels: each
// goes only with an event ending it, which a server restarted, or one
// inventing names, never sends. c.mu is held.
func makeRoom[V any](c *Client, m map[string]V) {
	if len(m) < c.cfg.MaxChannels {
		return
	}
	for k := range m {
		delete(m, k)
		c.evicted.Add(1)
		return
	}
}

// setStasis records a channel entering or leaving the application; c.mu is held.
func (c *Client) setStasis(id string, in bool) {
	if info, ok := c.chans[id]; ok {
		info.inStasis = in
		c.chans[id] = info
	}
	if in {
		c.wakeStasis()
	}
}

func (c *Client) endRecording(d arilib.LiveRecordingData) {
	r := c.recs[d.Name]
	if r == nil {
		r = &recState{target: d.TargetURI}
	}
	r.data = d
	delete(c.recs, d.Name)
	c.offer(Update{Kind: UpdateRecordingEnded, Recording: c.view(r)})
}

// forgetChannel drops a destroyed channel unless a live recording still
// refers to it (a Snoop target's name is needed to resolve the spied leg).
func (c *Client) forgetChannel(id string) {
	for _, r := range c.recs {
		if r.target == "channel:"+id {
			return
		}
	}
	delete(c.chans, id)
}

// EventsURL returns the websocket URL for cfg: ws(s)://…/ari/events?app=…
func EventsURL(cfg Config) (string, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: bad URL %q", ErrNotConfigured, cfg.URL)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	u.Path += "/events"
	q := url.Values{}
	q.Set("app", cfg.Application)
	if cfg.SubscribeAll {
		q.Set("subscribeAll", "true")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Run keeps the event socket up until ctx ends, reconnecting with capped
// exponential backoff and jitter, and returns ctx's error. After each
// (re)connect the known recordings are re-read (GET) so the table is right
// before UpdateConnected is sent. Run may be called once.
func (c *Client) Run(ctx context.Context) error {
	if c.ran.Swap(true) {
		return errors.New("ari: Client.Run called twice")
	}
	defer close(c.updates)
	if c.cfg.URL == "" {
		<-ctx.Done()
		return ctx.Err()
	}
	wsURL, err := EventsURL(c.cfg)
	if err != nil {
		// ARI is optional: a URL it cannot use is said (log, last error,
		// pbx_ari_up 0) and the client stays down, as with no URL.
		c.fail(err)
		c.log.Error("ARI not used", "err", err)
		<-ctx.Done()
		return ctx.Err()
	}
	attempt := 0
	for {
		err := c.session(ctx, wsURL)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil { // the session was up: start the backoff over
			attempt = 0
			c.fail(errors.New("event socket lost"))
		} else {
			c.fail(err)
		}
		d := ami.Backoff(attempt, c.cfg.BackoffMin, c.cfg.BackoffMax)
		if refused(err) {
			d = min(d, c.cfg.ProbeMax) // nobody listens yet: probe often
		}
		attempt++
		c.log.Warn("ARI event socket down", "url", wsURL, "err", err, "retry_in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// session runs one websocket connection; nil means it was up and then ended.
func (c *Client) session(ctx context.Context, wsURL string) error {
	wcfg, err := websocket.NewConfig(wsURL, "http://localhost/")
	if err != nil {
		return fmt.Errorf("ari: %w", err)
	}
	wcfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.cfg.Username+":"+c.cfg.Password)))
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ws, err := wcfg.DialContext(dctx)
	cancel()
	if err != nil {
		return fmt.Errorf("ari: connect %s: %w", wsURL, err)
	}
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer func() {
		stop()
		ws.Close()
	}()
	c.connects.Add(1)
	c.up.Store(true)
	c.log.Info("ARI event socket connected", "url", wsURL)
	c.refresh(ctx)
	c.offer(Update{Kind: UpdateConnected})
	defer func() {
		c.up.Store(false)
		c.mu.Lock()
		c.wakeStasis() // WaitStasis returns ErrNotConnected
		c.mu.Unlock()
		c.offer(Update{Kind: UpdateDisconnected})
	}()
	for {
		var data []byte
		if err := websocket.Message.Receive(ws, &data); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("ARI event socket lost", "err", err)
			}
			return nil
		}
		if err := c.HandleEvent(data); err != nil {
			c.log.Debug("ARI event skipped", "err", err)
		}
	}
}

// refresh re-reads every known live recording: what finished while the
// socket was down is dropped, states are updated.
func (c *Client) refresh(ctx context.Context) {
	c.mu.Lock()
	names := make([]string, 0, len(c.recs))
	for n := range c.recs {
		names = append(names, n)
	}
	c.mu.Unlock()
	for _, n := range names {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := c.LiveRecording(rctx, n)
		cancel()
		c.mu.Lock()
		switch {
		case errors.Is(err, ErrNotFound):
			delete(c.recs, n)
		case err == nil && c.recs[n] != nil:
			c.recs[n].data.State = d.State
		}
		c.mu.Unlock()
	}
}

// refused reports a connect refused by the port (websocket.DialError does
// not unwrap).
func refused(err error) bool {
	var de *websocket.DialError
	if errors.As(err, &de) {
		err = de.Err
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
