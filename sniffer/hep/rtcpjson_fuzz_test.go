package hep_test

import (
	"testing"

	"pbx-agent/sniffer/hep"
	"pbx-agent/sniffer/rtp"
)

// FuzzRTCPJSON: any input parses or fails with ErrRTCPJSON, never panics;
// the blocks of what parses survive a trip through AppendRTCPJSON.
func FuzzRTCPJSON(f *testing.F) {
	f.Add([]byte(`{"ssrc":"1","report_blocks":[{"source_ssrc":2,"lsr":"3"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r, back hep.RTCPReport
		if r.Parse(b) != nil {
			return
		}
		var rr [8]rtp.ReceptionReport
		n := r.Blocks(rr[:])
		c := rtp.Compound{NReports: n}
		for i := range n {
			rr[i].Reporter = rr[0].Reporter
			c.Reports[i] = rr[i]
		}
		if n == 0 {
			return
		}
		js := hep.AppendRTCPJSON(nil, &c)
		if err := back.Parse(js); err != nil {
			t.Fatalf("own JSON %s does not parse: %v", js, err)
		}
		var got [8]rtp.ReceptionReport
		if m := back.Blocks(got[:]); m != n || got[0] != rr[0] {
			t.Fatalf("round trip: %d blocks %+v, want %d %+v", m, got[0], n, rr[0])
		}
	})
}
