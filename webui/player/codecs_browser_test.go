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
// codec replayed in real time, joining it 1 s into its RTP: the frames
// carry the codec's native rate (the header's rate, and what the
// AudioWorklet was fed), and the audio the player rendered steadily from
// the frames has the caller's 700 Hz on the left and the callee's 1300 Hz
// on the right, each ≥ 30 dB over the other.
//
// Steadily: a frame that comes late (a loaded machine delays the replay,
// the agent or Chromium by up to 2.3 s) makes the jitter buffer run dry,
// fade out on its last sample and fade in again; such a fade is a click
// with energy at every frequency (a 50 ms window holding one measured
// −11 to 25 dB), and one transform of all the windows with sound put
// together (their joins are phase jumps) measured 24.5 dB on the left of a
// G.722 call whose 50 ms Hann-windowed blocks, fades and all, stand 63.7 dB
// apart. So the worklet marks what it did not play from the frames at full
// gain and the separation is measured on the rest, in 50 ms Hann-windowed
// blocks (the ±2 % playback drift that keeps the buffer at its target
// moves a tone by 14 Hz: out of the bin of one 5 s transform, not of a
// 50 ms one).
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
			ref, done := replayJoined(t, pipe, src, time.Second)
			defer done()
			err := chromedp.Do(ctx,
				chromedp.Navigate(fmt.Sprintf("%s/api/chunkplayer/index.html?capture=14&autoplay=1&sensor_id=1&callref=0x%x%s", a.srv.URL, ref, tc.query)),
				chromedp.WaitVisible(chromedp.CSS("#callref")),
			)
			if err != nil {
				t.Fatalf("player: %v", err)
			}
			waitEnded(t, ctx)
			waitDrained(t, ctx)
			type rates struct {
				Frames  map[string]int `json:"frames"`  // header rate → frames
				Worklet int            `json:"worklet"` // the rate the AudioWorklet was fed last
				Gaps    int            `json:"gaps"`    // sequence gaps the page saw
				Under   int            `json:"under"`   // the jitter buffer's underruns
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[rates](`({frames: __player.frameRates, worklet: __player.stats ? __player.stats.frameRate : 0, gaps: __player.gaps,
				under: __player.stats ? __player.stats.underruns : 0})`))
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
			l, _ := withSound(cap)
			ls, rs := steadyBlocks(cap)
			steady := float64(len(ls)) / 20
			if steady < 2 {
				t.Fatalf("only %.2f s played steadily with sound (%.2f s with sound, %d underruns) of %.2f s rendered at %v Hz",
					steady, float64(len(l))/cap.Rate, got.Under, float64(len(cap.L))/cap.Rate, cap.Rate)
			}
			left := separation(ls, cap.Rate, 700, 1300)
			right := separation(rs, cap.Rate, 1300, 700)
			t.Logf("%s in Chromium: frames by rate %v (%d sequence gaps), worklet fed at %d Hz last, rendered at %v Hz: %.1f s with sound, %.1f s of it steady (%d underruns); left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz",
				tc.name, got.Frames, got.Gaps, got.Worklet, cap.Rate, float64(len(l))/cap.Rate, steady, got.Under, left, right)
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

// steadyBlocks returns the rendered 50 ms blocks with sound (RMS > 100 of
// 32768) that the player played steadily from the frames (none of their
// samples in cap.Unsteady), each channel's block Hann-windowed.
func steadyBlocks(cap captured) (l, r [][]float64) {
	win := int(cap.Rate / 20)
	u := cap.Unsteady
	for i := 0; i+win <= len(cap.L); i += win {
		for len(u) > 0 && u[0][1] <= i {
			u = u[1:]
		}
		if len(u) > 0 && u[0][0] < i+win {
			continue // a fade or an underrun in the block
		}
		var e float64
		for j := i; j < i+win; j++ {
			e += cap.L[j]*cap.L[j] + cap.R[j]*cap.R[j]
		}
		if math.Sqrt(e/float64(2*win)) <= 100 {
			continue
		}
		l = append(l, hann(cap.L[i:i+win]))
		r = append(r, hann(cap.R[i:i+win]))
	}
	return l, r
}

// hann returns s under a Hann window (in 50 ms a 1300 Hz tone played 2 %
// fast or slow leaks −99 dB into 700 Hz; under no window, −39 dB).
func hann(s []float64) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = v * (0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(s)-1)))
	}
	return out
}

// separation is how far tone hz stands over tone other in blocks (their
// powers summed over the blocks), in dB.
func separation(blocks [][]float64, rate, hz, other float64) float64 {
	var p, q float64
	for _, b := range blocks {
		p += goertzel(b, rate, hz)
		q += goertzel(b, rate, other)
	}
	return 10 * math.Log10(p/q)
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

// replayJoined replays src in real time and returns the answered call's
// reference once its RTP has played for join; there the replay is held
// until a listener subscribed to the call's audio (Chromium loads the page
// in 1 to 5 s, depending on the machine's load: joining wherever that
// ended, a listener on a loaded machine heard 2 s of a 6 s call, too
// little for the test), then goes on in real time with the capture times
// where they stopped (no gap in the call). done stops and waits for the
// replay.
func replayJoined(t *testing.T, pipe *pipeline, src packets, join time.Duration) (ref uint64, done func()) {
	t.Helper()
	fctx, fcancel := context.WithCancel(context.Background())
	refc := make(chan uint64, 1)
	var fwg sync.WaitGroup
	fwg.Go(func() {
		defer pipe.flush()
		rw := &rewind{src: src}
		var r uint64
		var rtp, held time.Time
		pipe.replay(fctx, t, rw, time.Now(), 1, func(ts time.Time) bool {
			if rtp.IsZero() {
				if c, ok := pipe.connectedRef(); ok {
					r, rtp = c, ts
				}
				return true
			}
			if ts.Sub(rtp) < join {
				return true
			}
			held = ts
			rw.back() // fed after the hold
			return false
		})
		refc <- r
		for r != 0 && fctx.Err() == nil && !listened(pipe, r) {
			time.Sleep(2 * time.Millisecond)
		}
		if !held.IsZero() {
			pipe.replay(fctx, t, rw, held, 1, nil)
		}
	})
	done = func() { fcancel(); fwg.Wait() }
	if ref = <-refc; ref == 0 {
		done()
		t.Fatal("no answered call with RTP in the replay")
	}
	return ref, done
}

// waitDrained waits (10 s at most) until the player's worklet has rendered
// every frame the page received (its buffer ran dry after the last) and
// what it rendered up to then reached the page: on a loaded machine the
// worklet's messages to the page come up to 1.5 s late, and the last
// second of the call was missing from a capture read at once.
func waitDrained(t *testing.T, ctx context.Context) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = __player.stats;
			return !!s && s.lastSeq === __player.lastSeq && !s.playing && s.depthMs < 1; })()`))
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the player's buffer did not drain after the call ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
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
