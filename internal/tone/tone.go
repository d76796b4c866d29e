// Package tone measures test tones in PCM: the power of one frequency
// (Goertzel), how far one tone stands above another, sine generation and
// the signal-to-noise ratio of a decoder's output against a reference
// after alignment. Tests of the decoders, the spool's WAV files and the
// live player use it as their referee arithmetic.
package tone

import "math"

// Power is the Goertzel power of frequency hz in s sampled at rate.
func Power(s []int16, rate, hz float64) float64 {
	w := 2 * math.Pi * hz / rate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range s {
		s0 := float64(x) + c*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// Over is how many dB the tone want stands above the tone other in s
// (+Inf when other is absent and want present).
func Over(s []int16, rate, want, other float64) float64 {
	return 10 * math.Log10(Power(s, rate, want)/Power(s, rate, other))
}

// Purity is how many dB a tone of frequency hz stands above everything
// else in s (noise, distortion, other tones), whatever its phase and
// delay: s should hold a whole number of the tone's cycles.
func Purity(s []int16, rate, hz float64) float64 {
	var total float64
	for _, v := range s {
		total += float64(v) * float64(v)
	}
	tone := 2 * Power(s, rate, hz) / float64(len(s))
	return 10 * math.Log10(tone/max(total-tone, 1e-9))
}

// Sine returns n samples of a sine of frequency hz and peak amplitude amp
// at rate, starting at phase 0 of sample first.
func Sine(n, first int, rate, hz, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(amp * math.Sin(2*math.Pi*hz*float64(first+i)/rate))
	}
	return s
}

// RMS is the root mean square of s.
func RMS(s []int16) float64 {
	if len(s) == 0 {
		return 0
	}
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

// SNR is the ratio in dB of ref's energy to the energy of got-ref, with
// got shifted by the lag in [-maxLag, maxLag] that fits best, over the
// overlap; it also returns that lag.
func SNR(ref, got []int16, maxLag int) (db float64, lag int) {
	best := math.Inf(-1)
	for l := -maxLag; l <= maxLag; l++ {
		var sig, noise float64
		for i := range ref {
			j := i + l
			if j < 0 || j >= len(got) {
				continue
			}
			r, g := float64(ref[i]), float64(got[j])
			sig += r * r
			noise += (g - r) * (g - r)
		}
		if sig == 0 {
			continue
		}
		d := 10 * math.Log10(sig/math.Max(noise, 1e-9))
		if d > best {
			best, lag = d, l
		}
	}
	return best, lag
}
