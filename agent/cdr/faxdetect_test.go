package cdr

import (
	"context"
	"io"
	"testing"
	"time"

	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/simulate"
)

// TestFaxDetectPayload: captures through the sniffer to the cdr row. With
// faxdetect, a generated G.711 call carrying CNG (caller, 1100 Hz) or CED
// (callee, 2100 Hz) and the real Asterisk T.30-over-PCMU fax call are
// stored with payload 1001; with it off they keep their codec's payload
// (0 PCMU, 8 PCMA); a call with voice tones keeps its codec's either way;
// the Asterisk T.38 call stays 1000 (UDPTL wins over the tones of its
// G.711 start).
func TestFaxDetectPayload(t *testing.T) {
	gen := func(name string, tones [2]float64, codec string) string {
		return fixture.File(t, name+".pcap", func(w io.Writer) error {
			_, err := simulate.WritePcap(context.Background(), w, simulate.Options{Calls: 2, Duration: 4 * time.Second, Tones: tones, Codec: codec, Seed: 5})
			return err
		})
	}
	cng := gen("cng", [2]float64{1100, 400}, simulate.CodecPCMU)
	ced := gen("ced", [2]float64{400, 2100}, simulate.CodecPCMA)
	voice := gen("voice", [2]float64{400, 1000}, simulate.CodecPCMU)
	g711 := fixture.Repo(t, "testdata", "pcap", "asterisk-fax-g711.pcap")
	t38 := fixture.Repo(t, "testdata", "pcap", "asterisk-fax-t38.pcap")
	for _, tc := range []struct {
		name      string
		path      string
		faxDetect bool
		want      int64
	}{
		{"CNG", cng, true, PayloadT30},
		{"CNG off", cng, false, 0},
		{"CED", ced, true, PayloadT30},
		{"CED off", ced, false, 8},
		{"voice", voice, true, 0},
		{"asterisk g711", g711, true, PayloadT30},
		{"asterisk g711 off", g711, false, 0},
		{"asterisk t38", t38, true, PayloadT38},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cdrs []*call.CDR
			sn := sniffer.New(sniffer.Config{FaxDetect: tc.faxDetect, Call: call.Config{IdleTimeout: -1,
				OnCallEnd: func(c *call.CDR) { cdrs = append(cdrs, c) }}})
			if err := sn.ReplayFile(t.Context(), tc.path, sniffer.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			sn.Flush()
			if len(cdrs) == 0 {
				t.Fatal("no CDRs")
			}
			for _, c := range cdrs {
				r := cdrRow(c, &lookups{}, rowOptions{idSensor: -1})
				if v, _ := colValue(r, "payload"); v != tc.want {
					t.Errorf("%s: payload %v, want %d", c.CallID, v, tc.want)
				}
			}
		})
	}
}
