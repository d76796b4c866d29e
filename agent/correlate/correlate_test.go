package correlate

import (
	"context"
	"os"
	"testing"

	"pbx-agent/ami"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
)

func sniff(t *testing.T, pcap string, ports string) []Call {
	t.Helper()
	ps, err := sniffer.ParsePorts(ports)
	if err != nil {
		t.Fatal(err)
	}
	var calls []Call
	sn := sniffer.New(sniffer.Config{SIPPorts: ps, Call: call.Config{IdleTimeout: -1,
		OnCallEnd: func(c *call.CDR) { calls = append(calls, FromCDR(c)) }}})
	if err := sn.ReplayFile(context.Background(), pcap, sniffer.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	sn.Flush()
	return calls
}

func track(t *testing.T, recv, sent string) *ami.Tracker {
	t.Helper()
	tr := ami.NewTracker(ami.TrackerConfig{})
	var actions []ami.Message
	if sent != "" {
		f, err := os.Open(sent)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		actions, _ = ami.ReadActions(f)
	}
	f, err := os.Open(recv)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ami.ReplayTranscript(f, actions, tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestRecordedSessions(t *testing.T) {
	type want struct{ callID, uid, linkedid, match string }
	tests := []struct {
		name, pcap, recv, sent, ports string
		want                          []want
	}{
		{name: "answered", pcap: "asterisk-call-answered.pcap", recv: "ami-call-answered.raw", sent: "ami-call-answered.sent.raw", ports: "5060",
			want: []want{{"f431e3956bf2ebd6", "1795560337.9", "1795560337.9", "callid"}, {"63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f", "1795560337.10", "1795560337.9", "callid"}}},
		{name: "cancel", pcap: "asterisk-call-cancel.pcap", recv: "ami-call-cancel.raw", sent: "ami-call-cancel.sent.raw", ports: "5060",
			want: []want{{"77a00298c5a0264f", "1795560238.2", "1795560238.2", "callid"}, {"004f5668-f9f5-4427-8136-c3d8538b6c12", "1795560238.3", "1795560238.2", "time"}}},
		{name: "busy", pcap: "asterisk-call-busy.pcap", recv: "ami-call-busy.raw", ports: "5060",
			want: []want{{"7bc16cac4daffc80", "1795560252.4", "1795560252.4", "callid"}, {"47fd5ff0-153d-4793-98ba-462acac43693", "1795560252.5", "1795560252.4", "time"}}},
	}
	total, matched := 0, 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent := ""
			if tc.sent != "" {
				sent = fixture.Repo(t, "testdata", "ami", tc.sent)
			}
			tr := track(t, fixture.Repo(t, "testdata", "ami", tc.recv), sent)
			calls := sniff(t, fixture.Repo(t, "testdata", "pcap", tc.pcap), tc.ports)
			res := Join(calls, tr, 0)
			total += res.Total
			matched += res.Matched
			if res.Matched != res.Total || res.Total != len(tc.want) {
				t.Errorf("matched %d of %d calls (want %d)", res.Matched, res.Total, len(tc.want))
			}
			for _, w := range tc.want {
				a := res.ByCallID[w.callID]
				if a == nil {
					t.Errorf("%s not correlated", w.callID)
					continue
				}
				if a.Channels[0].Uniqueid != w.uid || a.Linkedid != w.linkedid || a.Match != w.match || len(a.Legs) != 1 {
					t.Errorf("%s: %+v, want uid %s linkedid %s by %s with 1 other leg", w.callID, a, w.uid, w.linkedid, w.match)
				}
			}
		})
	}
	t.Logf("correlated %d of %d sniffed calls", matched, total)
}

// TestSharedSessions runs the recordings that are not copied into testdata.
func TestSharedSessions(t *testing.T) {
	tests := []struct{ name, pcap, recv, sent, ports string }{
		{"chansip-answered", "call-chansip-answered.pcap", "ami-call-chansip-answered.raw", "ami-call-chansip-answered.sent.raw", "5060,5070"},
		{"echo", "call-echo.pcap", "ami-call-echo.raw", "", "5060"},
		{"originate", "call-originate.pcap", "ami-call-originate.raw", "", "5060"},
		{"blind-transfer", "call-blind-transfer.pcap", "ami-call-blind-transfer.raw", "", "5060"},
	}
	total, matched := 0, 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent := ""
			if tc.sent != "" {
				sent = fixture.Shared(t, "asterisk", tc.sent)
			}
			tr := track(t, fixture.Shared(t, "asterisk", tc.recv), sent)
			calls := sniff(t, fixture.Shared(t, "asterisk", tc.pcap), tc.ports)
			res := Join(calls, tr, 0)
			total += res.Total
			matched += res.Matched
			if res.Matched != res.Total || res.Total == 0 {
				t.Errorf("matched %d of %d", res.Matched, res.Total)
			}
			for id, a := range res.ByCallID {
				t.Logf("%s → %s %s linkedid %s by %s, legs %v", id, a.Channels[0].Name, a.Channels[0].Uniqueid, a.Linkedid, a.Match, a.Legs)
			}
		})
	}
	t.Logf("correlated %d of %d sniffed calls", matched, total)
}
