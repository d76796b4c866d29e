package audio

import (
	"bytes"
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
	{codec.G726, 112},
	{codec.Speex, 98},
	{codec.SpeexWB, 99},
}

// mapDynamic names the dynamic payload types of codecCases on c, as a
// call's SDP would.
func mapDynamic(c *Call) {
	for _, tc := range codecCases {
		c.MapPayloadType(tc.pt, tc.name)
	}
}

// tsStep is the RTP timestamp step of 20 ms in codec name: its clock is
// its native rate, but 8000 for G.722 (RFC 3551).
func tsStep(name string) uint32 {
	if name == codec.G722 {
		return FrameSamples
	}
	return uint32(codec.NativeRate(name) / 50)
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
			mapDynamic(c)
			a, b := encodeStream(t, tc.name, 700, 100), encodeStream(t, tc.name, 1300, 100)
			for i := range a {
				at := t0.Add(time.Duration(i) * FrameDuration)
				h := rtp.Header{Version: 2, PayloadType: tc.pt, SSRC: 1, Timestamp: uint32(i) * tsStep(tc.name)}
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
	c.MapPayloadType(97, "AMR")
	for i := 0; i < 20; i++ {
		h := rtp.Header{Version: 2, PayloadType: 97, SSRC: 1, Timestamp: uint32(i * FrameSamples)}
		c.Feed(FromCaller, &h, make([]byte, 38), t0.Add(time.Duration(i)*FrameDuration), false)
	}
	c.Close()
	if n := strings.Count(logBuf.String(), "codec not decoded"); n != 1 || !strings.Contains(logBuf.String(), "codec=AMR") {
		t.Errorf("%d log lines: %s", n, logBuf.String())
	}
	if st := c.Stats(); st.Undecodable != 20 {
		t.Errorf("undecodable %d, want 20", st.Undecodable)
	}
}

// feedCases are the codecs Feed is measured with.
var feedCases = append([]codecCase{{codec.PCMU, rtp.PTPCMU}}, codecCases...)

// packetFeeder returns a call (frames at rate, 0 = the codec's) and a
// function that feeds it the caller's next 20 ms packet of 700 Hz in tc.
func packetFeeder(t testing.TB, tc codecCase, rate int) (*Call, func()) {
	c := NewCall(Config{Sink: func(*Frame) {}, Rate: rate})
	mapDynamic(c)
	ps := [][]byte{make([]byte, FrameSamples)}
	if tc.name != codec.PCMU {
		ps = encodeStream(t, tc.name, 700, 50)
	}
	h := rtp.Header{Version: 2, PayloadType: tc.pt, SSRC: 1}
	at, i := t0, 0
	return c, func() {
		c.Feed(FromCaller, &h, ps[i%len(ps)], at, false)
		i++
		h.SequenceNumber++
		h.Timestamp += tsStep(tc.name)
		at = at.Add(FrameDuration)
	}
}

// TestFeedNoAllocCodecs: decoding in Feed allocates nothing per packet
// once the stream's decoder exists, at the codec's rate and resampled
// into a 48 kHz call (as beside an Opus callee).
func TestFeedNoAllocCodecs(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo")
	}
	for _, tc := range feedCases {
		for _, rate := range []int{0, 48000} {
			c, next := packetFeeder(t, tc, rate)
			if allocs := testing.AllocsPerRun(200, next); allocs != 0 {
				t.Errorf("%s into a call at %d Hz: Feed allocates %v per packet", tc.name, c.Stats().Rate, allocs)
			}
			c.Close()
		}
	}
}

// BenchmarkFeedCodec is Feed's cost per 20 ms packet per codec (decoding
// included), at the codec's rate and resampled into a 48 kHz call.
func BenchmarkFeedCodec(b *testing.B) {
	if !codec.Built {
		b.Skip("built without cgo")
	}
	for _, tc := range feedCases {
		for _, rate := range []int{0, 48000} {
			name := tc.name
			if rate != 0 {
				name += "-into-48kHz"
			}
			b.Run(name, func(b *testing.B) {
				c, next := packetFeeder(b, tc, rate)
				defer c.Close()
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					next()
				}
			})
		}
	}
}

// lossCall feeds a 700 Hz caller stream in codec name (payload type pt)
// with sequence numbers, the packets in lost missing, and returns the
// frames and stats.
func lossCall(t *testing.T, name string, pt uint8, lost map[int]bool) ([]Frame, Stats) {
	t.Helper()
	var frames []Frame
	c := NewCall(Config{Sink: func(f *Frame) { frames = append(frames, *f.Clone()) }})
	mapDynamic(c)
	var payloads [][]byte
	if name == codec.PCMU {
		pcm := tone.Sine(100*FrameSamples, 0, SampleRate, 700, 8000)
		for i := 0; i < 100; i++ {
			p := make([]byte, FrameSamples)
			for j := range p {
				p[j] = nearestULaw(pcm[i*FrameSamples+j])
			}
			payloads = append(payloads, p)
		}
	} else {
		payloads = encodeStream(t, name, 700, 100)
	}
	step := tsStep(name)
	for i, p := range payloads {
		if lost[i] {
			continue
		}
		h := rtp.Header{Version: 2, PayloadType: pt, SSRC: 1, SequenceNumber: uint16(1000 + i), Timestamp: uint32(i) * step}
		c.Feed(FromCaller, &h, p, t0.Add(time.Duration(i)*FrameDuration), false)
	}
	c.Close()
	return frames, c.Stats()
}

// TestConcealLoss: packets lost in a stream (a gap in the sequence numbers)
// are concealed by the decoder: libopus, bcg729 and libspeex go on with the voice
// (700 Hz dominant, at least a fifth of its level), the others fade out
// from the last sample (never louder than it: no click). On the old
// timeline a gap was silence.
func TestConcealLoss(t *testing.T) {
	cases := append([]codecCase{{codec.PCMU, rtp.PTPCMU}}, codecCases...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != codec.PCMU && !codec.Built {
				t.Skip("built without cgo")
			}
			frames, st := lossCall(t, tc.name, tc.pt, map[int]bool{40: true, 41: true})
			if st.Concealed != 2 || len(frames) != 100 {
				t.Fatalf("%d frames, %d concealed; want 100, 2", len(frames), st.Concealed)
			}
			rate := frames[0].Rate
			var before, gap []int16
			for _, f := range frames[30:40] {
				before = append(before, f.Caller...)
			}
			for _, f := range frames[40:42] {
				gap = append(gap, f.Caller...)
			}
			ratio := tone.RMS(gap) / tone.RMS(before)
			t.Logf("%s: concealed 40 ms at %.1f of the voice's level, 700 Hz %.1f dB over 1300 Hz; first sample %d after %d",
				tc.name, ratio, tone.Over(gap, float64(rate), 700, 1300), gap[0], before[len(before)-1])
			switch tc.name {
			case codec.Opus, codec.G729, codec.Speex, codec.SpeexWB:
				if ratio < 0.2 || tone.Over(gap, float64(rate), 700, 1300) < 10 {
					t.Errorf("own concealment: level %.2f, 700 Hz %.1f dB over 1300 Hz; want ≥ 0.2 and ≥ 10 dB", ratio, tone.Over(gap, float64(rate), 700, 1300))
				}
			default:
				last := math.Abs(float64(before[len(before)-1]))
				if peak := float64(level(gap)); peak > last+1 || ratio > 0.5 || (last >= 8 && gap[0] == 0) {
					t.Errorf("fade: first %d, peak %v after a last sample of %v, level %.2f; want a fade from it, no louder", gap[0], peak, last, ratio)
				}
			}
		})
	}
}

// TestNoConcealAcrossEvents: RFC 4733 events share the stream's SSRC and
// sequence numbers: they are not audio, not a gap, and a lost event is not
// concealed as speech.
func TestNoConcealAcrossEvents(t *testing.T) {
	var frames []Frame
	c := NewCall(Config{Sink: func(f *Frame) { frames = append(frames, *f.Clone()) }})
	c.MapPayloadType(101, codec.Event)
	for i := 0; i < 100; i++ {
		h := rtp.Header{Version: 2, PayloadType: rtp.PTPCMU, SSRC: 1, SequenceNumber: uint16(i), Timestamp: uint32(i * FrameSamples)}
		p := make([]byte, FrameSamples)
		for j := range p {
			p[j] = 0x90
		}
		if i >= 40 && i < 50 {
			if i == 45 {
				continue // a lost event packet
			}
			h.PayloadType, p = 101, []byte{5, 0x0a, 0, byte(i - 39)}
		}
		c.Feed(FromCaller, &h, p, t0.Add(time.Duration(i)*FrameDuration), false)
	}
	c.Close()
	st := c.Stats()
	var during []int16
	for _, f := range frames[41:49] {
		during = append(during, f.Caller...)
	}
	if st.Concealed != 0 || level(during) != 0 || level(frames[60].Caller) == 0 {
		t.Errorf("concealed %d, peak during the events %d, after %d; want 0, 0, sound", st.Concealed, level(during), level(frames[60].Caller))
	}
}

// TestComfortNoiseUntilSpeech: one CN packet plays comfort noise at its
// level until the direction's next speech packet (here 1 s later, the
// callee's packets keeping the clock), not 20 ms; a second CN packet
// changes the level. Speech afterwards is not noisy.
func TestComfortNoiseUntilSpeech(t *testing.T) {
	var frames []Frame
	c := NewCall(Config{Sink: func(f *Frame) { frames = append(frames, *f.Clone()) }})
	speech := tone.Sine(FrameSamples, 0, SampleRate, 1000, 8000)
	ulaw := make([]byte, FrameSamples)
	for j := range ulaw {
		ulaw[j] = nearestULaw(speech[j])
	}
	silence := make([]byte, FrameSamples)
	for j := range silence {
		silence[j] = 0xff // µ-law zero
	}
	for i := 0; i < 100; i++ {
		at := t0.Add(time.Duration(i) * FrameDuration)
		h := rtp.Header{Version: 2, PayloadType: rtp.PTPCMU, SSRC: 2, SequenceNumber: uint16(i), Timestamp: uint32(i * FrameSamples)}
		c.Feed(FromCallee, &h, silence, at, false)
		h.SSRC = 1
		switch {
		case i < 25 || i >= 75:
			c.Feed(FromCaller, &h, ulaw, at, false)
		case i == 25:
			h.PayloadType = rtp.PTCN
			c.Feed(FromCaller, &h, []byte{40}, at, false)
		case i == 50:
			h.PayloadType = rtp.PTCN
			c.Feed(FromCaller, &h, []byte{60}, at, false)
		}
	}
	c.Close()
	dbov := func(from, to int) float64 {
		var s []int16
		for _, f := range frames[from:to] {
			s = append(s, f.Caller...)
		}
		return 20 * math.Log10(tone.RMS(s)/32767)
	}
	first, second := dbov(26, 50), dbov(51, 75)
	var after []int16
	for _, f := range frames[80:90] {
		after = append(after, f.Caller...)
	}
	pure := tone.Purity(after, SampleRate, 1000)
	t.Logf("comfort noise: %.1f dBov over 480 ms after a -40 CN packet, %.1f dBov after a -60 one; speech afterwards 1 kHz %.1f dB over the rest", first, second, pure)
	if math.Abs(first+40) > 1 || math.Abs(second+60) > 1.5 || pure < 30 {
		t.Errorf("noise at %.1f / %.1f dBov (want -40 / -60), speech purity %.1f dB (want ≥ 30)", first, second, pure)
	}
}

// TestCodecSwitchBackNoAlloc: a sender switching between two codecs on
// every packet (G.723.1 from libavcodec and PCMU) opens no decoder after
// the first switch: Feed allocates nothing per packet.
func TestCodecSwitchBackNoAlloc(t *testing.T) {
	if _, err := codec.New(codec.G723, 0); err != nil {
		t.Skip("G.723.1 not in this build:", err)
	}
	c := NewCall(Config{Sink: func(*Frame) {}})
	defer c.Close()
	g723 := encodeStream(t, codec.G723, 700, 1)[0]
	pcmu := make([]byte, FrameSamples)
	h := rtp.Header{Version: 2, SSRC: 1}
	at, i := t0, 0
	next := func() {
		p := pcmu
		h.PayloadType = rtp.PTPCMU
		if i%2 == 1 {
			h.PayloadType, p = rtp.PTG723, g723
		}
		c.Feed(FromCaller, &h, p, at, false)
		i++
		h.SequenceNumber++
		h.Timestamp += 240
		at = at.Add(30 * time.Millisecond)
	}
	next()
	next()
	if allocs := testing.AllocsPerRun(200, next); allocs != 0 {
		t.Errorf("switching codecs on every packet: Feed allocates %v per packet", allocs)
	}
}
