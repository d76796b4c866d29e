package sensors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"pbx-agent/agent/manager"
	"pbx-agent/agent/manager/wire"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/rtp"
)

// oneCall is a manager.FrameSource with one decoded call.
type oneCall struct {
	ref uint64
	c   *audio.Call
}

func (o oneCall) Subscribe(_ context.Context, ref uint64, depth int) (*audio.Subscription, error) {
	if ref != o.ref {
		return nil, call.ErrNoCall
	}
	return o.c.Subscribe(depth)
}

// TestManagerRemote: player.Remote over a real manager server's
// listen_stream, plaintext and AES: the frames of the call in order, at
// the call's rate (16 kHz here), then the server's end reason; an unknown
// call wraps call.ErrNoCall. A sensor older than listen_stream's rate=
// (which refuses it as an unknown call) is asked again without it and
// streams 8 kHz.
func TestManagerRemote(t *testing.T) {
	key, err := wire.GenerateAESKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		key      *wire.AESKey
		old      bool // the sensor predates rate=
		wantRate int
	}{{"plaintext", nil, false, 16000}, {"aes", &key, false, 16000}, {"old sensor", nil, true, 8000}} {
		t.Run(tc.name, func(t *testing.T) {
			const ref = 0x77
			c := audio.NewCall(audio.Config{Delay: 40 * time.Millisecond, Rate: 16000})
			cmd := manager.ListenStreamCommand(oneCall{ref, c})
			if tc.old {
				run := cmd.Run
				cmd.Run = func(ctx context.Context, w io.Writer, req *manager.Request) error {
					if strings.Contains(req.Args, "rate=") { // an argument it does not know
						_, err := io.WriteString(w, wire.ReplyCallNotFound)
						return err
					}
					return run(ctx, w, req)
				}
			}
			cfg := manager.Config{Addr: "127.0.0.1:0", Commands: map[string]manager.Command{"listen_stream": cmd}}
			if tc.key != nil {
				cfg.Keys = wire.StaticKey(*tc.key)
			}
			s := manager.New(cfg)
			s.SetReady(true)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.ListenAndServe(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil && !errors.Is(err, manager.ErrServerClosed) {
					t.Errorf("manager: %v", err)
				}
			}()
			for deadline := time.Now().Add(5 * time.Second); s.Addr() == nil; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("manager not bound")
				}
			}
			rm := ManagerRemote{Addr: s.Addr().String(), Key: tc.key}

			if _, err := rm.OpenStream(ctx, ref+1); !errors.Is(err, call.ErrNoCall) {
				t.Fatalf("unknown call: err %v, want call.ErrNoCall", err)
			}
			st, err := rm.OpenStream(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for deadline := time.Now().Add(5 * time.Second); c.Stats().Subscribers != 1; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the server did not subscribe")
				}
			}
			t0 := time.Date(2026, 4, 14, 10, 0, 0, 0, time.UTC)
			for i := range 10 {
				h := rtp.Header{Version: 2, PayloadType: rtp.PTPCMU, SSRC: 1, Timestamp: uint32(i * audio.FrameSamples)}
				c.Feed(audio.FromCaller, &h, bytes.Repeat([]byte{0x80}, audio.FrameSamples), t0.Add(time.Duration(i)*audio.FrameDuration), false)
			}
			c.Close()
			var f audio.Frame
			n := 0
			for {
				_, err := st.NextFrame(&f)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("after %d frames: %v", n, err)
				}
				if f.Index != int64(n) || f.Rate != tc.wantRate || f.Samples() != tc.wantRate/50 {
					t.Errorf("frame %d has index %d, %d samples at %d Hz; want %d Hz", n, f.Index, f.Samples(), f.Rate, tc.wantRate)
				}
				n++
			}
			if n < 9 {
				t.Errorf("%d frames, want the call's 10", n)
			}
			if r := st.EndReason(); r != wire.StreamReasonCallEnded {
				t.Errorf("end reason %q, want %q", r, wire.StreamReasonCallEnded)
			}
		})
	}
}
