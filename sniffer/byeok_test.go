package sniffer

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
)

// TestIgnoreRTPAfterByeOK: the baresip phone's last RTP packet comes after
// the 200 OK to the BYE in each of these real Asterisk calls (call-queue
// frames 1255 and 1259 after 1254 and 1257, hep-tls frame 2513 after 2512,
// blind-transfer frame 2063 after 2062). With IgnoreRTPAfterByeOK (the
// agent's ignore_rtp_after_bye_confirmed = yes) the stream counts what the
// real VoIPmonitor 2026.04.0 wrote in cdr_rtp.received; without it, every
// packet, as tshark's rtp,streams. Every other stream is the same either way.
func TestIgnoreRTPAfterByeOK(t *testing.T) {
	type stream struct {
		src, dst string
		on, off  int // packets with and without the option
	}
	for _, tc := range []struct {
		name    string
		path    func(testing.TB) string
		streams []stream
	}{
		{"hep-tls", func(t testing.TB) string { return fixture.Repo(t, "testdata", "pcap", "asterisk-call-hep-tls.pcap") },
			[]stream{{"127.0.0.1:20194", "127.0.0.1:10156", 610, 611}, {"127.0.0.1:10156", "127.0.0.1:20194", 605, 605}}},
		{"queue", func(t testing.TB) string { return fixture.Shared(t, "asterisk-more", "call-queue.pcap") },
			[]stream{{"127.0.0.1:20088", "127.0.0.1:10120", 304, 305}, {"127.0.0.1:20170", "127.0.0.1:10072", 309, 310},
				{"127.0.0.1:10120", "127.0.0.1:20088", 308, 308}, {"127.0.0.1:10072", "127.0.0.1:20170", 304, 304}}},
		{"blind-transfer", func(t testing.TB) string { return fixture.Shared(t, "asterisk", "call-blind-transfer.pcap") },
			[]stream{{"127.0.0.1:20094", "127.0.0.1:10036", 552, 553}}},
	} {
		for _, on := range []bool{true, false} {
			for _, workers := range []int{1, 2} {
				t.Run(fmt.Sprintf("%s/on=%v/workers=%d", tc.name, on, workers), func(t *testing.T) {
					path := tc.path(t)
					var mu sync.Mutex
					got := map[[2]netip.AddrPort]int{}
					ps, _ := ParsePorts("5060")
					sn := New(Config{SIPPorts: ps, IgnoreRTPAfterByeOK: on, Workers: workers, Call: call.Config{IdleTimeout: -1,
						OnCallEnd: func(c *call.CDR) {
							mu.Lock()
							defer mu.Unlock()
							for _, s := range c.Streams {
								got[[2]netip.AddrPort{s.Src, s.Dst}] += s.Received
							}
						}}})
					if err := sn.ReplayFile(t.Context(), path, RunOptions{}); err != nil {
						t.Fatal(err)
					}
					sn.Flush()
					mu.Lock()
					defer mu.Unlock()
					for _, w := range tc.streams {
						want := w.off
						if on {
							want = w.on
						}
						k := [2]netip.AddrPort{netip.MustParseAddrPort(w.src), netip.MustParseAddrPort(w.dst)}
						if got[k] != want {
							t.Errorf("%s → %s: %d packets, want %d", w.src, w.dst, got[k], want)
						}
					}
				})
			}
		}
	}
}
