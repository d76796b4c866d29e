package player

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/sniffer/audio"
)

// Remote is another agent (sensor) whose calls are heard from this one.
// The composition root supplies it (agent/sensors: the sensor's manager
// API listen_stream, with its AES key).
type Remote interface {
	// OpenStream opens call ref's live audio, both directions. An unknown
	// call is an error wrapping call.ErrNoCall. The stream lives until ctx
	// ends or it is closed.
	OpenStream(ctx context.Context, ref uint64) (RemoteStream, error)
}

// RemoteStream is one remote call's frames, read one at a time.
type RemoteStream interface {
	// NextFrame fills f with the next 20 ms frame and returns how many
	// frames the remote side has dropped for this stream so far. It
	// returns io.EOF once the remote side ended the stream (EndReason says
	// why) and another error when the stream broke.
	NextFrame(f *audio.Frame) (dropped uint64, err error)
	// EndReason is the remote side's reason after io.EOF ("call ended",
	// "server shutdown").
	EndReason() string
	Close() error
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

// newRemoteHub returns a hub whose ctx (the player's Run's) is set before
// the first subscribe.
func newRemoteHub(log *slog.Logger, dialTO time.Duration) *remoteHub {
	return &remoteHub{log: log, dialTO: dialTO, calls: map[remoteKey]*remoteCall{}}
}

// subscribe joins the call's stream, dialing it when it is the first
// listener. It returns the dial's error (call.ErrNoCall, …).
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
	// The stream lives with ctx; the timer bounds only the dial.
	timer := time.AfterFunc(h.dialTO, cancel)
	st, err := r.OpenStream(ctx, rc.key.ref)
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
func (h *remoteHub) read(rc *remoteCall, st RemoteStream) {
	reason := "call ended"
	var remoteDropped uint64
	for {
		f := new(audio.Frame)
		dropped, err := st.NextFrame(f)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				reason = st.EndReason()
			case rc.hub.ctx.Err() != nil:
				reason = "server shutdown"
			case !errors.Is(err, context.Canceled):
				reason = "remote sensor stream lost"
				h.log.Debug("remote listen_stream ended", "sensor", rc.key.sensor, "callref", fmt.Sprintf("0x%x", rc.key.ref), "err", err)
			}
			break
		}
		// Frames the remote side dropped are lost to every listener.
		lost := dropped - min(dropped, remoteDropped)
		remoteDropped = dropped
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
	i := slices.Index(rc.subs, s)
	if i < 0 {
		return // closed already
	}
	rc.subs = slices.Delete(rc.subs, i, i+1)
	close(s.ch)
	if len(rc.subs) == 0 && !rc.closed {
		rc.closed, rc.reason = true, "no listener"
		if h.calls[rc.key] == rc {
			delete(h.calls, rc.key)
		}
		rc.cancel()
	}
}

// send queues f, dropping the oldest queued frame when full (under hub.mu).
func (s *fanSub) send(f *audio.Frame) { audio.SendDropOldest(s.ch, f, &s.dropped) }
