package player_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/gopacket"

	"pbx-agent/internal/browsertest"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/webui/player"
)

func browser(t *testing.T) (context.Context, context.CancelFunc) {
	return browsertest.New(t, 90*time.Second, chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"), chromedp.WindowSize(1200, 800))
}

type captured struct {
	Rate float64   `json:"rate"`
	L    []float64 `json:"l"`
	R    []float64 `json:"r"`
	// Unsteady are the stretches [from, to) of L and R not played from the
	// frames at full gain (fades, underruns).
	Unsteady [][2]int `json:"unsteady"`
}

// TestBrowserPlaysCall: real headless Chromium logs in on the dashboard,
// opens the ChunkPlayer, enters callref and sensor id, presses play and
// plays a generated call replayed in real time (caller 1 kHz, callee
// 2 kHz, G.711 µ-law) paused for 1.5 s in the middle. The test reads what
// the AudioWorklet rendered and checks each channel's dominant frequency
// and the silent pause; it prints the latency figures and saves
// screenshots of the dashboard and the player.
func TestBrowserPlaysCall(t *testing.T) {
	ctx, cancel := browser(t)
	defer cancel()
	pipe := newPipeline(t)
	a := newAgent(t, pipe, func(o *player.Options) { o.StatsEvery = 200 * time.Millisecond })

	// Log in on the dashboard before the call starts: Chromium's start-up
	// and the login take seconds on a loaded machine, and a call replayed
	// meanwhile would be mostly over before the player subscribes.
	loginDashboard(t, ctx, a)

	// Replay in real time with capture times on the wall clock, so that
	// the page's capture → arrival latency is the real one.
	src := generator(t, simulate.Options{Calls: 1, Duration: 9 * time.Second, Seed: 11, Tones: [2]float64{1000, 2000}})
	// The call is paused 2.5 s into what the page hears, for 1.5 s (on
	// the replay's timeline: a loaded machine delaying the replay does not
	// move the pause in the call).
	var paused, unpaused atomic.Bool
	ref, done := replayHeld(t, pipe, src, func(ref uint64, off time.Duration) {
		if !paused.Load() && off >= 2500*time.Millisecond {
			paused.Store(pipe.sn.Table().SetPaused(ref, true) == nil)
		}
		if paused.Load() && !unpaused.Load() && off >= 4000*time.Millisecond {
			unpaused.Store(pipe.sn.Table().SetPaused(ref, false) == nil)
		}
	})
	defer done()
	refHex := fmt.Sprintf("0x%x", ref)
	dir := browsertest.ArtifactDir(t)

	// Dashboard: the call with its Listen button.
	err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`tr[data-callref="`+refHex+`"] button.listen`)),
	)
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	dash, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("dashboard screenshot: %v", err)
	}
	writeArtifact(t, dir, "dashboard.png", dash)

	// Player: the seed's form.
	err = chromedp.Do(ctx,
		chromedp.Navigate(a.srv.URL+"/api/chunkplayer/index.html?capture=14"),
		chromedp.WaitVisible(chromedp.CSS("#callref")),
		chromedp.SendKeys(chromedp.CSS("#callref"), refHex),
		chromedp.SendKeys(chromedp.CSS("#sensor"), "1"),
		chromedp.Click(chromedp.CSS("#play")),
	)
	if err != nil {
		t.Fatalf("player: %v", err)
	}
	waitEnded(t, ctx)
	// The page after the call: its figures and the end message.
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	writeArtifact(t, dir, "player.png", shot)
	if !paused.Load() || !unpaused.Load() {
		t.Fatalf("the call was not paused and resumed (paused %v, resumed %v)", paused.Load(), unpaused.Load())
	}

	type pageInfo struct {
		Received int     `json:"received"`
		Decoded  int     `json:"decoded"`
		Gaps     int     `json:"gaps"`
		Dropped  int     `json:"dropped"`
		Backend  string  `json:"backend"`
		Ended    string  `json:"ended"`
		Depth    float64 `json:"depth"`
		Target   float64 `json:"target"`
		Under    int     `json:"underruns"`
	}
	cap, err := chromedp.Run(ctx, chromedp.Evaluate[captured](`window.__player.capture()`))
	if err != nil {
		t.Fatal(err)
	}
	lat, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`window.__player.latencies`))
	if err != nil {
		t.Fatal(err)
	}
	info, err := chromedp.Run(ctx, chromedp.Evaluate[pageInfo](`({received: __player.received, decoded: __player.decoded, gaps: __player.gaps, dropped: __player.dropped,
			backend: __player.backend, ended: __player.ended, depth: __player.stats ? __player.stats.depthMs : 0,
			target: __player.stats ? __player.stats.targetMs : 0, underruns: __player.stats ? __player.stats.underruns : 0})`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page: %+v, rendered %d samples at %v Hz", info, len(cap.L), cap.Rate)
	if info.Backend != "AudioWorklet" {
		t.Errorf("backend %q, want AudioWorklet (secure context on localhost)", info.Backend)
	}
	if info.Ended != player.ReasonCallEnded {
		t.Errorf("page's end reason %q, want %q", info.Ended, player.ReasonCallEnded)
	}
	if info.Decoded < 200 || info.Decoded != info.Received {
		t.Fatalf("page decoded %d of %d frames, want most of the call's 450", info.Decoded, info.Received)
	}
	if len(cap.L) < int(cap.Rate*4) {
		t.Fatalf("rendered only %d samples", len(cap.L))
	}

	// What the worklet rendered, in 50 ms windows: sound or silence.
	win := int(cap.Rate / 20)
	var sound []bool
	for i := 0; i+win <= len(cap.L); i += win {
		var e float64
		for j := i; j < i+win; j++ {
			e += cap.L[j]*cap.L[j] + cap.R[j]*cap.R[j]
		}
		sound = append(sound, math.Sqrt(e/float64(2*win)) > 300)
	}
	first, last := -1, -1
	for i, s := range sound {
		if s {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		t.Fatal("the page rendered only silence")
	}
	// The longest silence inside the played call is the pause (1.5 s;
	// the jitter buffer and fades blur its edges by well under 200 ms).
	longest, run := 0, 0
	for _, s := range sound[first : last+1] {
		if s {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	if ms := longest * 50; ms < 1200 || ms > 1800 {
		t.Errorf("longest silence inside the call: %d ms, want the 1500 ms pause", ms)
	}
	// Dominant frequency per channel over the sound windows.
	var l, r []float64
	for i := first; i <= last; i++ {
		if sound[i] {
			l = append(l, cap.L[i*win:(i+1)*win]...)
			r = append(r, cap.R[i*win:(i+1)*win]...)
		}
	}
	cands := []float64{400, 1000, 2000, 3000}
	if f := dominant(l, cap.Rate, cands...); f != 1000 {
		t.Errorf("left (caller) dominant frequency %v Hz, want 1000", f)
	}
	if f := dominant(r, cap.Rate, cands...); f != 2000 {
		t.Errorf("right (callee) dominant frequency %v Hz, want 2000", f)
	}
	// Cross-talk: the caller's tone is at least 30 dB down on the right.
	if x := 10 * math.Log10(goertzel(r, cap.Rate, 2000)/goertzel(r, cap.Rate, 1000)); x < 30 {
		t.Errorf("right channel: 2 kHz only %.1f dB over 1 kHz", x)
	}

	ds := make([]time.Duration, len(lat))
	for i, v := range lat {
		ds[i] = time.Duration(v * float64(time.Millisecond))
	}
	p50, p95 := percentile(ds, 0.5), percentile(ds, 0.95)
	t.Logf("FIGURE latency capture(last sample) → page, loopback, %d frames: p50 %v, p95 %v (server audio delay 40 ms included); jitter buffer depth at end %.0f ms, target %.0f ms; glass-to-ear ≈ p50 + buffer ≈ %v",
		len(ds), p50, p95, info.Depth, info.Target, p50+time.Duration(info.Target*float64(time.Millisecond)))
	t.Logf("artifacts: %s/{dashboard,player}.png", dir)
}

// replayHeld is replayLive held once the call is answered (before its
// RTP: the audio has no gap) until a listener is subscribed to its audio
// (Chromium's start-up and the page's load take seconds on a loaded
// machine: a call replayed meanwhile would be partly over before the page
// hears it); then it goes on in real time with capture times on the wall
// clock. at, when given, runs before each packet after the hold with the
// call and the packet's offset from the first one after it.
func replayHeld(t *testing.T, pipe *pipeline, src packets, at ...func(ref uint64, off time.Duration)) (ref uint64, done func()) {
	t.Helper()
	fctx, fcancel := context.WithCancel(context.Background())
	refc := make(chan uint64, 1)
	var fwg sync.WaitGroup
	fwg.Go(func() {
		defer pipe.flush()
		rw := &rewind{src: src}
		var r uint64
		pipe.replay(fctx, t, rw, time.Now(), 1, func(time.Time) bool {
			for _, c := range pipe.sn.ActiveCalls() {
				if !c.ConnectTime.IsZero() {
					r = c.CallRef
					rw.back() // fed after the hold
					return false
				}
			}
			return true
		})
		refc <- r
		for r != 0 && fctx.Err() == nil && !listened(pipe, r) {
			time.Sleep(2 * time.Millisecond)
		}
		var first time.Time
		pipe.replay(fctx, t, rw, time.Now(), 1, func(ts time.Time) bool {
			if first.IsZero() {
				first = ts
			}
			for _, f := range at {
				f(r, ts.Sub(first))
			}
			return true
		})
	})
	done = func() { fcancel(); fwg.Wait() }
	if ref = <-refc; ref == 0 {
		done()
		t.Fatal("no answered call in the replay")
	}
	return ref, done
}

// listened reports whether a listener is subscribed to call ref's audio.
func listened(pipe *pipeline, ref uint64) bool {
	st, ok := pipe.sp.AudioStats(ref)
	return ok && st.Subscribers > 0
}

// rewind is a packet source that can give its last packet again.
type rewind struct {
	src   packets
	data  []byte
	ci    gopacket.CaptureInfo
	err   error
	again bool
}

func (r *rewind) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if r.again {
		r.again = false
	} else {
		r.data, r.ci, r.err = r.src.ReadPacketData()
	}
	return r.data, r.ci, r.err
}

// back makes the next read give the last packet again.
func (r *rewind) back() { r.again = true }

func writeArtifact(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if len(b) == 0 {
		t.Errorf("no %s taken", name)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Error(err)
	}
}

// TestJitterBufferPlaysOutAfterEnd: the player's jitter buffer (worklet.js,
// loaded by the page for its fallback) holding less than its target when
// the stream ends plays it out once told of the end. The tail of a call
// that came after an underrun stayed in the buffer, never heard (80 and
// 100 ms of two calls of TestBrowserPlaysCodecs on a loaded machine).
func TestJitterBufferPlaysOutAfterEnd(t *testing.T) {
	ctx, cancel := browser(t)
	defer cancel()
	a := newAgent(t, nil, nil)
	type result struct {
		Before  float64 `json:"before"`  // sum of |samples| rendered before the end
		After   float64 `json:"after"`   // and after it
		Playing bool    `json:"playing"` // still playing at the end
		Depth   float64 `json:"depth"`   // ms left in the buffer
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(a.srv.URL+"/api/chunkplayer/index.html"), chromedp.WaitVisible(chromedp.CSS("#callref"))); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[result](`(() => {
		const jb = new ChunkJitter(48000);
		// 20 ms at 8 kHz: below the smallest target (40 ms).
		jb.push(new Float32Array(160).fill(0.5), new Float32Array(160).fill(-0.5), 0, 0, 8000);
		const render = () => {
			const l = new Float32Array(4800), r = new Float32Array(4800);
			jb.render(l, r);
			return l.reduce((s, v) => s + Math.abs(v), 0);
		};
		const before = render();
		jb.end();
		const after = render();
		return { before, after, playing: jb.playing, depth: jb.depthMs() };
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", got)
	// 960 samples at 48 kHz of 0.5, less the fades and the filter's onset.
	if got.Before != 0 || got.After < 300 || got.Playing || got.Depth > 0.1 {
		t.Errorf("rendered %.0f before the end and %.0f after it (want 0, then ≈ 480), playing %v, %.2f ms left; want the 20 ms played out",
			got.Before, got.After, got.Playing, got.Depth)
	}
}
