package spool_test

import (
	"context"
	"math"
	"testing"
	"time"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/spool"
)

// toneRMS is the RMS of the generator's -10 dBFS tones.
var toneRMS = 32767 * math.Pow(10, -10.0/20) / math.Sqrt2

// TestJoinMidCall pins issue 19's mid-call join: with saveaudio off, a
// listener subscribing at the 100th RTP packet of a generated G.723.1,
// Speex, iLBC or GSM call (and, as before, of a PCMU one) hears the
// caller's 700 Hz on the left and the callee's 1300 Hz on the right, each
// ≥ 30 dB over the other, within 6 dB of the tones sent. The G.723.1,
// Speex, iLBC and GSM decoders do not settle when started mid-stream, so
// the spool decodes such calls from their first packet; the others still
// start at the first listener.
func TestJoinMidCall(t *testing.T) {
	for _, tc := range []struct {
		codec   string
		early   bool // decoded before anybody listens
		needsAV bool
	}{
		{simulate.CodecG723, true, true},
		{simulate.CodecSpeex, true, false},
		{simulate.CodecSpeexWB, true, false},
		{simulate.CodecILBC, true, true},
		{simulate.CodecGSM, true, false},
		{simulate.CodecPCMU, false, false},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			name := codec.G723 // libavcodec's
			if !tc.needsAV {
				name = codec.Speex
			}
			d, err := codec.New(name, 8000)
			if err != nil {
				t.Skip("not in this build:", err)
			}
			d.Close()
			o := simulate.Options{Calls: 1, Duration: 6 * time.Second, Codec: tc.codec, Seed: 7, Tones: [2]float64{700, 1300}}
			cfg := fullConfig(t.TempDir())
			cfg.SaveAudio = "no"
			var sub *audio.Subscription
			var left, right []int16
			rate := 0
			decodedBefore := false
			res := replayEach(t, newGenerator(t, o), "5060", cfg, nil, func(sn *sniffer.Sniffer, sp *spool.Spool) {
				if sub != nil {
					for drained := false; !drained; {
						select {
						case f := <-sub.Frames():
							left, right, rate = append(left, f.Caller...), append(right, f.Callee...), f.Rate
						default:
							drained = true
						}
					}
					return
				}
				if sp.Stats().RTPPackets < 100 {
					return
				}
				active := sn.Table().Active()
				if len(active) != 1 {
					t.Fatalf("%d active calls, want 1", len(active))
				}
				ref := active[0].CallRef
				_, decodedBefore = sp.AudioStats(ref)
				s, err := sp.Subscribe(context.Background(), ref, 1000)
				if err != nil {
					t.Fatal(err)
				}
				sub = s
			})
			if sub == nil {
				t.Fatalf("never joined (%d RTP packets)", res.stats.RTPPackets)
			}
			if decodedBefore != tc.early {
				t.Errorf("decoded before the listener joined: %v, want %v", decodedBefore, tc.early)
			}
			l, r := tone.Over(left, float64(rate), 700, 1300), tone.Over(right, float64(rate), 1300, 700)
			t.Logf("%s joined at RTP packet 100: %.2f s heard, left 700 Hz %.1f dB over 1300 Hz (RMS %.0f), right 1300 Hz %.1f dB over 700 Hz (RMS %.0f)",
				tc.codec, float64(len(left))/float64(max(rate, 1)), l, tone.RMS(left), r, tone.RMS(right))
			if len(left) < rate || l < 30 || r < 30 {
				t.Errorf("%d samples, left %.1f dB, right %.1f dB; want ≥ 1 s and ≥ 30 dB each", len(left), l, r)
			}
			if rl, rr := tone.RMS(left), tone.RMS(right); rl > 2*toneRMS || rr > 2*toneRMS || rl < toneRMS/2 || rr < toneRMS/2 {
				t.Errorf("RMS %.0f / %.0f: not within 6 dB of the generator's tones (%.0f)", rl, rr, toneRMS)
			}
		})
	}
}
