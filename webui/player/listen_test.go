package player_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/webui"
	"pbx-agent/webui/player"
)

// replayUntilListening feeds src until an answered call has RTP, lets
// listen subscribe to it, then feeds the rest as fast as it goes and
// flushes the call table (the calls end). It returns the reference.
func replayUntilListening(t *testing.T, pipe *pipeline, src packets, speed float64, listen func(ref uint64)) {
	t.Helper()
	var ref uint64
	pipe.replay(context.Background(), t, src, time.Now(), speed, func(time.Time) bool {
		if ref == 0 {
			if r, ok := pipe.connectedRef(); ok {
				ref = r
				listen(ref)
			}
		}
		return true
	})
	if ref == 0 {
		t.Fatal("no answered call with RTP in the capture")
	}
	pipe.flush()
}

// TestListenReplayedCall: a browser-like websocket client hears a real
// Asterisk call (the bundled capture) end to end: sniffer → spool decode →
// websocket frames, in both layouts, then the end message.
func TestListenReplayedCall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout string
		want   byte
	}{
		{"stereo", "", player.LayoutStereo},
		{"mono", "mono", player.LayoutMono},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pipe := newPipeline(t)
			a := newAgent(t, pipe, func(o *player.Options) { o.QueueDepth = 5000 })
			src := openCapture(t, "testdata", "pcap", "asterisk-call-answered.pcap")
			var got received
			var wg sync.WaitGroup
			replayUntilListening(t, pipe, src, 0, func(ref uint64) {
				q := url.Values{"layout": {tc.layout}, "user": aliceQuery["user"], "password": aliceQuery["password"]}
				c, resp, err := dial(t, a.wsURL(ref, q), nil)
				if err != nil {
					t.Fatalf("dial: %v (%v)", err, resp)
				}
				waitFor(t, "subscription", func() bool {
					st, _ := pipe.sp.AudioStats(ref)
					return st.Subscribers == 1
				})
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					got = collect(t, c, 0, nil)
				}()
			})
			wg.Wait()
			if got.end != player.ReasonCallEnded {
				t.Errorf("end reason %q, want %q", got.end, player.ReasonCallEnded)
			}
			if len(got.statuses) == 0 || got.statuses[0]["type"] != "start" || got.statuses[0]["caller"] == "" {
				t.Errorf("first status %v, want start with the caller", got.statuses)
			}
			if len(got.frames) < 300 {
				t.Fatalf("%d frames, want the call's ~550", len(got.frames))
			}
			var loud [2]int
			for i, h := range got.frames {
				if h.Layout != tc.want || h.SampleRate != 8000 || h.Samples != 160 {
					t.Fatalf("frame %d header %+v", i, h)
				}
				if i > 0 && h.Seq != got.frames[i-1].Seq+1 {
					t.Fatalf("frame %d seq %d after %d: gap without drops", i, h.Seq, got.frames[i-1].Seq)
				}
				if h.Layout == player.LayoutStereo {
					for ch := range 2 {
						if rms(got.pcm[i], 2, ch) > 100 {
							loud[ch]++
						}
					}
				} else if rms(got.pcm[i], 1, 0) > 100 {
					loud[0]++
					loud[1]++
				}
			}
			// Both directions carry sound in the recording.
			for ch, n := range loud {
				if n < len(got.frames)/4 {
					t.Errorf("channel %d: %d of %d frames with sound", ch, n, len(got.frames))
				}
			}
			waitFor(t, "listener closed", func() bool { return a.pl.Stats().Listeners == 0 })
			st := a.pl.Stats()
			if st.Frames != uint64(len(got.frames)) || st.Dropped != 0 || st.Listeners != 0 || st.ListenersSeen != 1 {
				t.Errorf("stats %+v, want %d frames, 0 dropped, 0 open, 1 seen", st, len(got.frames))
			}
		})
	}
}

// TestSlowListener: a listener that stops reading loses its oldest frames
// (counted), while the packet path keeps going at full speed and another
// listener of the same call gets every frame.
func TestSlowListener(t *testing.T) {
	pipe := newPipeline(t)
	a := newAgent(t, pipe, func(o *player.Options) {
		o.QueueDepth = 10
		o.WriteTimeout = 2 * time.Second
	})
	// One 300 s call: 15,000 frames, ~10 MB of stereo PCM, more than the
	// socket buffers between the agent and a client that never reads.
	src := generator(t, simulate.Options{Calls: 1, Duration: 300 * time.Second, Seed: 7})
	var fastN atomic.Int64
	var fast received
	var wg sync.WaitGroup
	var ref uint64
	var pkts int
	var dropped, base uint64
	pipe.replay(context.Background(), t, src, time.Now(), 0, func(time.Time) bool {
		pkts++
		if ref == 0 {
			r, ok := pipe.connectedRef()
			if !ok {
				return true
			}
			ref = r
			// The slow client: a tiny receive buffer and no reads at all.
			d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
				c, err := net.Dial(network, addr)
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetReadBuffer(4096)
				}
				return c, err
			}}
			slow, _, err := d.Dial(a.wsURL(ref, aliceQuery), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { slow.Close() })
			c, _, err := dial(t, a.wsURL(ref, aliceQuery), nil)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "two subscriptions", func() bool {
				st, _ := pipe.sp.AudioStats(ref)
				return st.Subscribers == 2
			})
			st, _ := pipe.sp.AudioStats(ref)
			base = st.Frames
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fast = collect(t, c, 0, func(n int) { fastN.Store(int64(n)) })
			}()
			return true
		}
		// Every 10 packets (5 frames), let the fast listener catch up: the
		// test paces the feed on the fast listener only.
		if pkts%10 == 0 {
			st, _ := pipe.sp.AudioStats(ref)
			waitFor(t, "fast listener", func() bool { return uint64(fastN.Load()) >= st.Frames-base })
			dropped = st.Dropped
		}
		return true
	})
	emitted, _ := pipe.sp.AudioStats(ref)
	pipe.flush()
	wg.Wait()
	if dropped == 0 {
		t.Fatalf("the slow listener dropped nothing (audio stats %+v)", emitted)
	}
	if len(fast.frames) == 0 || uint64(len(fast.frames)) < emitted.Frames-base {
		t.Errorf("fast listener got %d frames, %d were emitted", len(fast.frames), emitted.Frames)
	}
	for i := 1; i < len(fast.frames); i++ {
		if fast.frames[i].Seq != fast.frames[i-1].Seq+1 {
			t.Fatalf("fast listener: gap at frame %d (seq %d after %d)", i, fast.frames[i].Seq, fast.frames[i-1].Seq)
		}
	}
	waitFor(t, "listeners closed", func() bool { return a.pl.Stats().Listeners == 0 })
	st := a.pl.Stats()
	if st.Dropped == 0 {
		t.Errorf("handler stats %+v: drops not counted", st)
	}
	t.Logf("emitted %d frames; fast listener %d; slow listener's drops %d (handler %+v)", emitted.Frames, len(fast.frames), dropped, st)
}

// holdAudio is a FrameSource with one call that lasts until the test ends.
type holdAudio struct{ c *audio.Call }

func (h holdAudio) Subscribe(_ context.Context, ref uint64, depth int) (*audio.Subscription, error) {
	if ref != 0x99 {
		return nil, audio.ErrClosed
	}
	return h.c.Subscribe(depth)
}

func TestListenRefusals(t *testing.T) {
	held := holdAudio{audio.NewCall(audio.Config{})}
	t.Cleanup(held.c.Close)
	a := newAgent(t, nil, func(o *player.Options) {
		o.Audio = held
		o.AllowedOrigins = []string{"https://gui.example.com"}
		o.Remotes = map[int]player.Remote{}
		o.RemoteLookup = func(_ context.Context, sensor int) (player.Remote, error) {
			switch sensor {
			case 8:
				return nil, errors.New("sensors: sensor offline: sensor 8 is offline")
			case 9:
				return nil, nil // a row without host/port
			}
			return nil, fmt.Errorf("%w: %d", player.ErrUnknownSensor, sensor)
		}
	})
	host := strings.TrimPrefix(a.srv.URL, "http://")
	for _, tc := range []struct {
		name       string
		ref        uint64
		q          url.Values
		origin     string
		wantStatus int    // HTTP refusal
		wantEnd    string // else: the first message's reason, "" = streaming
	}{
		{name: "no credentials", ref: 0x99, wantStatus: http.StatusUnauthorized},
		{name: "wrong password", ref: 0x99, q: url.Values{"user": {"alice"}, "password": {"x"}}, wantStatus: http.StatusUnauthorized},
		{name: "user lacks can_listen_active_call", ref: 0x99, q: url.Values{"user": {"bob"}, "password": {"bobpw"}}, wantStatus: http.StatusForbidden},
		{name: "foreign origin", ref: 0x99, q: aliceQuery, origin: "https://evil.example.net", wantStatus: http.StatusForbidden},
		{name: "same-host origin", ref: 0x99, q: aliceQuery, origin: "http://" + host},
		{name: "allowed origin", ref: 0x99, q: aliceQuery, origin: "https://gui.example.com"},
		{name: "no origin (not a browser)", ref: 0x99, q: aliceQuery},
		{name: "unknown sensor", ref: 0x99, q: url.Values{"user": {"alice"}, "password": {"alicepw"}, "sensor_id": {"7"}}, wantStatus: http.StatusNotFound},
		{name: "offline sensor (lookup)", ref: 0x99, q: url.Values{"user": {"alice"}, "password": {"alicepw"}, "sensor_id": {"8"}}, wantStatus: http.StatusServiceUnavailable},
		{name: "sensor without address (lookup)", ref: 0x99, q: url.Values{"user": {"alice"}, "password": {"alicepw"}, "sensor_id": {"9"}}, wantStatus: http.StatusServiceUnavailable},
		{name: "bad layout", ref: 0x99, q: url.Values{"user": {"alice"}, "password": {"alicepw"}, "layout": {"5.1"}}, wantStatus: http.StatusBadRequest},
		{name: "unknown call", ref: 0x1234, q: aliceQuery, wantEnd: player.ReasonNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			c, resp, err := dial(t, a.wsURL(tc.ref, tc.q), hdr)
			if tc.wantStatus != 0 {
				if err == nil {
					c.Close()
					t.Fatalf("upgrade accepted, want HTTP %d", tc.wantStatus)
				}
				if resp == nil || resp.StatusCode != tc.wantStatus {
					t.Fatalf("err %v, response %v; want HTTP %d", err, resp, tc.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			msg := string(b)
			if tc.wantEnd != "" {
				if !strings.Contains(msg, `"type":"error"`) || !strings.Contains(msg, tc.wantEnd) {
					t.Fatalf("first message %s, want error %q", msg, tc.wantEnd)
				}
				return
			}
			if !strings.Contains(msg, `"type":"start"`) {
				t.Fatalf("first message %s, want start", msg)
			}
		})
	}
}

// TestRightsLost: a listener whose user is removed (config reload) is
// ended with reason "rights lost"; the session cookie from bypass_login is
// accepted like the web API's.
func TestRightsLost(t *testing.T) {
	held := holdAudio{audio.NewCall(audio.Config{})}
	t.Cleanup(held.c.Close)
	a := newAgent(t, nil, func(o *player.Options) {
		o.Audio = held
		o.RecheckEvery = 50 * time.Millisecond
	})
	resp, err := http.PostForm(a.srv.URL+"/php/model/sql.php", url.Values{"module": {"bypass_login"}, "user": {"alice"}, "pass": {"alicepw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "PHPSESSID" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatalf("no session cookie (status %d)", resp.StatusCode)
	}
	c, resp, err := dial(t, a.wsURL(0x99, nil), http.Header{"Cookie": {cookie}})
	if err != nil {
		t.Fatalf("dial with session cookie: %v (%v)", err, resp)
	}
	defer c.Close()
	a.web.SetUsers([]webui.User{testUsers[1]}) // alice removed
	got := collect(t, c, 0, nil)
	if got.end != player.ReasonRightsLost {
		t.Errorf("end reason %q, want %q (statuses %v)", got.end, player.ReasonRightsLost, got.statuses)
	}
}

// TestShutdownEndsListeners: the end of Run ends open websockets with a reason.
func TestShutdownEndsListeners(t *testing.T) {
	held := holdAudio{audio.NewCall(audio.Config{})}
	t.Cleanup(held.c.Close)
	a := newAgent(t, nil, func(o *player.Options) { o.Audio = held })
	c, _, err := dial(t, a.wsURL(0x99, aliceQuery), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "listener", func() bool { return a.pl.Stats().Listeners == 1 })
	a.stop()
	got := collect(t, c, 0, nil)
	if got.end != player.ReasonShutdown {
		t.Errorf("end reason %q, want %q", got.end, player.ReasonShutdown)
	}
}

// TestRunLifecycle: of two Runs, one is refused; once Run's ctx has
// ended, a listener is refused with 503 "server shutdown".
func TestRunLifecycle(t *testing.T) {
	pl := player.New(player.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- pl.Run(ctx) }()
	}
	if err := <-errs; !errors.Is(err, player.ErrRunning) {
		t.Fatalf("first Run to return: %v, want ErrRunning", err)
	}
	cancel()
	if err := <-errs; err != nil {
		t.Errorf("Run: %v", err)
	}
	a := newAgent(t, nil, nil)
	a.stop()
	_, resp, err := dial(t, a.wsURL(0x99, aliceQuery), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("listener after Run: %v %+v, want 503", err, resp)
	}
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), player.ReasonShutdown) {
		t.Errorf("refusal %q, want %q", b, player.ReasonShutdown)
	}
}
