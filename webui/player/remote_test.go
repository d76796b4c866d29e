package player_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"pbx-agent/agent/manager"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/webui/player"
)

// startManager serves listen_stream for pipe on a real TCP socket.
func startManager(t *testing.T, pipe *pipeline, key *manager.AESKey) *manager.Server {
	t.Helper()
	cfg := manager.Config{
		Addr:     "127.0.0.1:0",
		Commands: map[string]manager.Command{"listen_stream": manager.ListenStreamCommand(pipe.sp)},
	}
	if key != nil {
		cfg.Keys = manager.StaticKey(*key)
	}
	s := manager.New(cfg)
	s.SetReady(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, manager.ErrServerClosed) {
			t.Errorf("manager: %v", err)
		}
	})
	waitFor(t, "manager bound", func() bool { return s.Addr() != nil })
	return s
}

// TestRemoteSensor: a call on sensor 2 (another agent) is heard through
// sensor 1's websocket: one listen_stream connection to sensor 2's manager
// API for two listeners, encrypted when a key is set.
func TestRemoteSensor(t *testing.T) {
	key, err := manager.GenerateAESKey(zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		key    *manager.AESKey
		lookup bool // found through RemoteLookup instead of Remotes
	}{
		{"plaintext", nil, false},
		{"aes", &key, false},
		{"aes via lookup", &key, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := newPipeline(t)
			ms := startManager(t, remote, tc.key)
			a := newAgent(t, nil, func(o *player.Options) {
				o.QueueDepth = 5000
				rm := player.Remote{Addr: ms.Addr().String(), Key: tc.key}
				if !tc.lookup {
					o.Remotes = map[int]player.Remote{2: rm}
					return
				}
				o.RemoteLookup = func(_ context.Context, sensor int) (player.Remote, error) {
					if sensor != 2 {
						return player.Remote{}, player.ErrUnknownSensor
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
			if c := ms.Counters(); c.Accepted != 1 {
				t.Errorf("remote manager accepted %d connections, want 1 for two listeners", c.Accepted)
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
	ms := startManager(t, remote, nil)
	a := newAgent(t, nil, func(o *player.Options) {
		o.Remotes = map[int]player.Remote{2: {Addr: ms.Addr().String()}}
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

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i * 7)
	}
	return len(p), nil
}
