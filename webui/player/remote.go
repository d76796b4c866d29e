package player

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/agent/manager"
	"pbx-agent/sniffer/audio"
)

// Remote is another agent (sensor) whose calls are heard through its
// manager API's listen_stream.
type Remote struct {
	Network string          // "tcp" (default) or "unix"
	Addr    string          // host:port of its manager API
	Key     *manager.AESKey // its manager_aes_key; nil = plaintext
}

// feed is one listener's bounded queue of frames: a local
// audio.Subscription or a remote fan-out subscription.
type feed interface {
	Frames() <-chan *audio.Frame
	Dropped() uint64
	Close()
}

// ender is a feed that knows why its frames ended.
type ender interface{ EndReason() string }

type remoteKey struct {
	sensor int
	ref    uint64
}

// remoteHub keeps one listen_stream connection per remote call, shared by
// every listener of that call.
type remoteHub struct {
	log     *slog.Logger
	dialTO  time.Duration
	ctx     context.Context
	wg      sync.WaitGroup
	mu      sync.Mutex
	calls   map[remoteKey]*remoteCall
	streams atomic.Int64 // connections open now
	total   atomic.Uint64
}

type remoteCall struct {
	hub    *remoteHub
	key    remoteKey
	ready  chan struct{} // closed once the dial finished
	err    error         // dial result
	cancel context.CancelFunc
	subs   []*fanSub
	reason string
	closed bool
}

func newRemoteHub(ctx context.Context, log *slog.Logger, dialTO time.Duration) *remoteHub {
	return &remoteHub{ctx: ctx, log: log, dialTO: dialTO, calls: map[remoteKey]*remoteCall{}}
}

// subscribe joins the call's stream, dialing it when it is the first
// listener. It returns the dial's error (manager.ErrCallNotFound, …).
func (h *remoteHub) subscribe(ctx context.Context, sensor int, ref uint64, r Remote, depth int) (feed, error) {
	k := remoteKey{sensor, ref}
	h.mu.Lock()
	if h.ctx.Err() != nil {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	rc := h.calls[k]
	if rc == nil {
		// The first listener is in subs before the reader starts: else the
		// reader's first frame could find nobody and end the stream.
		rc = &remoteCall{hub: h, key: k, ready: make(chan struct{})}
		s := &fanSub{ch: make(chan *audio.Frame, depth), rc: rc}
		rc.subs = []*fanSub{s}
		h.calls[k] = rc
		h.mu.Unlock()
		h.dial(rc, r)
		if rc.err != nil {
			return nil, rc.err
		}
		return s, nil
	}
	h.mu.Unlock()
	select {
	case <-rc.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if rc.err != nil {
		return nil, rc.err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if rc.closed {
		// Ended between the dial and now.
		return nil, fmt.Errorf("%w: %s", audio.ErrClosed, rc.reason)
	}
	s := &fanSub{ch: make(chan *audio.Frame, depth), rc: rc}
	rc.subs = append(rc.subs, s)
	return s, nil
}

// dial opens the stream and starts its reader; it closes rc.ready.
func (h *remoteHub) dial(rc *remoteCall, r Remote) {
	defer close(rc.ready)
	ctx, cancel := context.WithCancel(h.ctx)
	rc.cancel = cancel
	network := r.Network
	if network == "" {
		network = "tcp"
	}
	// The stream lives with ctx; the timer bounds only the dial.
	timer := time.AfterFunc(h.dialTO, cancel)
	st, err := manager.DialStream(ctx, network, r.Addr, rc.key.ref, manager.StreamStereo, r.Key)
	if !timer.Stop() && err == nil {
		st.Close() // the timeout fired as the dial succeeded: the stream is dead
		err = fmt.Errorf("player: dial sensor %d: %w", rc.key.sensor, context.DeadlineExceeded)
	}
	if err != nil {
		cancel()
		rc.err = err
		h.mu.Lock()
		delete(h.calls, rc.key)
		h.mu.Unlock()
		return
	}
	h.streams.Add(1)
	h.total.Add(1)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer h.streams.Add(-1)
		defer cancel()
		defer st.Close()
		h.read(rc, st)
	}()
}

// read fans the stream's frames out until it ends or the last listener
// leaves.
func (h *remoteHub) read(rc *remoteCall, st *manager.Stream) {
	reason := "call ended"
	var remoteDropped uint32
	for {
		rec, err := st.Next()
		if err != nil {
			if rc.hub.ctx.Err() != nil {
				reason = "server shutdown"
			} else if !errors.Is(err, context.Canceled) {
				reason = "remote sensor stream lost"
				h.log.Debug("remote listen_stream ended", "sensor", rc.key.sensor, "callref", fmt.Sprintf("0x%x", rc.key.ref), "err", err)
			}
			break
		}
		if rec.Kind == manager.StreamEnd {
			reason = rec.Reason
			break
		}
		if rec.Kind != manager.StreamAudio {
			continue
		}
		// Frames the remote side dropped are lost to every listener.
		lost := uint64(rec.Dropped - remoteDropped)
		remoteDropped = rec.Dropped
		f := new(audio.Frame)
		if err := rec.Frame(f); err != nil {
			reason = "bad remote stream"
			break
		}
		h.mu.Lock()
		if len(rc.subs) == 0 {
			h.mu.Unlock()
			reason = "no listener"
			break
		}
		for _, s := range rc.subs {
			s.dropped.Add(lost)
			s.send(f)
		}
		h.mu.Unlock()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	rc.closed, rc.reason = true, reason
	for _, s := range rc.subs {
		s.reason = reason
		close(s.ch)
	}
	rc.subs = nil
	if h.calls[rc.key] == rc {
		delete(h.calls, rc.key)
	}
}

// wait joins the readers (after the hub's context ended).
func (h *remoteHub) wait() { h.wg.Wait() }

// fanSub is one listener of a remote call: the same drop-oldest queue as
// audio.Subscription.
type fanSub struct {
	ch      chan *audio.Frame
	dropped atomic.Uint64
	rc      *remoteCall
	reason  string // set under hub.mu before ch is closed
}

func (s *fanSub) Frames() <-chan *audio.Frame { return s.ch }
func (s *fanSub) Dropped() uint64             { return s.dropped.Load() }

// EndReason is why the frames ended (valid once Frames is closed).
func (s *fanSub) EndReason() string {
	h := s.rc.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	return s.reason
}

// Close leaves the call; the last listener's leaving closes the stream.
func (s *fanSub) Close() {
	rc := s.rc
	h := rc.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, o := range rc.subs {
		if o == s {
			rc.subs = append(rc.subs[:i], rc.subs[i+1:]...)
			close(s.ch)
			if len(rc.subs) == 0 && !rc.closed {
				rc.closed, rc.reason = true, "no listener"
				if h.calls[rc.key] == rc {
					delete(h.calls, rc.key)
				}
				rc.cancel()
			}
			return
		}
	}
}

// send queues f, dropping the oldest queued frame when full (under hub.mu).
func (s *fanSub) send(f *audio.Frame) { audio.SendDropOldest(s.ch, f, &s.dropped) }
