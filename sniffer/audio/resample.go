package audio

import (
	"math"
	"sync"
)

// Resampler converts one channel of 16-bit PCM from one rate to another by
// a rational factor L/M (up by L, low-pass, down by M) with a polyphase
// Kaiser-windowed sinc filter: 32 taps per phase at the lower of the two
// rates, pass band to 0.45 of it, about 70 dB of stop-band attenuation.
// It keeps its history between calls, so consecutive chunks (20 ms
// frames, RTP packets) join without clicks; its delay is half the filter
// (16 samples at the lower rate: 2 ms at 8 kHz).
//
// It is written here rather than taken from libsoxr or speexdsp because it
// runs on the live path of builds without cgo too and allocates nothing per
// chunk. Not safe for concurrent use.
type Resampler struct {
	from, to int
	l, m     int
	taps     int
	coef     []float32 // l phases × taps, each phase's taps oldest first
	hist     []float32 // 2 × taps: the last taps inputs, stored twice
	w        int       // newest input is hist[w+taps]
	u        int       // next output's phase in the upsampled stream
}

type filterKey struct{ l, m int }

var (
	filterMu sync.Mutex
	filters  = map[filterKey][]float32{}
)

const halfTaps = 16 // zero crossings of the filter kernel on each side, at the lower rate

// NewResampler returns a resampler from rate from to rate to (Hz, both
// positive). Equal rates copy.
func NewResampler(from, to int) *Resampler {
	g := gcd(from, to)
	r := &Resampler{from: from, to: to, l: to / g, m: from / g}
	r.taps = 2 * halfTaps * max(r.l, r.m) / r.l
	r.coef = kernel(r.l, r.m, r.taps)
	r.hist = make([]float32, 2*r.taps)
	return r
}

// From and To are the resampler's rates.
func (r *Resampler) From() int { return r.from }
func (r *Resampler) To() int   { return r.to }

// Reset forgets the history (a new stream).
func (r *Resampler) Reset() {
	clear(r.hist)
	r.w, r.u = 0, 0
}

// OutLen is how many samples the next Process of n inputs writes.
func (r *Resampler) OutLen(n int) int {
	if r.l == r.m {
		return n
	}
	// Outputs are the u < L steps taken per input: u, u+M, … while < n·L.
	if r.u >= n*r.l {
		return 0
	}
	return (n*r.l-r.u-1)/r.m + 1
}

// Process resamples src into dst and returns the samples written (OutLen
// of len(src)); dst must hold them.
func (r *Resampler) Process(dst, src []int16) int {
	if r.l == r.m {
		return copy(dst, src)
	}
	k, taps := 0, r.taps
	for _, x := range src {
		r.w++
		if r.w == taps {
			r.w = 0
		}
		r.hist[r.w] = float32(x)
		r.hist[r.w+taps] = float32(x)
		win := r.hist[r.w+1 : r.w+1+taps]
		for r.u < r.l {
			c := r.coef[r.u*taps : (r.u+1)*taps]
			dst[k] = int16(max(min(math.Round(float64(dot(c, win))), 32767), -32768))
			k++
			r.u += r.m
		}
		r.u -= r.l
	}
	return k
}

// dot is the dot product of two slices of the same length (a multiple of
// 4: taps are 32 × a factor), four running sums for the pipeline.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	for i := 0; i+3 < len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	return (s0 + s1) + (s2 + s3)
}

// kernel returns the polyphase filter for up-by-l, down-by-m: phase p's
// taps, oldest input first, with a gain of l.
func kernel(l, m, taps int) []float32 {
	key := filterKey{l, m}
	filterMu.Lock()
	defer filterMu.Unlock()
	if c, ok := filters[key]; ok {
		return c
	}
	n := l * taps
	fc := 0.45 / float64(max(l, m)) // cycles per sample of the upsampled stream
	const beta = 6.8                // Kaiser β for about 70 dB
	centre := float64(n-1) / 2
	proto := make([]float64, n)
	var sum float64
	for i := range proto {
		x := float64(i) - centre
		s := 2 * fc
		if x != 0 {
			s = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		t := 2*float64(i)/float64(n-1) - 1
		proto[i] = s * bessel0(beta*math.Sqrt(max(0, 1-t*t))) / bessel0(beta)
		sum += proto[i]
	}
	c := make([]float32, n)
	for p := 0; p < l; p++ {
		for k := 0; k < taps; k++ {
			// Output at upsampled index u uses input i0-k with proto[p+k·l];
			// stored oldest first.
			c[p*taps+taps-1-k] = float32(proto[p+k*l] * float64(l) / sum)
		}
	}
	filters[key] = c
	return c
}

// bessel0 is the modified Bessel function I0 (its power series).
func bessel0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / 2) / float64(k)
		sum += term * term
		if term*term < sum*1e-12 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Converter hands out frames at one rate: a consumer that needs a fixed
// rate (VoIPmonitor's 8 kHz listen, a listener that asked for less than
// the call's rate, a WAV file begun at a lower rate) passes every frame of
// one call through its own Converter, which keeps the resamplers' history
// from frame to frame.
type Converter struct {
	rate int
	rs   [2]*Resampler
	f    Frame
}

// NewConverter returns a converter to rate.
func NewConverter(rate int) *Converter { return &Converter{rate: rate} }

// Rate is the rate Convert returns.
func (c *Converter) Rate() int { return c.rate }

// Convert returns f at the converter's rate: f itself when it already is,
// else a frame owned by the converter, valid until the next Convert.
func (c *Converter) Convert(f *Frame) *Frame {
	if f.Rate == c.rate || f.Rate <= 0 {
		return f
	}
	if c.rs[0] == nil || c.rs[0].From() != f.Rate {
		c.rs[0], c.rs[1] = NewResampler(f.Rate, c.rate), NewResampler(f.Rate, c.rate)
	}
	c.f.Reset(c.rate)
	c.f.Index, c.f.Time = f.Index, f.Time
	n := c.rs[0].Process(c.f.Caller, f.Caller)
	c.rs[1].Process(c.f.Callee, f.Callee)
	c.f.Caller, c.f.Callee = c.f.Caller[:n], c.f.Callee[:n]
	return &c.f
}
