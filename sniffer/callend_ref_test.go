package sniffer

import (
	"path/filepath"
	"testing"
	"time"

	"pbx-agent/sniffer/fixture"
)

// TestCancelRetransmissionsEndTheCall: aaa.pcap's 105090259-446faf7a got a
// 408 to its INVITE at 09:41:25.96; its CANCEL, retransmitted every 4 s,
// kept the call open until the 408 to the CANCEL at 09:41:56.279, the
// callend VoIPmonitor 2026.04.0 wrote (duration 67.09 s). The agent ended
// it 5 s after the 408 (09:41:30.856, the last CANCEL within that grace).
func TestCancelRetransmissionsEndTheCall(t *testing.T) {
	calls, _, _ := replay(t, captureCase{filepath.Join(fixture.Shared(t, "public"), "aaa.pcap"), "5060"})
	for _, c := range calls {
		if c.CallID != "105090259-446faf7a@192.168.1.2" {
			continue
		}
		if got, want := c.CallEnd.UTC().Round(time.Millisecond).Format("15:04:05.000"), "09:41:56.279"; got != want {
			t.Errorf("callend %s, want %s", got, want)
		}
		if got, want := c.CallEnd.Sub(c.CallDate).Round(time.Millisecond), 67090*time.Millisecond; got != want {
			t.Errorf("duration %v, want %v", got, want)
		}
		return
	}
	t.Fatal("no CDR for 105090259-446faf7a@192.168.1.2")
}
