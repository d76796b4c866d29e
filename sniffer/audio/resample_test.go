package audio

import (
	"fmt"
	"math"
	"testing"
	"time"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/rtp"
)

var rateChanges = []struct{ from, to int }{
	{8000, 16000}, {8000, 48000}, {16000, 48000}, {16000, 24000},
	{48000, 16000}, {48000, 8000}, {16000, 8000}, {24000, 16000}, {8000, 8000},
}

// TestResamplerTones: a 700 Hz tone resampled 20 ms at a time keeps its
// frequency and level, with every other frequency (images, aliases, the
// joins between chunks) far below it, and each 20 ms chunk gives
// exactly 20 ms (its frequency pure to ≥ 50 dB whatever the filter's
// delay).
func TestResamplerTones(t *testing.T) {
	for _, tc := range rateChanges {
		t.Run(fmt.Sprintf("%d-%d", tc.from, tc.to), func(t *testing.T) {
			r := NewResampler(tc.from, tc.to)
			in := tone.Sine(tc.from, 0, float64(tc.from), 700, 8000) // 1 s
			out := make([]int16, 0, tc.to)
			buf := make([]int16, tc.to/50)
			for i := 0; i < len(in); i += tc.from / 50 {
				if n := r.OutLen(tc.from / 50); n != tc.to/50 {
					t.Fatalf("OutLen %d, want %d", n, tc.to/50)
				}
				n := r.Process(buf, in[i:i+tc.from/50])
				if n != tc.to/50 {
					t.Fatalf("chunk gave %d samples, want %d", n, tc.to/50)
				}
				out = append(out, buf[:n]...)
			}
			got := out[tc.to/10:] // past the filter's start: 0.9 s, 630 cycles
			pure := tone.Purity(got, float64(tc.to), 700)
			level := 20 * math.Log10(tone.RMS(got)/tone.RMS(in))
			t.Logf("%d → %d Hz: 700 Hz %.1f dB over the rest, level %+.2f dB", tc.from, tc.to, pure, level)
			if pure < 50 || math.Abs(level) > 0.5 {
				t.Errorf("purity %.1f dB, level %+.2f dB; want ≥ 50 dB, ±0.5 dB", pure, level)
			}
		})
	}
}

// TestResamplerStopBand: what lies above the lower rate's band is gone —
// the image of 8 kHz audio at 48 kHz, or 10 kHz of a 48 kHz call brought to
// 16 kHz (which would alias to 6 kHz).
func TestResamplerStopBand(t *testing.T) {
	for _, tc := range []struct {
		from, to int
		hz       float64 // tone in
		image    float64 // where an image shows (0: downsampling, all of it must go)
	}{
		{8000, 48000, 1000, 7000},
		{16000, 48000, 3000, 13000},
		{48000, 16000, 10000, 0},
		{48000, 8000, 5000, 0},
	} {
		r := NewResampler(tc.from, tc.to)
		in := tone.Sine(tc.from/2, 0, float64(tc.from), tc.hz, 16000)
		out := make([]int16, r.OutLen(len(in)))
		r.Process(out, in)
		out = out[len(out)/4:]
		var db float64
		if tc.image > 0 {
			db = -tone.Over(out, float64(tc.to), tc.hz, tc.image)
		} else {
			db = 20 * math.Log10(max(tone.RMS(out), 0.1)/tone.RMS(in))
		}
		t.Logf("%d → %d Hz, %v Hz in: what should be gone is at %.1f dB", tc.from, tc.to, tc.hz, db)
		if db > -60 {
			t.Errorf("%d → %d Hz: %v Hz leaks at %.1f dB, want ≤ -60", tc.from, tc.to, tc.hz, db)
		}
	}
}

// TestConverterNoAlloc: converting frames allocates nothing once the
// resamplers exist.
func TestConverterNoAlloc(t *testing.T) {
	c := NewConverter(SampleRate)
	var f Frame
	f.Reset(48000)
	c.Convert(&f)
	if n := testing.AllocsPerRun(100, func() { c.Convert(&f) }); n != 0 {
		t.Errorf("Convert allocates %v per frame", n)
	}
}

// TestMixedRateStereo: a G.711 caller and an Opus callee are framed
// together at Opus's 48 kHz, the caller resampled: each side's tone ≥ 30 dB
// over the other's.
func TestMixedRateStereo(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo")
	}
	var frames []Frame
	c := NewCall(Config{Sink: func(f *Frame) { frames = append(frames, *f.Clone()) }})
	c.MapPayloadType(111, codec.Opus)
	opus := encodeStream(t, codec.Opus, 1300, 100)
	pcm := tone.Sine(100*FrameSamples, 0, SampleRate, 700, 8000)
	for i := range opus {
		at := t0.Add(time.Duration(i) * FrameDuration)
		ulaw := make([]byte, FrameSamples)
		for j := range ulaw {
			ulaw[j] = nearestULaw(pcm[i*FrameSamples+j])
		}
		h := rtp.Header{Version: 2, PayloadType: rtp.PTPCMU, SSRC: 1, SequenceNumber: uint16(i), Timestamp: uint32(i * FrameSamples)}
		c.Feed(FromCaller, &h, ulaw, at, false)
		h = rtp.Header{Version: 2, PayloadType: 111, SSRC: 2, SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}
		c.Feed(FromCallee, &h, opus[i], at, false)
	}
	c.Close()
	l, r := channels(t, frames[10:], 48000)
	left, right := tone.Over(l, 48000, 700, 1300), tone.Over(r, 48000, 1300, 700)
	t.Logf("PCMU caller + Opus callee at 48 kHz: left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz", left, right)
	if left < 30 || right < 30 {
		t.Errorf("separation left %.1f dB, right %.1f dB; want ≥ 30", left, right)
	}
}

// nearestULaw is the µ-law byte whose value is nearest s (a test encoder).
func nearestULaw(s int16) byte {
	best := byte(0)
	for b := 0; b < 256; b++ {
		if d, e := math.Abs(float64(rtp.ULawToLinear(byte(b)))-float64(s)), math.Abs(float64(rtp.ULawToLinear(best))-float64(s)); d < e {
			best = byte(b)
		}
	}
	return best
}

// BenchmarkResampler is the cost of one 20 ms frame (one channel) per
// rate change.
func BenchmarkResampler(b *testing.B) {
	for _, tc := range rateChanges {
		b.Run(fmt.Sprintf("%d-%d", tc.from, tc.to), func(b *testing.B) {
			r := NewResampler(tc.from, tc.to)
			in := tone.Sine(tc.from/50, 0, float64(tc.from), 700, 8000)
			out := make([]int16, tc.to/50)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r.Process(out, in)
			}
		})
	}
}
