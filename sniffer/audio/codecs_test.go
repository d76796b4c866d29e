package audio

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/rtp"
)

// codecCase is a codec of a generated two-way call (the caller's 700 Hz and
// the callee's 1300 Hz encoded with the codec's library) and its RTP
// payload type.
type codecCase struct {
	name string
	pt   uint8
}

var codecCases = []codecCase{
	{codec.G722, rtp.PTG722},
	{codec.GSM, rtp.PTGSM},
	{codec.G729, rtp.PTG729},
	{codec.Opus, 111},
}

// encodeStream returns n 20 ms payloads of a hz tone in codec name.
func encodeStream(t testing.TB, name string, hz float64, n int) [][]byte {
	t.Helper()
	e, err := codec.NewEncoder(name)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fs := e.FrameSamples()
	pcm := tone.Sine(fs*n, 0, float64(codec.NativeRate(name)), hz, 8000)
	buf := make([]byte, 1500)
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		k, err := e.Encode(pcm[i*fs:(i+1)*fs], buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(buf[:k]))
	}
	return out
}

// channels concatenates the emitted frames' caller and callee channels,
// checking that every frame is at rate.
func channels(t testing.TB, frames []Frame, rate int) (caller, callee []int16) {
	t.Helper()
	for i := range frames {
		if frames[i].Rate != rate || frames[i].Samples() != rate/50 {
			t.Fatalf("frame %d at %d Hz with %d samples, want %d Hz", frames[i].Index, frames[i].Rate, frames[i].Samples(), rate)
		}
		caller = append(caller, frames[i].Caller[:]...)
		callee = append(callee, frames[i].Callee[:]...)
	}
	return caller, callee
}

// TestCodecCallTones: a generated call in each codec plays the caller's
// 700 Hz on the left and the callee's 1300 Hz on the right, each ≥ 30 dB
// above the other side's tone, in frames at the codec's native rate.
func TestCodecCallTones(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo")
	}
	for _, tc := range codecCases {
		t.Run(tc.name, func(t *testing.T) {
			var frames []Frame
			c := NewCall(Config{Sink: func(f *Frame) { frames = append(frames, *f.Clone()) }})
			c.MapPayloadType(111, "OPUS")
			tsStep := uint32(FrameSamples)
			if tc.name == codec.Opus {
				tsStep = 960
			}
			a, b := encodeStream(t, tc.name, 700, 100), encodeStream(t, tc.name, 1300, 100)
			for i := range a {
				at := t0.Add(time.Duration(i) * FrameDuration)
				h := rtp.Header{Version: 2, PayloadType: tc.pt, SSRC: 1, Timestamp: uint32(i) * tsStep}
				c.Feed(FromCaller, &h, a[i], at, false)
				h.SSRC = 2
				c.Feed(FromCallee, &h, b[i], at, false)
			}
			c.Close()
			st := c.Stats()
			if len(frames) != 100 || st.Undecodable != 0 {
				t.Fatalf("%d frames, %d undecodable; want 100, 0", len(frames), st.Undecodable)
			}
			rate := codec.NativeRate(tc.name)
			l, r := channels(t, frames[10:], rate)
			left, right := tone.Over(l, float64(rate), 700, 1300), tone.Over(r, float64(rate), 1300, 700)
			t.Logf("%s at %d Hz: left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz", tc.name, rate, left, right)
			if left < 30 || right < 30 {
				t.Errorf("separation left %.1f dB, right %.1f dB; want ≥ 30", left, right)
			}
		})
	}
}

// TestCodecChangeKeepsPlaying: a re-INVITE from PCMU to G.722 mid-call
// keeps the caller audible across the change.
func TestCodecChangeKeepsPlaying(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo")
	}
	var frames []Frame
	c := NewCall(Config{Sink: func(f *Frame) { frames = append(frames, *f.Clone()) }})
	g722 := encodeStream(t, codec.G722, 700, 50)
	ulaw := make([]byte, FrameSamples)
	for i := range ulaw {
		ulaw[i] = byte(0x80 + i%8) // non-silent µ-law
	}
	for i := 0; i < 100; i++ {
		h := rtp.Header{Version: 2, PayloadType: rtp.PTPCMU, SSRC: 1, Timestamp: uint32(i * FrameSamples)}
		p := ulaw
		if i >= 50 {
			h.PayloadType, p = rtp.PTG722, g722[i-50]
		}
		c.Feed(FromCaller, &h, p, t0.Add(time.Duration(i)*FrameDuration), false)
	}
	c.Close()
	channels(t, frames[:40], SampleRate) // the frames still held at the change go out at 16 kHz
	l, _ := channels(t, frames[55:], 16000)
	if over := tone.Over(l, 16000, 700, 1300); over < 30 || len(frames) != 100 {
		t.Errorf("%d frames; after the change 700 Hz %.1f dB over 1300 Hz", len(frames), over)
	}
}

// TestComfortNoiseAndEvents: CN (PT 13) plays noise at its level, RFC 4733
// events (a dynamic PT) are never audio.
func TestComfortNoiseAndEvents(t *testing.T) {
	var frames []Frame
	c := NewCall(Config{Sink: func(f *Frame) { frames = append(frames, *f.Clone()) }})
	c.MapPayloadType(101, "telephone-event")
	for i := 0; i < 50; i++ {
		at := t0.Add(time.Duration(i) * FrameDuration)
		h := rtp.Header{Version: 2, PayloadType: rtp.PTCN, SSRC: 1, Timestamp: uint32(i * FrameSamples)}
		c.Feed(FromCaller, &h, []byte{40}, at, false)
		h = rtp.Header{Version: 2, PayloadType: 101, SSRC: 2, Timestamp: uint32(i * FrameSamples)}
		c.Feed(FromCallee, &h, []byte{5, 0x8a, 0x03, 0x20}, at, false)
	}
	c.Close()
	l, r := channels(t, frames, SampleRate)
	if db := 20 * math.Log10(tone.RMS(l)/32767); db < -41 || db > -39 {
		t.Errorf("comfort noise at %.1f dBov, want -40", db)
	}
	if level(r) != 0 {
		t.Errorf("telephone-event played as audio (peak %d)", level(r))
	}
}

// TestUndecodableLoggedOnce: a codec without a decoder is silence, counted,
// and logged once per call however many packets come.
func TestUndecodableLoggedOnce(t *testing.T) {
	var logBuf bytes.Buffer
	c := NewCall(Config{Log: slog.New(slog.NewTextHandler(&logBuf, nil))})
	c.MapPayloadType(97, "iLBC")
	for i := 0; i < 20; i++ {
		h := rtp.Header{Version: 2, PayloadType: 97, SSRC: 1, Timestamp: uint32(i * FrameSamples)}
		c.Feed(FromCaller, &h, make([]byte, 38), t0.Add(time.Duration(i)*FrameDuration), false)
	}
	c.Close()
	if n := strings.Count(logBuf.String(), "codec not decoded"); n != 1 || !strings.Contains(logBuf.String(), "codec=ILBC") {
		t.Errorf("%d log lines: %s", n, logBuf.String())
	}
	if st := c.Stats(); st.Undecodable != 20 {
		t.Errorf("undecodable %d, want 20", st.Undecodable)
	}
}

// TestFeedNoAllocCodecs: decoding G.722/GSM/G.729/Opus in Feed allocates
// nothing per packet once the stream's decoder exists.
func TestFeedNoAllocCodecs(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo")
	}
	for _, tc := range codecCases {
		c := NewCall(Config{Sink: func(*Frame) {}})
		c.MapPayloadType(111, codec.Opus)
		ps := encodeStream(t, tc.name, 700, 50)
		h := rtp.Header{Version: 2, PayloadType: tc.pt, SSRC: 1}
		at, i := t0, 0
		allocs := testing.AllocsPerRun(200, func() {
			c.Feed(FromCaller, &h, ps[i%len(ps)], at, false)
			i++
			h.Timestamp += FrameSamples
			at = at.Add(FrameDuration)
		})
		if allocs != 0 {
			t.Errorf("%s: Feed allocates %v per packet", tc.name, allocs)
		}
		c.Close()
	}
}

// BenchmarkFeedCodec is Feed's cost per 20 ms packet per codec (decoding
// included).
func BenchmarkFeedCodec(b *testing.B) {
	if !codec.Built {
		b.Skip("built without cgo")
	}
	for _, tc := range codecCases {
		b.Run(fmt.Sprint(tc.name), func(b *testing.B) {
			c := NewCall(Config{Sink: func(*Frame) {}})
			defer c.Close()
			c.MapPayloadType(111, codec.Opus)
			ps := encodeStream(b, tc.name, 700, 50)
			h := rtp.Header{Version: 2, PayloadType: tc.pt, SSRC: 1}
			at := t0
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.Feed(FromCaller, &h, ps[i%len(ps)], at, false)
				h.Timestamp += FrameSamples
				at = at.Add(FrameDuration)
			}
		})
	}
}
