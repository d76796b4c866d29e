package player

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/rtp"
)

// TestDashboardRow: a dashboard row renders from the call's Summary: the
// figures of each direction's main stream, the codec of the caller's side
// (the callee's when the caller sent nothing), duration up to the last
// packet, pause state and channels.
func TestDashboardRow(t *testing.T) {
	h := &Handler{o: Options{SensorID: 3}}
	b := rtp.Summary{Src: netip.MustParseAddrPort("10.0.0.2:5000"), Received: 95, Lost: 5, AvgJitter: 2.26, MOSAdapt: 4.14, Payload: 0, Codec: "PCMU", ClockRate: 8000}
	t0 := time.Date(2026, 4, 14, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		cdr  call.CDR
		want string
	}{
		{"callee's stream only, paused", call.CDR{CallRef: 0x2a, CallID: "x@y", Caller: "1001", Called: "1002", CallDate: t0,
			CallEnd: t0.Add(7900 * time.Millisecond), ConnectTime: t0.Add(time.Second),
			Paused: []call.Interval{{Start: t0.Add(2 * time.Second)}}, Streams: []rtp.Summary{b}},
			`{"callref":"0x2a","sensor_id":3,"callid":"x@y","caller":"1001","called":"1002","calldate":"2026-04-14 10:00:00","duration":7,"connected":true,"codec":"G.711u","mos":[0,4.1],"jitter":[0,2.3],"loss":[0,5],"channels":["PJSIP/1001-1"],"paused":true}`},
		{"ringing, no media", call.CDR{CallRef: 1, CallDate: t0, CallEnd: t0.Add(time.Second)},
			`{"callref":"0x1","sensor_id":3,"callid":"","caller":"","called":"","calldate":"2026-04-14 10:00:00","duration":1,"connected":false,"codec":"","mos":[0,0],"jitter":[0,0],"loss":[0,0],"channels":["PJSIP/1001-1"],"paused":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.cdr.Summary(3, t0.Add(time.Minute))
			got, err := json.Marshal(h.row(&s, []string{"PJSIP/1001-1"}))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("row =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
