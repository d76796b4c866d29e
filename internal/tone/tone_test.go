package tone

import (
	"math"
	"testing"
)

func TestToneArithmetic(t *testing.T) {
	a := Sine(8000, 0, 8000, 700, 8000)
	b := Sine(8000, 0, 8000, 1300, 80)
	mix := make([]int16, len(a))
	for i := range a {
		mix[i] = a[i] + b[i]
	}
	if d := Over(mix, 8000, 700, 1300); math.Abs(d-40) > 1 {
		t.Errorf("700 Hz over 1300 Hz = %.1f dB, want 40", d)
	}
	if r := RMS(a); math.Abs(r-8000/math.Sqrt2) > 10 {
		t.Errorf("RMS = %.1f, want %.1f", r, 8000/math.Sqrt2)
	}
	shifted := append(make([]int16, 3), a...)
	db, lag := SNR(a, shifted, 5)
	if lag != 3 || db < 90 {
		t.Errorf("SNR = %.1f dB at lag %d, want > 90 at 3", db, lag)
	}
	if db, _ := SNR(a, mix, 0); math.Abs(db-40) > 1 {
		t.Errorf("SNR with a 40 dB lower tone = %.1f", db)
	}
}
