package spool_test

import (
	"path/filepath"
	"testing"
	"time"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/spool"
)

// TestCodecCallWAVTones: real Asterisk calls in G.722 and GSM (Alice
// 700 Hz calls Bob 1300 Hz) are written as WAVs with the caller's tone on
// the left and the callee's on the right, each ≥ 30 dB over the other, on
// both legs. The cut G.722 call in testdata always runs; the whole G.722
// and GSM recordings run when ../shared is there.
func TestCodecCallWAVTones(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo: G.722 and GSM play as silence")
	}
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string
		legs []string
		rate int // the codec's native rate
	}{
		{"g722-cut", func(t *testing.T) string { return fixture.Repo(t, "testdata", "pcap", "asterisk-call-g722-cut.pcap") },
			[]string{"4dd294e527573a03", "9c0e4c3e-5eb4-4881-a671-d9c5c3fcdfff"}, 16000},
		{"g722", func(t *testing.T) string { return fixture.Shared(t, "asterisk-more", "call-g722.pcap") },
			[]string{"4dd294e527573a03", "9c0e4c3e-5eb4-4881-a671-d9c5c3fcdfff"}, 16000},
		{"gsm", func(t *testing.T) string { return fixture.Shared(t, "asterisk-more", "call-gsm.pcap") }, nil, 8000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			res := replay(t, tc.path(t), fullConfig(dir), nil)
			legs := tc.legs
			if legs == nil {
				for id, c := range res.cdrs {
					if !c.ConnectTime.IsZero() {
						legs = append(legs, id)
					}
				}
			}
			if len(legs) != 2 {
				t.Fatalf("%d answered legs, want 2", len(legs))
			}
			for _, id := range legs {
				cdr := res.cdrs[id]
				if cdr == nil {
					t.Fatalf("no CDR for %s", id)
				}
				w := readWAV(t, spool.Path(dir, cdr.CallDate, time.UTC, spool.TypeAudio, spool.FBasename(id), "wav"))
				if w.channels != 2 || w.rate != tc.rate {
					t.Fatalf("%s: %d channels at %d Hz, want 2 at %d Hz", id, w.channels, w.rate, tc.rate)
				}
				var l, r []int16
				for i := 0; i+1 < len(w.samples); i += 2 {
					l, r = append(l, w.samples[i]), append(r, w.samples[i+1])
				}
				left, right := tone.Over(l, float64(w.rate), 700, 1300), tone.Over(r, float64(w.rate), 1300, 700)
				t.Logf("%s %s: %v, left 700 Hz %.1f dB over 1300 Hz (RMS %.0f), right 1300 Hz %.1f dB over 700 Hz (RMS %.0f)",
					filepath.Base(tc.name), id, w.duration(), left, tone.RMS(l), right, tone.RMS(r))
				if left < 30 || right < 30 {
					t.Errorf("%s: separation left %.1f dB, right %.1f dB; want ≥ 30", id, left, right)
				}
			}
		})
	}
}
