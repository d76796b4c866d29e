package simulate

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/codec"
)

// TestEncodedCodecs: a call generated in each codec names it in the SDP
// (rtpmap, and fmtp where the codec has one),
// sends its payload type with timestamps at the codec's RTP clock, and its
// payloads decode (with the same libraries) to the caller's 700 Hz and the
// callee's 1300 Hz, each ≥ 30 dB over the other.
func TestEncodedCodecs(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo: no encoders")
	}
	for name, ec := range encodedCodecs {
		t.Run(name, func(t *testing.T) {
			pcap, truth := generate(t, Options{Calls: 1, Duration: 2 * time.Second, Codec: name, Tones: [2]float64{700, 1300}})
			c := readCapture(t, pcap)
			sdp := 0
			for _, m := range c.sip {
				if bytes.Contains(m, []byte("application/sdp")) {
					sdp++
					if want := fmt.Sprintf("a=rtpmap:%d %s\r\n", ec.pt, ec.rtpmap); !bytes.Contains(m, []byte(want)) {
						t.Errorf("SDP lacks %q:\n%s", want, m)
					}
					if want := fmt.Sprintf("a=fmtp:%d %s\r\n", ec.pt, ec.fmtp); ec.fmtp != "" && !bytes.Contains(m, []byte(want)) {
						t.Errorf("SDP lacks %q:\n%s", want, m)
					}
				}
			}
			if sdp != 2 || len(truth.Streams) != 2 {
				t.Fatalf("%d SDP bodies, %d streams", sdp, len(truth.Streams))
			}
			ms := 20
			if ec.pt == 4 || ec.name == codec.ILBC {
				ms = 30
			}
			for _, st := range truth.Streams {
				r := c.rtp[st.SSRC]
				if r == nil || r.pt != ec.pt || len(r.payloads) != 2000/ms {
					t.Fatalf("stream %d: %+v", st.Direction, r)
				}
				rate := codec.NativeRate(ec.name)
				if step := r.ts[1] - r.ts[0]; int(step) != ec.clock*ms/1000 {
					t.Errorf("timestamp step %d, want %d", step, ec.clock*ms/1000)
				}
				dec, err := codec.New(ec.name, rate)
				if errors.Is(err, codec.ErrUnsupported) {
					t.Skip(err) // iLBC without libavcodec
				}
				if err != nil {
					t.Fatal(err)
				}
				pcm := make([]int16, codec.MaxSamples)
				var all []int16
				for _, p := range r.payloads {
					n, err := dec.Decode(p, pcm)
					if err != nil {
						t.Fatal(err)
					}
					all = append(all, pcm[:n]...)
				}
				dec.Close()
				want, other := 700.0, 1300.0
				if st.Direction == 1 {
					want, other = other, want
				}
				over := tone.Over(all[rate/5:], float64(rate), want, other)
				t.Logf("%s direction %d: %d samples at %d Hz, %v Hz %.1f dB over %v Hz", name, st.Direction, len(all), rate, want, over, other)
				if over < 30 {
					t.Errorf("direction %d: %v Hz only %.1f dB over %v Hz", st.Direction, want, over, other)
				}
			}
		})
	}
}
