package rtp

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
	"unsafe"

	"pbx-agent/internal/cputime"
)

// dBm0 is the peak of a sine at level db dBm0 in the decoders' 16-bit
// domain (0 dBm0 peaks at about 22,700).
func dBm0(db float64) float64 { return 22700 * math.Pow(10, db/20) }

// signal is audio as a function of time (s) → 16-bit sample value.
type signal func(t float64) float64

func sine(hz, db float64) signal {
	a := dBm0(db)
	return func(t float64) float64 { return a * math.Sin(2*math.Pi*hz*t) }
}

// sum adds signals.
func sum(ss ...signal) signal {
	return func(t float64) float64 {
		v := 0.0
		for _, s := range ss {
			v += s(t)
		}
		return v
	}
}

// cadence plays s for on, then silence for off, repeated.
func cadence(s signal, on, off time.Duration) signal {
	period := (on + off).Seconds()
	return func(t float64) float64 {
		if math.Mod(t, period) < on.Seconds() {
			return s(t)
		}
		return 0
	}
}

// upTo plays s until d, silence after.
func upTo(s signal, d time.Duration) signal {
	return func(t float64) float64 {
		if t < d.Seconds() {
			return s(t)
		}
		return 0
	}
}

// noise is white noise of mean square level db dBm0 (uniform samples).
func noise(db float64, seed uint64) signal {
	r := rand.New(rand.NewPCG(seed, 1))
	a := dBm0(db) / math.Sqrt2 * math.Sqrt(3) // uniform ±a has mean square a²/3
	return func(float64) float64 { return a * (2*r.Float64() - 1) }
}

// speech imitates voiced speech: a 120 Hz glottal pulse train's harmonics
// shaped by three formants that glide, syllables of 200 ms with pauses, at
// about db dBm0 (mean square, pauses included).
func speech(db float64) signal {
	a := dBm0(db)
	return func(t float64) float64 {
		syl := math.Mod(t, 0.3)
		if syl > 0.2 {
			return 0
		}
		f0 := 120 + 20*math.Sin(2*math.Pi*0.7*t)
		formants := [3]float64{500 + 300*math.Sin(2*math.Pi*1.3*t), 1100 + 400*math.Sin(2*math.Pi*0.9*t), 2400}
		v := 0.0
		for h := 1; h*int(f0) < 3800; h++ {
			f := float64(h) * f0
			g := 0.0
			for _, fm := range formants {
				g += 1 / (1 + math.Pow((f-fm)/120, 2))
			}
			v += g / float64(h) * math.Sin(2*math.Pi*f*t)
		}
		return a * v * 3.3 * math.Sin(math.Pi*syl/0.2)
	}
}

// dtmf plays the digits' tone pairs (each -7 dBm0), on and off times each.
func dtmf(digits string, on, off time.Duration) signal {
	rows := map[byte][2]float64{}
	keys := "123A456B789C*0#D"
	for i := range keys {
		rows[keys[i]] = [2]float64{[]float64{697, 770, 852, 941}[i/4], []float64{1209, 1336, 1477, 1633}[i%4]}
	}
	per := (on + off).Seconds()
	return func(t float64) float64 {
		i := int(t / per)
		if i >= len(digits) || math.Mod(t, per) >= on.Seconds() {
			return 0
		}
		f := rows[digits[i]]
		return dBm0(-7)*math.Sin(2*math.Pi*f[0]*t) + dBm0(-7)*math.Sin(2*math.Pi*f[1]*t)
	}
}

// phaseReversals is 2100 Hz with its phase turned by 180° every 450 ms
// (V.25's answer tone for modems, ANS/PR).
func phaseReversals(db float64) signal {
	s := sine(2100, db)
	return func(t float64) float64 {
		if int(t/0.45)%2 == 1 {
			return -s(t)
		}
		return s(t)
	}
}

// g711Encoder encodes linear samples with a decoding table: the code of
// the nearest decoded value.
type g711Encoder struct {
	vals  []int16
	codes []byte
}

func newEncoder(tab *[256]int16) *g711Encoder {
	e := &g711Encoder{}
	idx := make([]int, 256)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return tab[idx[a]] < tab[idx[b]] })
	for _, i := range idx {
		e.vals = append(e.vals, tab[i])
		e.codes = append(e.codes, byte(i))
	}
	return e
}

func (e *g711Encoder) encode(x float64) byte {
	v := int16(math.Max(-32768, math.Min(32767, math.Round(x))))
	i := sort.Search(len(e.vals), func(i int) bool { return e.vals[i] >= v })
	switch {
	case i == len(e.vals):
		i--
	case i > 0 && int(v)-int(e.vals[i-1]) < int(e.vals[i])-int(v):
		i--
	}
	return e.codes[i]
}

// packets encodes d of s as G.711 payloads of ptime each.
func packets(s signal, d, ptime time.Duration, alaw bool) [][]byte {
	enc := newEncoder(&ulawTable)
	if alaw {
		enc = newEncoder(&alawTable)
	}
	per := int(ptime.Seconds() * 8000)
	var out [][]byte
	for n := 0; n < int(d.Seconds()*8000); n += per {
		p := make([]byte, per)
		for i := range p {
			p[i] = enc.encode(s(float64(n+i) / 8000))
		}
		out = append(out, p)
	}
	return out
}

// TestFaxTones: the tones of a fax call's start are found (at the length
// VoIPmonitor's detector needs: 0.42 s of CNG, 2.3 s of CED), once per
// tone; speech, DTMF, noise, silence, short or faint or detuned tones are
// not.
func TestFaxTones(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name  string
		in    signal
		dur   time.Duration
		ptime time.Duration // 0 = 20 ms
		alaw  bool
		want  FaxTone       // the first tone reported
		at    time.Duration // the packet it is reported in starts before
		n     int           // tones reported in all
	}{
		{name: "CNG cadence", in: cadence(sine(1100, -10), 500*ms, 3*time.Second), dur: 7 * time.Second, want: FaxCNG, at: 460 * ms, n: 2},
		{name: "CNG A-law 30 ms", in: cadence(sine(1100, -10), 500*ms, 3*time.Second), dur: 4 * time.Second, ptime: 30 * ms, alaw: true, want: FaxCNG, at: 460 * ms, n: 2},
		{name: "CNG 1102 Hz", in: cadence(sine(1102, -12), 500*ms, 3*time.Second), dur: 3 * time.Second, want: FaxCNG, at: 460 * ms, n: 1},
		{name: "CNG 0.44 s", in: upTo(sine(1100, -10), 440*ms), dur: 2 * time.Second, want: FaxCNG, at: 440 * ms, n: 1},
		{name: "CNG 0.42 s", in: cadence(sine(1100, -10), 420*ms, 3*time.Second), dur: 4 * time.Second, want: FaxCNG, at: 440 * ms, n: 2},
		{name: "CNG 0.40 s", in: cadence(sine(1100, -10), 400*ms, 3*time.Second), dur: 8 * time.Second},
		{name: "CNG continuous", in: sine(1100, -10), dur: 5 * time.Second, want: FaxCNG, at: 460 * ms, n: 1},
		{name: "CNG under speech", in: sum(cadence(sine(1100, -10), 500*ms, 3*time.Second), speech(-15)), dur: 4 * time.Second},
		{name: "CED", in: upTo(sine(2100, -12), 3*time.Second), dur: 4 * time.Second, want: FaxCED, at: 2360 * ms, n: 1},
		{name: "CED A-law", in: upTo(sine(2100, -12), 3*time.Second), dur: 4 * time.Second, alaw: true, want: FaxCED, at: 2360 * ms, n: 1},
		{name: "CED 30 ms", in: upTo(sine(2100, -12), 3*time.Second), dur: 4 * time.Second, ptime: 30 * ms, want: FaxCED, at: 2360 * ms, n: 1},
		{name: "CED -35 dBm0", in: sine(2100, -35), dur: 3 * time.Second, want: FaxCED, at: 2360 * ms, n: 1},
		{name: "CED phase reversals", in: phaseReversals(-12), dur: 3300 * ms, want: FaxCED, at: 2360 * ms, n: 1},
		{name: "CED 2.3 s", in: upTo(sine(2100, -12), 2300*ms), dur: 3 * time.Second, want: FaxCED, at: 2340 * ms, n: 1},
		{name: "CED 2.28 s", in: upTo(sine(2100, -12), 2280*ms), dur: 3 * time.Second},
		{name: "CED -45 dBm0", in: sine(2100, -45), dur: 3 * time.Second},
		{name: "2115 Hz (detuned beyond VoIPmonitor's 16 dB)", in: sine(2115, -12), dur: 3 * time.Second},
		{name: "1000 Hz", in: sine(1000, -10), dur: 3 * time.Second},
		{name: "2000 Hz", in: sine(2000, -10), dur: 3 * time.Second},
		{name: "1100 Hz + 2100 Hz", in: sum(sine(1100, -13), sine(2100, -13)), dur: 3 * time.Second},
		{name: "speech", in: speech(-15), dur: 5 * time.Second},
		{name: "loud speech", in: speech(-3), dur: 5 * time.Second},
		{name: "DTMF digits", in: dtmf("0123456789*#ABCD", 100*ms, 100*ms), dur: 3300 * ms},
		{name: "DTMF held", in: dtmf("15", 3*time.Second, 0), dur: 6 * time.Second},
		{name: "silence", in: func(float64) float64 { return 0 }, dur: 3 * time.Second},
		{name: "noise", in: noise(-20, 1), dur: 3 * time.Second},
		{name: "CED in noise 20 dB below", in: sum(sine(2100, -12), noise(-32, 2)), dur: 3 * time.Second, want: FaxCED, at: 2360 * ms, n: 1},
		{name: "CED in noise 10 dB below", in: sum(sine(2100, -12), noise(-22, 3)), dur: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptime := tc.ptime
			if ptime == 0 {
				ptime = 20 * ms
			}
			d := FaxTones{ALaw: tc.alaw}
			first, n := NoFaxTone, 0
			var at time.Duration
			for i, p := range packets(tc.in, tc.dur, ptime, tc.alaw) {
				if got := d.Feed(p); got != NoFaxTone {
					if n == 0 {
						first, at = got, time.Duration(i)*ptime
					}
					n++
				}
			}
			if first != tc.want || n != tc.n {
				t.Fatalf("first %v (of %d) at %v; want %v (of %d)", first, n, at, tc.want, tc.n)
			}
			if n > 0 && (at >= tc.at || at < tc.at-100*ms) {
				t.Errorf("%v reported in the packet at %v, want just before %v", first, at, tc.at)
			}
		})
	}
}

// TestFaxTonesRun: one block without the tone does not end a CED run; a
// Reset (a stream's non-G.711 packet) does.
func TestFaxTonesRun(t *testing.T) {
	ced := packets(sine(2100, -12), 3*time.Second, 20*time.Millisecond, false)
	gap := packets(noise(-10, 4), 20*time.Millisecond, 20*time.Millisecond, false)[0]
	for _, tc := range []struct {
		name string
		at   int // packet replaced or preceded by a Reset
		gap  bool
		want FaxTone
	}{
		{"one noisy packet", 60, true, FaxCED},
		{"reset", 60, false, NoFaxTone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d FaxTones
			got := NoFaxTone
			for i, p := range ced {
				if i == tc.at {
					if !tc.gap {
						d.Reset()
					} else {
						p = gap
					}
				}
				got = max(got, d.Feed(p))
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFaxTonesConstants: the Goertzel coefficients and the share are what
// their comments say.
func TestFaxTonesConstants(t *testing.T) {
	for _, c := range []struct {
		got, want float64
	}{
		{cngCoef, 2 * math.Cos(2*math.Pi*1100/8000)},
		{cedCoef, 2 * math.Cos(2*math.Pi*2100/8000)},
		{faxToneShare, math.Pow(10, 1.6) / (math.Pow(10, 1.6) + 1)},
	} {
		if math.Abs(c.got-c.want) > 1e-6 {
			t.Errorf("constant %v, want %v", c.got, c.want)
		}
	}
}

func TestFaxTonesNoAlloc(t *testing.T) {
	ps := packets(speech(-15), time.Second, 20*time.Millisecond, false)
	var d FaxTones
	i := 0
	if a := testing.AllocsPerRun(1000, func() { d.Feed(ps[i%len(ps)]); i++ }); a != 0 {
		t.Errorf("%v allocations per packet, want 0", a)
	}
}

// BenchmarkFaxTones: one 20 ms G.711 packet through the detector;
// cpu-ns/op is its CPU time (what it costs on a busy machine).
func BenchmarkFaxTones(b *testing.B) {
	ps := packets(speech(-15), time.Second, 20*time.Millisecond, false)
	var d FaxTones
	b.ReportAllocs()
	b.SetBytes(160)
	i := 0
	start := cputime.Process()
	for b.Loop() {
		d.Feed(ps[i%len(ps)])
		i++
	}
	cputime.PerOp(b, start)
}

// refRun is tone_detect's block logic as dsp.cpp states it, with plain
// int counters: the block count grows without bound, and the run's miss
// pairs reset only when a run starts.
type refRun struct{ count, misses, last int }

func (r *refRun) block(hit, want, limit int) bool {
	if r.count > 0 {
		r.count++
	}
	if hit == r.last {
		if hit == 0 {
			if r.misses++; r.misses >= limit {
				r.count = 0
			}
		} else if r.count == 0 {
			r.count, r.misses = 1, 0
		}
	}
	r.last = hit
	return r.count == want
}

// TestToneRunReference: the saturating uint8 counters report a tone at
// exactly the blocks the reference logic does, for random hit sequences
// of both tones' parameters.
func TestToneRunReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, p := range []struct{ want, limit int }{{cngBlocks, cngMisses}, {cedBlocks, cedMisses}} {
		for seq := range 2000 {
			var got toneRun
			var ref refRun
			pHit := r.Float64()
			for i := range 600 {
				hit := r.Float64() < pHit
				h := 0
				if hit {
					h = 1
				}
				if g, w := got.block(hit, uint8(p.want), uint8(p.limit)), ref.block(h, p.want, p.limit); g != w {
					t.Fatalf("want %d limit %d, sequence %d block %d: reported %v, reference %v", p.want, p.limit, seq, i, g, w)
				}
			}
		}
	}
}

// TestFaxTonesSize pins the detector's state, allocated per G.711 stream
// with faxdetect on (the runtime's 32-byte size class).
func TestFaxTonesSize(t *testing.T) {
	if n := unsafe.Sizeof(FaxTones{}); n > 32 {
		t.Errorf("FaxTones is %d bytes, want ≤ 32", n)
	}
}
