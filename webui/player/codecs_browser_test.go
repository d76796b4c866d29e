package player_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/simulate"
)

// browserCodecs are the codecs heard in headless Chromium: one line each,
// a call generated with the codec's encoder (caller 700 Hz, callee
// 1300 Hz) or a real Asterisk recording of ../shared (same tones; skipped
// without it), the rate its frames come at, and extra player URL query.
var browserCodecs = []struct {
	name  string
	src   func(t *testing.T) packets
	rate  int
	query string
}{
	{"PCMU", genCodec(simulate.CodecPCMU), 8000, ""},
	{"G722", genCodec(simulate.CodecG722), 16000, ""},
	{"G722 Asterisk", sharedCall("call-g722.pcap"), 16000, ""},
	{"GSM", genCodec(simulate.CodecGSM), 8000, ""},
	{"GSM Asterisk", sharedCall("call-gsm.pcap"), 8000, ""},
	{"G729", genCodec(simulate.CodecG729), 8000, ""},
	{"Opus", genCodec(simulate.CodecOpus), 48000, ""},
	{"Opus rate=16000", genCodec(simulate.CodecOpus), 16000, "&rate=16000"},
}

// genCodec is a generated 6 s call in codec name, caller 700 Hz, callee
// 1300 Hz.
func genCodec(name string) func(t *testing.T) packets {
	return func(t *testing.T) packets {
		return generator(t, simulate.Options{Calls: 1, Duration: 6 * time.Second, Seed: 19, Codec: name, Tones: [2]float64{700, 1300}})
	}
}

// sharedCall is a real Asterisk call of ../shared/fixtures/asterisk-more.
func sharedCall(file string) func(t *testing.T) packets {
	return func(t *testing.T) packets { return openFile(t, fixture.Shared(t, "asterisk-more", file)) }
}

// TestBrowserPlaysCodecs: real headless Chromium plays a call in each
// codec replayed in real time: the frames carry the codec's native rate
// (the header's rate, and what the AudioWorklet was fed), and the audio
// rendered at the AudioContext's rate has the caller's 700 Hz on the left
// and the callee's 1300 Hz on the right, each ≥ 30 dB over the other.
func TestBrowserPlaysCodecs(t *testing.T) {
	for _, tc := range browserCodecs {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "PCMU" && !codec.Built {
				t.Skip("built without cgo: only G.711 is decoded")
			}
			src := tc.src(t)
			ctx, cancel := browser(t)
			defer cancel()
			pipe := newPipeline(t)
			a := newAgent(t, pipe, nil)
			loginDashboard(t, ctx, a)
			ref, done := replayLive(t, pipe, src)
			defer done()
			err := chromedp.Do(ctx,
				chromedp.Navigate(fmt.Sprintf("%s/api/chunkplayer/index.html?capture=14&autoplay=1&sensor_id=1&callref=0x%x%s", a.srv.URL, ref, tc.query)),
				chromedp.WaitVisible(chromedp.CSS("#callref")),
			)
			if err != nil {
				t.Fatalf("player: %v", err)
			}
			waitEnded(t, ctx)
			type rates struct {
				Frames  map[string]int `json:"frames"`  // header rate → frames
				Worklet int            `json:"worklet"` // the rate the AudioWorklet was fed
				Context float64        `json:"context"` // the AudioContext's
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[rates](`({frames: __player.frameRates, worklet: __player.stats ? __player.stats.frameRate : 0, context: __player.sampleRate})`))
			if err != nil {
				t.Fatal(err)
			}
			want := strconv.Itoa(tc.rate)
			if len(got.Frames) != 1 || got.Frames[want] == 0 || got.Worklet != tc.rate {
				t.Errorf("frames by header rate %v, worklet fed at %d Hz; want all at %s Hz", got.Frames, got.Worklet, want)
			}
			cap, err := chromedp.Run(ctx, chromedp.Evaluate[captured](`window.__player.capture()`))
			if err != nil {
				t.Fatal(err)
			}
			l, r := withSound(cap)
			if len(l) < int(cap.Rate*2) {
				t.Fatalf("only %d samples with sound of %d rendered at %v Hz", len(l), len(cap.L), cap.Rate)
			}
			left := 10 * math.Log10(goertzel(l, cap.Rate, 700)/goertzel(l, cap.Rate, 1300))
			right := 10 * math.Log10(goertzel(r, cap.Rate, 1300)/goertzel(r, cap.Rate, 700))
			t.Logf("%s in Chromium: %d frames at %s Hz, worklet fed at %d Hz, rendered at %v Hz: %.1f s with sound; left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz",
				tc.name, got.Frames[want], want, got.Worklet, cap.Rate, float64(len(l))/cap.Rate, left, right)
			if left < 30 || right < 30 {
				t.Errorf("separation left %.1f dB, right %.1f dB; want ≥ 30", left, right)
			}
		})
	}
}

// withSound returns the rendered 50 ms windows with sound (RMS > 100 of
// 32768), both channels.
func withSound(cap captured) (l, r []float64) {
	win := int(cap.Rate / 20)
	for i := 0; i+win <= len(cap.L); i += win {
		var e float64
		for j := i; j < i+win; j++ {
			e += cap.L[j]*cap.L[j] + cap.R[j]*cap.R[j]
		}
		if math.Sqrt(e/float64(2*win)) > 100 {
			l = append(l, cap.L[i:i+win]...)
			r = append(r, cap.R[i:i+win]...)
		}
	}
	return l, r
}

// openFile opens a capture by path (a shared fixture).
func openFile(t testing.TB, path string) packets {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return fileSource{src}
}

// loginDashboard logs alice in on the dashboard (before a call starts:
// Chromium's start-up and the login take seconds on a loaded machine).
func loginDashboard(t *testing.T, ctx context.Context, a *agent) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(a.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#pass"), "alicepw"),
		chromedp.Click(chromedp.CSS("#loginBtn")),
		chromedp.WaitNotVisible(chromedp.CSS("#login")),
	)
	if err != nil {
		t.Fatalf("dashboard login: %v", err)
	}
}

// replayLive replays src in real time with capture times on the wall
// clock and returns the answered call's reference; done stops and waits
// for the replay.
func replayLive(t *testing.T, pipe *pipeline, src packets) (ref uint64, done func()) {
	t.Helper()
	fctx, fcancel := context.WithCancel(context.Background())
	var fwg sync.WaitGroup
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		pipe.replay(fctx, t, src, time.Now(), 1, nil)
		pipe.flush()
	}()
	done = func() { fcancel(); fwg.Wait() }
	waitFor(t, "answered call", func() bool {
		var ok bool
		ref, ok = pipe.connectedRef()
		return ok
	})
	return ref, done
}

// waitEnded waits (60 s at most) until the player page saw the call end.
func waitEnded(t *testing.T, ctx context.Context) {
	t.Helper()
	var state string
	var err error
	for deadline := time.Now().Add(60 * time.Second); state != "ended"; {
		if time.Now().After(deadline) {
			t.Fatalf("the page did not see the call end (state %q)", state)
		}
		if state, err = chromedp.Run(ctx, chromedp.Evaluate[string](`window.__player.state`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
