package player_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/fixture"
)

// TestBrowserPlaysG722Call: real headless Chromium plays a real Asterisk
// G.722 call (../shared asterisk-more, replayed in real time): the
// rendered audio has the caller's 700 Hz on the left and the callee's
// 1300 Hz on the right, each ≥ 30 dB over the other.
func TestBrowserPlaysG722Call(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo: G.722 plays as silence")
	}
	path := fixture.Shared(t, "asterisk-more", "call-g722.pcap")
	ctx, cancel := browser(t)
	defer cancel()
	pipe := newPipeline(t)
	a := newAgent(t, pipe, nil)
	loginDashboard(t, ctx, a)
	ref, done := replayLive(t, pipe, openFile(t, path))
	defer done()
	err := chromedp.Do(ctx,
		chromedp.Navigate(a.srv.URL+"/api/chunkplayer/index.html?capture=14"),
		chromedp.WaitVisible(chromedp.CSS("#callref")),
		chromedp.SendKeys(chromedp.CSS("#callref"), fmt.Sprintf("0x%x", ref)),
		chromedp.SendKeys(chromedp.CSS("#sensor"), "1"),
		chromedp.Click(chromedp.CSS("#play")),
	)
	if err != nil {
		t.Fatalf("player: %v", err)
	}
	waitEnded(t, ctx)
	cap, err := chromedp.Run(ctx, chromedp.Evaluate[captured](`window.__player.capture()`))
	if err != nil {
		t.Fatal(err)
	}
	// The rendered windows with sound (50 ms, RMS > 100 of 32768).
	win := int(cap.Rate / 20)
	var l, r []float64
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
	if len(l) < int(cap.Rate*3) {
		t.Fatalf("only %d samples with sound of %d rendered at %v Hz", len(l), len(cap.L), cap.Rate)
	}
	left := 10 * math.Log10(goertzel(l, cap.Rate, 700)/goertzel(l, cap.Rate, 1300))
	right := 10 * math.Log10(goertzel(r, cap.Rate, 1300)/goertzel(r, cap.Rate, 700))
	t.Logf("G.722 in Chromium: %.1f s with sound rendered at %v Hz; left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz",
		float64(len(l))/cap.Rate, cap.Rate, left, right)
	if left < 30 || right < 30 {
		t.Errorf("separation left %.1f dB, right %.1f dB; want ≥ 30", left, right)
	}
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
