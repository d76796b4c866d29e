package codec

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"pbx-agent/internal/tone"
)

// encoded are the codecs this package encodes; iLBC has recorded payloads
// instead (ilbc20 is its 20 ms mode, a test label only).
var encoded = []string{G722, GSM, G729, Opus, G726, G726AAL2, Speex, SpeexWB, G723}

const ilbc20 = "iLBC/20"

// tested are all codec labels the tests decode.
var tested = append(append([]string(nil), encoded...), ILBC, ilbc20)

// decName is the decoder name of a test label.
func decName(label string) string {
	if label == ilbc20 {
		return ILBC
	}
	return label
}

// need skips when this build cannot decode name (no cgo, nocodecs or
// noavcodec).
func need(t testing.TB, name string) {
	t.Helper()
	d, err := New(decName(name), 8000)
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("%s not in this build: %v", name, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

// encodeTone encodes secs seconds of a hz tone at the codec's native rate
// into payloads; iLBC's come from the recorded files (700 and 1300 Hz, 2 s,
// RFC 3951's reference encoder; see testdata/README.md).
func encodeTone(t testing.TB, name string, hz float64, secs int) [][]byte {
	t.Helper()
	if decName(name) == ILBC {
		mode, size := 30, 50
		if name == ilbc20 {
			mode, size = 20, 38
		}
		raw, err := os.ReadFile(fmt.Sprintf("../simulate/ilbc/ilbc%d-%d.raw", mode, int(hz)))
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for i := 0; i+size <= len(raw) && i < 8000*secs/(8*mode)*size; i += size {
			out = append(out, raw[i:i+size])
		}
		return out
	}
	e, err := NewEncoder(name)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	n := e.FrameSamples()
	pcm := tone.Sine(NativeRate(name)*secs, 0, float64(NativeRate(name)), hz, 8000)
	var out [][]byte
	buf := make([]byte, 1500)
	for i := 0; i+n <= len(pcm); i += n {
		k, err := e.Encode(pcm[i:i+n], buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), buf[:k]...))
	}
	return out
}

func decodeAll(t testing.TB, d Decoder, payloads [][]byte) []int16 {
	t.Helper()
	var pcm []int16
	out := make([]int16, MaxSamples)
	for _, p := range payloads {
		n, err := d.Decode(p, out)
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, out[:n]...)
	}
	return pcm
}

// rates are the output rates worth testing for a codec: native and 8 kHz.
func rates(name string) []int {
	if r := NativeRate(name); r != 8000 {
		return []int{r, 8000}
	}
	return []int{8000}
}

// frameMs is the packet time of a codec's payloads in these tests.
func frameMs(label string) int {
	switch label {
	case G723, ILBC:
		return 30
	}
	return 20
}

// TestRoundTrip: a 700 Hz tone encoded with each library decodes, at the
// native rate and at 8 kHz, to 20 ms per packet with 700 Hz ≥ 30 dB above
// 1300 Hz and its level kept within 6 dB.
func TestRoundTrip(t *testing.T) {
	for _, name := range tested {
		for _, rate := range rates(name) {
			t.Run(fmt.Sprintf("%s/%d", name, rate), func(t *testing.T) {
				need(t, name)
				d, err := New(decName(name), rate)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				payloads := encodeTone(t, name, 700, 1)
				pcm := decodeAll(t, d, payloads)
				if want := len(payloads) * frameMs(name) * rate / 1000; len(pcm) != want {
					t.Fatalf("%d samples for %d payloads, want %d", len(pcm), len(payloads), want)
				}
				steady := pcm[rate/5:]
				over := tone.Over(steady, float64(rate), 700, 1300)
				level := 20 * math.Log10(tone.RMS(steady)/(8000/math.Sqrt2))
				t.Logf("%s at %d Hz: 700 Hz %.1f dB over 1300 Hz, level %+.1f dB", name, rate, over, level)
				if over < 30 || math.Abs(level) > 6 {
					t.Errorf("700 Hz %.1f dB over 1300 Hz (want ≥ 30), level %+.1f dB (want ±6)", over, level)
				}
			})
		}
	}
}

// TestComfortNoise: a CN packet of level L plays 20 ms of noise whose RMS
// is L dBov below full scale; concealment keeps that level.
func TestComfortNoise(t *testing.T) {
	for _, level := range []byte{30, 50, 70} {
		d, err := New(CN, 8000)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int16, 8000)
		n, err := d.Decode([]byte{level}, out)
		if err != nil || n != 160 {
			t.Fatalf("level %d: %d samples, %v", level, n, err)
		}
		d.Conceal(out[n:], 8000-n)
		got := 20 * math.Log10(tone.RMS(out)/32767)
		if math.Abs(got+float64(level)) > 1 {
			t.Errorf("level %d: noise at %.1f dBov", level, got)
		}
	}
	if _, err := New(CN, 8000); err != nil {
		t.Fatal(err)
	}
	d, _ := New(CN, 8000)
	if _, err := d.Decode(nil, make([]int16, 160)); !errors.Is(err, ErrPayload) {
		t.Errorf("empty CN: %v, want ErrPayload", err)
	}
}

// TestUnsupported: RFC 4733 events and unknown codecs are never decoded as
// audio; rates a codec cannot make are refused.
func TestUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate int
		want error
	}{
		{Event, 8000, ErrUnsupported},
		{"AMR", 8000, ErrUnsupported},
		{"H264", 8000, ErrUnsupported},
		{PCMU, 16000, ErrRate},
		{G726, 16000, ErrRate},
		{Speex, 48000, ErrRate},
	} {
		if _, err := New(tc.name, tc.rate); !errors.Is(err, tc.want) && (Built || !errors.Is(err, ErrUnsupported)) {
			t.Errorf("New(%q, %d) = %v, want %v", tc.name, tc.rate, err, tc.want)
		}
	}
	for _, name := range tested {
		has := Built && (builtAV || decName(name) != ILBC && name != G723)
		d, err := New(decName(name), 8000)
		if has && err != nil || !has && !errors.Is(err, ErrUnsupported) {
			t.Errorf("New(%q) = %v with Built=%v builtAV=%v", name, err, Built, builtAV)
		}
		if err == nil {
			d.Close()
		}
	}
	// Decodable (what `pbx-agent version` prints) agrees with the build.
	yes, no := Decodable()
	got := strings.Join(yes, " ") + " | " + strings.Join(no, " ")
	want := "PCMU PCMA CN | G722 GSM G729 opus G726-32 AAL2-G726-32 iLBC G723 speex speex/16000"
	switch {
	case Built && builtAV:
		want = "PCMU PCMA G722 GSM G729 opus CN G726-32 AAL2-G726-32 iLBC G723 speex speex/16000 | "
	case Built:
		want = "PCMU PCMA G722 GSM G729 opus CN G726-32 AAL2-G726-32 speex speex/16000 | iLBC G723"
	}
	if got != want {
		t.Errorf("Decodable() = %q, want %q", got, want)
	}
}

// TestConceal: a lost packet is replaced by as many samples as asked (in
// the codec's frame steps) without error.
func TestConceal(t *testing.T) {
	for _, name := range append([]string{PCMU}, tested...) {
		t.Run(name, func(t *testing.T) {
			need(t, name)
			d, err := New(decName(name), 8000)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if name != PCMU {
				decodeAll(t, d, encodeTone(t, name, 700, 1)[:10])
			}
			out := make([]int16, MaxSamples)
			if n := d.Conceal(out, 160); n != 160 {
				t.Errorf("Conceal(160) = %d", n)
			}
		})
	}
}

// TestDecodeAllocs: decoding a packet allocates nothing.
func TestDecodeAllocs(t *testing.T) {
	for _, name := range append([]string{PCMU, CN}, tested...) {
		t.Run(name, func(t *testing.T) {
			need(t, name)
			p := []byte{40}
			if name == PCMU {
				p = make([]byte, 160)
			} else if name != CN {
				p = encodeTone(t, name, 700, 1)[10]
			}
			for _, rate := range rates(name) {
				d, err := New(decName(name), rate)
				if err != nil {
					t.Fatal(err)
				}
				out := make([]int16, MaxSamples)
				if a := testing.AllocsPerRun(100, func() { _, _ = d.Decode(p, out) }); a != 0 {
					t.Errorf("%d Hz: %.1f allocations per packet", rate, a)
				}
				d.Close()
			}
		})
	}
}

// BenchmarkDecode is the cost of one packet per codec and rate (make
// bench): ns/op is per 20 ms payload, 30 ms for G.723.1 and iLBC (30 ms
// mode).
func BenchmarkDecode(b *testing.B) {
	for _, name := range append([]string{PCMU}, tested...) {
		for _, rate := range rates(name) {
			b.Run(fmt.Sprintf("%s/%d", name, rate), func(b *testing.B) {
				need(b, name)
				var payloads [][]byte
				if name == PCMU {
					payloads = [][]byte{make([]byte, 160)}
				} else {
					payloads = encodeTone(b, name, 700, 1)
				}
				benchDecode(b, name, rate, payloads, 0)
			})
		}
	}
}

// FuzzDecode: any payload, for any codec, decodes or fails cleanly.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), []byte{0xff, 0x7f})
	f.Add(uint8(1), make([]byte, 160))
	f.Add(uint8(2), make([]byte, 33))
	f.Add(uint8(3), make([]byte, 22))
	f.Add(uint8(4), []byte{0x78, 0x01, 0x02})
	f.Add(uint8(5), []byte{60})
	f.Add(uint8(6), make([]byte, 80))
	f.Add(uint8(7), make([]byte, 80))
	f.Add(uint8(8), make([]byte, 50))
	f.Add(uint8(9), []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0, 1, 2, 3, 4, 5, 6, 7})
	f.Add(uint8(10), make([]byte, 38))
	f.Add(uint8(11), make([]byte, 70))
	names := []string{PCMA, G722, GSM, G729, Opus, CN, G726, G726AAL2, ILBC, G723, Speex, SpeexWB}
	out := make([]int16, MaxSamples)
	f.Fuzz(func(t *testing.T, which uint8, p []byte) {
		name := names[int(which)%len(names)]
		d, err := New(name, NativeRate(name))
		if err != nil {
			t.Skip(err)
		}
		defer d.Close()
		if len(p) > 1500 {
			p = p[:1500]
		}
		n, err := d.Decode(p, out)
		if err == nil && (n < 0 || n > len(out)) {
			t.Fatalf("%s: %d samples", name, n)
		}
	})
}

// BenchmarkDecodeWorst is the cost of the most frames one payload can
// hold: 1,500 untransmitted G.723.1 frames of one byte each (only the
// first MaxSamples/240 are decoded) and 30 iLBC 30 ms frames.
func BenchmarkDecodeWorst(b *testing.B) {
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{G723, bytes.Repeat([]byte{0x03}, 1500)},
		{ILBC, make([]byte, 1500)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			need(b, tc.name)
			benchDecode(b, tc.name, 8000, [][]byte{tc.p}, MaxSamples)
		})
	}
}

// benchDecode times decoding the payloads in turn with a decoder of name
// at rate; want > 0 is the samples each payload must give.
func benchDecode(b *testing.B, name string, rate int, payloads [][]byte, want int) {
	d, err := New(decName(name), rate)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	out := make([]int16, MaxSamples)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, err := d.Decode(payloads[i%len(payloads)], out); err != nil || want > 0 && n != want {
			b.Fatalf("%d samples, %v", n, err)
		}
	}
}
