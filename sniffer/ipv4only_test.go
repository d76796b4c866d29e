package sniffer

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
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
			var logs bytes.Buffer // written by the packet path, read once ReplayFile returned
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			sn := New(Config{SIPPorts: ps, IPv4Only: tc.ipv4Only, Workers: tc.workers, Logger: log, Call: call.Config{IdleTimeout: -1,
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
			// The ignored SIP is said once, with what to set.
			want := 0
			if tc.ipv4Only {
				want = 1
			}
			if n := strings.Count(logs.String(), "set ipv6 = yes"); n != want {
				t.Errorf("%d warnings, want %d:\n%s", n, want, logs.String())
			}
		})
	}
}
