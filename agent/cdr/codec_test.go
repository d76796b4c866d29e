package cdr

import "testing"

// TestCodecColumns: a_payload, b_payload, payload and cdr_rtp.payload hold
// VoIPmonitor's codec ids: a dynamic payload type is numbered by its SDP
// name and rate (Opus at 48 kHz on PT 111 is 316, Speex on PT 99 is 98),
// a static type is itself (G.722 9, as voipmonitor-ref's call-g722 rows).
func TestCodecColumns(t *testing.T) {
	for _, tc := range []struct {
		pt           [2]int
		name         [2]string
		clock        [2]int
		wantA, wantB int64
	}{
		{[2]int{111, 111}, [2]string{"OPUS", "OPUS"}, [2]int{48000, 48000}, 316, 316},
		{[2]int{9, 9}, [2]string{"G722", "G722"}, [2]int{8000, 8000}, 9, 9},
		{[2]int{3, 3}, [2]string{"GSM", "GSM"}, [2]int{8000, 8000}, 3, 3},
		{[2]int{99, 97}, [2]string{"SPEEX", "ILBC"}, [2]int{16000, 8000}, 98, 97},
		{[2]int{112, 4}, [2]string{"G726-32", "G723"}, [2]int{8000, 8000}, 353, 4},
	} {
		c := sampleCDR(0)
		for i := range 2 {
			s := &c.Streams[i]
			s.Payload, s.Codec, s.ClockRate = tc.pt[i], tc.name[i], tc.clock[i]
		}
		r := cdrRow(c, &lookups{}, rowOptions{idSensor: -1})
		get := func(name string) any {
			for _, cl := range r {
				if cl.name == name {
					return cl.v
				}
			}
			t.Fatalf("no column %s", name)
			return nil
		}
		if a, b, p := get("a_payload"), get("b_payload"), get("payload"); a != tc.wantA || b != tc.wantB || p != tc.wantA {
			t.Errorf("%v: a_payload %v b_payload %v payload %v, want %d %d %d", tc.name, a, b, p, tc.wantA, tc.wantB, tc.wantA)
		}
		for i, rr := range cdrRTPRows(1, c, rowOptions{idSensor: -1}) {
			want := []int64{tc.wantA, tc.wantB}[i]
			for _, cl := range rr {
				if cl.name == "payload" && cl.v != want {
					t.Errorf("%v: cdr_rtp row %d payload %v, want %d", tc.name, i, cl.v, want)
				}
			}
		}
	}
}
