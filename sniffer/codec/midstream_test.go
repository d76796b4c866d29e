package codec

import (
	"math"
	"testing"

	"pbx-agent/internal/tone"
)

// TestMidStreamStart pins which decoders NeedsHistory names: decoders
// started cold at several packets into a 700 Hz stream are compared, over
// the stream's last second (at least 1 s after they started), with one
// that decoded it from the first packet. A codec settles when every late
// decoder keeps 700 Hz ≥ 30 dB over 1300 Hz and its level within 3 dB of
// the early one; NeedsHistory must be true for those that do not (iLBC
// settles at these packets but not at every join, so NeedsHistory names it
// too). GSM started cold on a steady tone stays 9–22 dB quieter, the tone
// clean: a listener would hear one side of the call far too quiet.
func TestMidStreamStart(t *testing.T) {
	for _, name := range tested {
		t.Run(name, func(t *testing.T) {
			need(t, name)
			ps := encodeTone(t, name, 700, 4)
			rate := NativeRate(decName(name))
			perSec := 1000 / frameMs(name)
			tail := func(from int) []int16 {
				d, err := New(decName(name), rate)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				pcm := decodeAll(t, d, ps[from:])
				return pcm[len(pcm)-rate:]
			}
			early := tail(0)
			settles := true
			for _, k := range []int{1, 10, 17, 33, 50} {
				if len(ps)-k < 2*perSec {
					continue
				}
				late := tail(k)
				sep := tone.Over(late, float64(rate), 700, 1300)
				gain := 20 * math.Log10(tone.RMS(late)/tone.RMS(early))
				settles = settles && sep >= 30 && math.Abs(gain) <= 3
				t.Logf("%s started at packet %d: 700 Hz %.1f dB over 1300 Hz, level %+.1f dB against the decoder started at packet 0 (RMS %.0f / %.0f)",
					name, k, sep, gain, tone.RMS(late), tone.RMS(early))
			}
			if !settles && !NeedsHistory(decName(name)) {
				t.Errorf("%s: settles from a cold start = %v, but NeedsHistory = %v", name, settles, NeedsHistory(decName(name)))
			}
		})
	}
}
