package ami

import (
	"os"
	"path/filepath"
	"testing"

	"pbx-agent/sniffer/fixture"
)

// recorded gives, per recorded session, the channels the README of
// shared/fixtures/asterisk says the call had.
type wantChan struct {
	uid, linkedid, name, callID string
	cause                       int
	recorded                    bool // MixMonitorStart seen on it
}

func replayFile(t *testing.T, recv, sent string) *Tracker {
	t.Helper()
	var actions []Message
	if sent != "" {
		f, err := os.Open(sent)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if actions, err = ReadActions(f); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(recv)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := NewTracker(TrackerConfig{})
	st, err := ReplayTranscript(f, actions, tr)
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 0 || st.Events == 0 {
		t.Fatalf("stats %+v", st)
	}
	return tr
}

func TestTrackerRecordedCalls(t *testing.T) {
	shared := func(n string) func(testing.TB) string {
		return func(tb testing.TB) string { return fixture.Shared(tb, "asterisk", n) }
	}
	local := func(n string) func(testing.TB) string {
		return func(tb testing.TB) string { return fixture.Repo(tb, "testdata", "ami", n) }
	}
	tests := []struct {
		name string
		recv func(testing.TB) string
		sent func(testing.TB) string
		want []wantChan
	}{
		{name: "answered", recv: local("ami-call-answered.raw"), sent: local("ami-call-answered.sent.raw"),
			want: []wantChan{
				{"1795560337.9", "1795560337.9", "PJSIP/1001-00000009", "f431e3956bf2ebd6", 16, true},
				{"1795560337.10", "1795560337.9", "PJSIP/1002-0000000a", "63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f", 16, false},
			}},
		{name: "cancel", recv: local("ami-call-cancel.raw"), sent: local("ami-call-cancel.sent.raw"),
			want: []wantChan{
				{"1795560238.2", "1795560238.2", "PJSIP/1001-00000002", "77a00298c5a0264f", 127, true},
				// The callee's Call-ID appears nowhere in an unanswered call's events.
				{"1795560238.3", "1795560238.2", "PJSIP/1002-00000003", "", 127, false},
			}},
		{name: "busy", recv: local("ami-call-busy.raw"), sent: func(testing.TB) string { return "" },
			want: []wantChan{
				{"1795560252.4", "1795560252.4", "PJSIP/1001-00000004", "7bc16cac4daffc80", 17, true},
				{"1795560252.5", "1795560252.4", "PJSIP/1002-00000005", "", 17, false},
			}},
		{name: "chansip", recv: shared("ami-call-chansip-answered.raw"), sent: shared("ami-call-chansip-answered.sent.raw"),
			want: []wantChan{
				{"1795560358.11", "1795560358.11", "SIP/2001-00000000", "ffbbeeeed32e28a8", 16, true},
				{"1795560358.12", "1795560358.11", "SIP/2002-00000001", "7db64ed25bd5ce9d12f098cf58d9e182@127.0.0.1:5070", 16, false},
			}},
		// Extension 600 sets no CALLID and the events session sent no Getvar.
		{name: "echo", recv: shared("ami-call-echo.raw"), sent: func(testing.TB) string { return "" },
			want: []wantChan{{"1795560303.8", "1795560303.8", "PJSIP/1001-00000008", "", 0, true}}},
		{name: "blind transfer", recv: shared("ami-call-blind-transfer.raw"), sent: func(testing.TB) string { return "" },
			want: []wantChan{
				{"1795560694.1", "1795560694.0", "PJSIP/1002-00000001", "4c14f56b-0636-4ae0-8979-4b3c8a93188f", 16, false},
				{"1795560700.2", "1795560694.0", "PJSIP/1003-00000002", "6b2038a6-6cab-40eb-9e9f-5d2d5bf4c960", 16, false},
				{"1795560694.0", "1795560694.0", "PJSIP/1001-00000000", "26f2c4db2e2e9454", 16, true},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := replayFile(t, tc.recv(t), tc.sent(t))
			if live := tr.Channels(); len(live) != 0 {
				t.Errorf("channels still live after the recording: %+v", live)
			}
			ended := tr.Ended()
			if len(ended) != len(tc.want) {
				t.Fatalf("ended %d channels, want %d: %+v", len(ended), len(tc.want), ended)
			}
			for _, w := range tc.want {
				c, ok := tr.Channel(w.uid)
				if !ok {
					t.Errorf("%s missing", w.uid)
					continue
				}
				if c.Linkedid != w.linkedid || c.Name != w.name || c.CallID != w.callID || !c.HungUp {
					t.Errorf("%s: got linkedid %q name %q callid %q (%s) hungup %v; want %q %q %q",
						w.uid, c.Linkedid, c.Name, c.CallID, c.CallIDSource, c.HungUp, w.linkedid, w.name, w.callID)
				}
				if w.cause != 0 && c.Cause != w.cause {
					t.Errorf("%s: cause %d, want %d", w.uid, c.Cause, w.cause)
				}
			}
		})
	}
}

func TestTrackerMidCallState(t *testing.T) {
	// Stop the answered call right after both legs entered the bridge.
	data, err := os.ReadFile(filepath.Join("..", "testdata", "ami", "ami-call-answered.raw"))
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(Limits{})
	p.Write(data)
	tr := NewTracker(TrackerConfig{})
	enters := 0
	var wants []Want
	for enters < 2 {
		m, err := p.Next()
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind() == KindEvent && m.ActionID() == "" {
			wants = append(wants, tr.Event(m)...)
			if m.Event() == "BridgeEnter" {
				enters++
			}
		}
	}
	got := tr.Channels()
	if len(got) != 2 {
		t.Fatalf("live = %+v", got)
	}
	for _, c := range got {
		if c.State != 6 || c.StateDesc != "Up" || c.BridgeID == "" || c.Linkedid != "1795560337.9" {
			t.Errorf("%s: %+v", c.Name, c)
		}
	}
	if !got[0].Recording || got[1].Recording {
		t.Errorf("MixMonitor flag: caller %v callee %v", got[0].Recording, got[1].Recording)
	}
	if len(wants) != 2 || wants[0].Variable != "CHANNEL(pjsip,call-id)" {
		t.Errorf("wants = %+v", wants)
	}
}

// TestChannelMute: MixMonitorMute's Direction mutes one side ("read",
// "write", any case) or both (anything else).
func TestChannelMute(t *testing.T) {
	for dir, want := range map[string][2]bool{"read": {true, false}, "Write": {false, true}, "both": {true, true}, "": {true, true}} {
		var c Channel
		c.mute(dir, true)
		if got := [2]bool{c.MutedRead, c.MutedWrite}; got != want {
			t.Errorf("mute(%q): read, write = %v, want %v", dir, got, want)
		}
		c.mute(dir, false)
		if c.MutedRead || c.MutedWrite {
			t.Errorf("mute(%q) off left %+v", dir, c)
		}
	}
}
