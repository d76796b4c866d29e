package player_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/spool"
	"pbx-agent/webui/player"
)

// spoolRemote is a Remote over another pipeline's spool, as a sensor's
// manager API serves it (the real listen_stream path is tested by
// agent/manager and agent/sensors): frames, the remote queue's drops, the
// end of the call. opens counts the streams opened.
type spoolRemote struct {
	sp    *spool.Spool
	opens atomic.Int64
}

func (r *spoolRemote) OpenStream(ctx context.Context, ref uint64) (player.RemoteStream, error) {
	sub, err := r.sp.Subscribe(ctx, ref, 5000)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", call.ErrNoCall, err)
	}
	r.opens.Add(1)
	return &subStream{ctx: ctx, sub: sub}, nil
}

type subStream struct {
	ctx context.Context
	sub *audio.Subscription
}

func (s *subStream) NextFrame(f *audio.Frame) (uint64, error) {
	select {
	case g, ok := <-s.sub.Frames():
		if !ok {
			return 0, io.EOF
		}
		*f = *g
		return s.sub.Dropped(), nil
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	}
}

func (s *subStream) EndReason() string { return player.ReasonCallEnded }
func (s *subStream) Close() error      { s.sub.Close(); return nil }

// TestRemoteSensor: a call on sensor 2 (another agent) is heard through
// sensor 1's websocket: one stream from sensor 2 for two listeners.
func TestRemoteSensor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lookup bool // found through RemoteLookup instead of Remotes
	}{
		{"fixed list", false},
		{"via lookup", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := newPipeline(t)
			rm := &spoolRemote{sp: remote.sp}
			a := newAgent(t, nil, func(o *player.Options) {
				o.QueueDepth = 5000
				if !tc.lookup {
					o.Remotes = map[int]player.Remote{2: rm}
					return
				}
				o.RemoteLookup = func(_ context.Context, sensor int) (player.Remote, error) {
					if sensor != 2 {
						return nil, player.ErrUnknownSensor
					}
					return rm, nil
				}
			})
			q := map[string][]string{"user": {"alice"}, "password": {"alicepw"}, "sensor_id": {"2"}}
			src := generator(t, simulate.Options{Calls: 1, Duration: 4 * time.Second, Seed: 3, Tones: [2]float64{1000, 2000}})
			var got [2]received
			var wg sync.WaitGroup
			replayUntilListening(t, remote, src, 4, func(ref uint64) {
				for i := range got {
					c, resp, err := dial(t, a.wsURL(ref, q), nil)
					if err != nil {
						t.Fatalf("dial: %v (%v)", err, resp)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer c.Close()
						got[i] = collect(t, c, 0, nil)
					}()
				}
				waitFor(t, "remote subscription", func() bool {
					st, _ := remote.sp.AudioStats(ref)
					return st.Subscribers == 1 && a.pl.Stats().Listeners == 2
				})
			})
			wg.Wait()
			for i, g := range got {
				if g.end != player.ReasonCallEnded {
					t.Errorf("listener %d: end %q, want %q", i, g.end, player.ReasonCallEnded)
				}
				if len(g.frames) < 150 {
					t.Fatalf("listener %d: %d frames, want ~200", i, len(g.frames))
				}
				// The generated tones survive the trip: caller 1 kHz left, callee 2 kHz right.
				var l, r []float64
				for _, p := range g.pcm[10:] {
					for j := 0; j+1 < len(p); j += 2 {
						l, r = append(l, float64(p[j])), append(r, float64(p[j+1]))
					}
				}
				if f := dominant(l, 8000, 400, 1000, 2000); f != 1000 {
					t.Errorf("listener %d: left channel dominant %v Hz, want 1000", i, f)
				}
				if f := dominant(r, 8000, 400, 1000, 2000); f != 2000 {
					t.Errorf("listener %d: right channel dominant %v Hz, want 2000", i, f)
				}
			}
			// The second listener joined a frame or two later; both heard the same end.
			l0, l1 := got[0].frames[len(got[0].frames)-1].Seq, got[1].frames[len(got[1].frames)-1].Seq
			if l0 != l1 {
				t.Errorf("listeners' last frames %d and %d", l0, l1)
			}
			if n := rm.opens.Load(); n != 1 {
				t.Errorf("remote streams opened: %d, want 1 for two listeners", n)
			}
			if st := a.pl.Stats(); st.RemoteTotal != 1 {
				t.Errorf("handler stats %+v, want 1 remote stream", st)
			}
		})
	}
}

// TestRemoteUnknownCall: an unknown call on a remote sensor is reported
// like a local one.
func TestRemoteUnknownCall(t *testing.T) {
	remote := newPipeline(t)
	a := newAgent(t, nil, func(o *player.Options) {
		o.Remotes = map[int]player.Remote{2: &spoolRemote{sp: remote.sp}}
	})
	c, resp, err := dial(t, a.wsURL(0x4242, map[string][]string{"user": {"alice"}, "password": {"alicepw"}, "sensor_id": {"2"}}), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.Close()
	got := collect(t, c, 0, nil)
	if got.end != player.ReasonNotFound || len(got.frames) != 0 {
		t.Errorf("end %q with %d frames, want %q", got.end, len(got.frames), player.ReasonNotFound)
	}
}
