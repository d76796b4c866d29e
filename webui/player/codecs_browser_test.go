package player_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/gopacket"

	"pbx-agent/internal/browsertest"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/simulate"
)

// browserCodecs are the codecs heard in headless Chromium: one line each,
// a call generated with the codec's encoder (caller 700 Hz, callee
// 1300 Hz) or a real Asterisk recording of ../shared (same tones; skipped
// without it), the rate its frames come at, and extra player URL query.
// saveaudio is off: the player joins a call already under way, as a
// listener does (GSM, G.723.1, Speex and iLBC calls are decoded from their first
// packet all the same, see codec.NeedsHistory).
var browserCodecs = []struct {
	name  string
	src   func(t *testing.T) packets
	rates []int // the frames' rates, in order
	query string
}{
	{"PCMU", genCodec(simulate.CodecPCMU), []int{8000}, ""},
	{"PCMA", genCodec(simulate.CodecPCMA), []int{8000}, ""},
	{"G722", genCodec(simulate.CodecG722), []int{16000}, ""},
	{"G722 Asterisk", sharedCall("call-g722.pcap"), []int{16000}, ""},
	{"GSM", genCodec(simulate.CodecGSM), []int{8000}, ""},
	{"GSM Asterisk", sharedCall("call-gsm.pcap"), []int{8000}, ""},
	{"G729", genCodec(simulate.CodecG729), []int{8000}, ""},
	{"Opus", genCodec(simulate.CodecOpus), []int{48000}, ""},
	{"Opus rate=16000", genCodec(simulate.CodecOpus), []int{16000}, "&rate=16000"},
	{"PCMU then G722", pcmuThenG722, []int{8000, 16000}, ""},
	{"G726-32", genCodec(simulate.CodecG726), []int{8000}, ""},
	{"G723.1", genCodec(simulate.CodecG723), []int{8000}, ""},
	{"Speex", genCodec(simulate.CodecSpeex), []int{8000}, ""},
	{"Speex WB", genCodec(simulate.CodecSpeexWB), []int{16000}, ""},
	{"iLBC", genCodec(simulate.CodecILBC), []int{8000}, ""},
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
			if tc.name != "PCMU" && tc.name != "PCMA" && !codec.Built {
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
				Worklet int            `json:"worklet"` // the rate the AudioWorklet was fed last
				Gaps    int            `json:"gaps"`    // sequence gaps the page saw
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[rates](`({frames: __player.frameRates, worklet: __player.stats ? __player.stats.frameRate : 0, gaps: __player.gaps})`))
			if err != nil {
				t.Fatal(err)
			}
			last := tc.rates[len(tc.rates)-1]
			if len(got.Frames) != len(tc.rates) || got.Worklet != last {
				t.Errorf("frames by header rate %v, worklet fed at %d Hz last; want frames at %v Hz", got.Frames, got.Worklet, tc.rates)
			}
			for _, r := range tc.rates {
				if got.Frames[strconv.Itoa(r)] < 25 {
					t.Errorf("%d frames at %d Hz, want ≥ 25 (frames by rate %v)", got.Frames[strconv.Itoa(r)], r, got.Frames)
				}
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
			t.Logf("%s in Chromium: frames by rate %v (%d sequence gaps), worklet fed at %d Hz last, rendered at %v Hz: %.1f s with sound; left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz",
				tc.name, got.Frames, got.Gaps, got.Worklet, cap.Rate, float64(len(l))/cap.Rate, left, right)
			if left < 30 || right < 30 {
				t.Errorf("separation left %.1f dB, right %.1f dB; want ≥ 30", left, right)
			}
			frames := 0
			for _, n := range got.Frames {
				frames += n
			}
			if len(tc.rates) > 1 && float64(len(l))/cap.Rate < 0.6*float64(frames)/50 {
				// Across a codec change the audio goes on: most of the
				// frames are heard (underruns of a loaded machine aside).
				t.Errorf("%.1f s with sound for %d frames (%v)", float64(len(l))/cap.Rate, frames, got.Frames)
			}
		})
	}
}

// pcmuThenG722 is a generated PCMU call (caller 700 Hz, callee 1300 Hz)
// whose RTP turns to G.722 (payload type 9, the same tones encoded with
// spandsp) 2.5 s after its first packet, as after a re-INVITE; a G.722
// payload of 20 ms is 160 bytes like PCMU's, so packets are rewritten in
// place (the UDP checksum zeroed: none, for IPv4).
func pcmuThenG722(t *testing.T) packets {
	src := genCodec(simulate.CodecPCMU)(t)
	var enc [2]*codec.Encoder
	for dir := range enc {
		e, err := codec.NewEncoder(codec.G722)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		enc[dir] = e
	}
	return &reinvite{src: src, enc: enc, pcm: [2][]int16{
		tone16k(700), tone16k(1300),
	}}
}

// tone16k is 20 ms of a tone at 16 kHz (whole periods: it repeats).
func tone16k(hz float64) []int16 {
	s := make([]int16, 320)
	for i := range s {
		s[i] = int16(10000 * math.Sin(2*math.Pi*hz*float64(i)/16000))
	}
	return s
}

type reinvite struct {
	src   packets
	enc   [2]*codec.Encoder
	pcm   [2][]int16
	first time.Time
	buf   [1500]byte
}

func (r *reinvite) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := r.src.ReadPacketData()
	if err != nil {
		return data, ci, err
	}
	// Ethernet (14) + IPv4 (20) + UDP (8) + RTP (12) + 160 bytes of PCMU.
	const ip, udp, rtp = 14, 14 + 20, 14 + 20 + 8
	if len(data) != rtp+12+160 || data[ip+9] != 17 || data[rtp]&0xc0 != 0x80 || data[rtp+1]&0x7f != 0 {
		return data, ci, nil
	}
	if r.first.IsZero() {
		r.first = ci.Timestamp
	}
	if ci.Timestamp.Sub(r.first) < 2500*time.Millisecond {
		return data, ci, nil
	}
	dir := 1 // the PBX's ports are 10000+, the caller's 20000+
	if binary.BigEndian.Uint16(data[udp:]) >= 20000 {
		dir = 0
	}
	n, err := r.enc[dir].Encode(r.pcm[dir], r.buf[:])
	if err != nil || n != 160 {
		return nil, ci, fmt.Errorf("G.722 encode: %d bytes, %v", n, err)
	}
	data[rtp+1] = data[rtp+1]&0x80 | 9
	copy(data[rtp+12:], r.buf[:n])
	data[udp+6], data[udp+7] = 0, 0
	return data, ci, nil
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
		browsertest.Login(a.srv.URL+"/", "alice", "alicepw"),
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
