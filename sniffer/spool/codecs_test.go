package spool_test

import (
	"testing"
	"time"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/spool"
)

// TestCodecCallWAVTones: real Asterisk calls in G.722 and GSM (Alice
// 700 Hz calls Bob 1300 Hz) are written as WAVs and as Ogg/Opus at the
// codec's native rate (G.722 16 kHz) with the caller's tone on the left
// and the callee's on the right, each ≥ 30 dB over the other, on both
// legs, and so is each leg's spooled RTP pcap rendered on demand. The cut
// G.722 call in testdata always runs; the whole G.722 and GSM recordings
// run when ../shared is there.
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
			pcap := tc.path(t)
			for _, format := range []string{"wav", "ogg"} {
				dir := t.TempDir()
				cfg := fullConfig(dir)
				cfg.SaveAudio = format
				res := replay(t, pcap, cfg, nil)
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
					path := func(typ, ext string) string {
						return spool.Path(dir, cdr.CallDate, time.UTC, typ, spool.FBasename(id), ext)
					}
					pcm, rate := audioFile(t, path(spool.TypeAudio, format))
					checkTones(t, tc.name+" "+format+" "+id, pcm, rate, tc.rate)
					if format == "wav" {
						w := renderSpooled(t, path)
						checkTones(t, tc.name+" rendered from RTP "+id, w.samples, w.rate, tc.rate)
					}
				}
			}
		})
	}
}

// checkTones: stereo PCM at rate (want: the native rate) has the caller's
// 700 Hz left and the callee's 1300 Hz right, each ≥ 30 dB over the other.
func checkTones(t *testing.T, what string, pcm []int16, rate, want int) {
	t.Helper()
	l, r := tone.Split(pcm)
	left, right := tone.Over(l, float64(rate), 700, 1300), tone.Over(r, float64(rate), 1300, 700)
	t.Logf("%s: %d Hz, %.2f s, left 700 Hz %.1f dB over 1300 Hz (RMS %.0f), right 1300 Hz %.1f dB over 700 Hz (RMS %.0f)",
		what, rate, float64(len(l))/float64(rate), left, tone.RMS(l), right, tone.RMS(r))
	if rate != want || left < 30 || right < 30 {
		t.Errorf("%s: %d Hz (want %d), separation left %.1f dB, right %.1f dB; want ≥ 30", what, rate, want, left, right)
	}
}
