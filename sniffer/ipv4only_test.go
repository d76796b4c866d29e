package sniffer

import (
	"path/filepath"
	"sync"
	"testing"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
)

// TestIPv4Only: sip_ipv6_udp.pcap gives its one call when IPv6 is read and
// nothing with IPv4Only (ipv6 = no), as VoIPmonitor's runs of it
// (voipmonitor-ref: sip_ipv6_udp.pcap.json and .ipv4mode.json), with and
// without media workers; the ignored packets are counted.
func TestIPv4Only(t *testing.T) {
	path := filepath.Join(fixture.Shared(t, "public"), "sip_ipv6_udp.pcap")
	for _, tc := range []struct {
		name     string
		ipv4Only bool
		workers  int
		wantCDRs int
	}{
		{"IPv6 read", false, 1, 1},
		{"IPv4 only", true, 1, 0},
		{"IPv4 only, workers", true, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			ps, _ := ParsePorts("5060")
			sn := New(Config{SIPPorts: ps, IPv4Only: tc.ipv4Only, Workers: tc.workers, Call: call.Config{IdleTimeout: -1,
				OnCallEnd: func(*call.CDR) { mu.Lock(); n++; mu.Unlock() }}})
			if err := sn.ReplayFile(t.Context(), path, RunOptions{}); err != nil {
				t.Fatal(err)
			}
			sn.Flush()
			st := sn.Stats()
			mu.Lock()
			defer mu.Unlock()
			if n != tc.wantCDRs {
				t.Errorf("%d CDRs, want %d", n, tc.wantCDRs)
			}
			if ignored := st.IPv6Ignored > 0; ignored != tc.ipv4Only || tc.ipv4Only && st.SIP != 0 {
				t.Errorf("IPv6Ignored = %d, SIP = %d", st.IPv6Ignored, st.SIP)
			}
		})
	}
}
