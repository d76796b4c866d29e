package spool_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/fax"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/spool"
)

// spooled feeds the spool's SIP pcap of a call, then its RTP pcap, to the
// fax decoder (the SDP only has to come before the media it announces).
type spooled struct {
	link layers.LinkType
	pkts []pkt
	i    int
}

func (s *spooled) ReadPacketData() ([]byte, fax.CaptureInfo, error) {
	if s.i >= len(s.pkts) {
		return nil, fax.CaptureInfo{}, io.EOF
	}
	s.i++
	return s.pkts[s.i-1].data, fax.CaptureInfo{Timestamp: s.pkts[s.i-1].ci.Timestamp}, nil
}

func (s *spooled) LinkType() layers.LinkType { return s.link }

// TestFaxCallsSpooled: the real Asterisk fax calls replayed through the
// sniffer and the spool keep every UDPTL packet (tshark's count) in the
// call's RTP pcap, the CDR counts them, and the spooled files decode to the
// two sent pages.
func TestFaxCallsSpooled(t *testing.T) {
	if !fax.Built {
		t.Skip("built without spandsp")
	}
	for _, tc := range []struct {
		file  string
		mode  string
		udptl bool
	}{
		{"asterisk-fax-t38.pcap", fax.ModeT38, true},
		{"asterisk-fax-g711.pcap", fax.ModeG711, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			in := fixture.Repo(t, "testdata", "pcap", tc.file)
			dir := t.TempDir()
			res := replay(t, in, fullConfig(dir), nil)
			if len(res.cdrs) != 1 {
				t.Fatalf("%d CDRs, want 1", len(res.cdrs))
			}
			for id, c := range res.cdrs {
				base := spool.FBasename(id)
				link, sipPkts := readPcap(t, spool.Path(dir, c.CallDate, time.UTC, spool.TypeSIP, base, "pcap"))
				rtpPath := spool.Path(dir, c.CallDate, time.UTC, spool.TypeRTP, base, "pcap")
				_, rtpPkts := readPcap(t, rtpPath)
				if tc.udptl {
					want := tsharkCount(t, in, "t38")
					got := tsharkCount(t, rtpPath, "udp.port >= 4000 && udp.port <= 4999")
					if got != want || c.FaxPackets != want {
						t.Errorf("UDPTL packets: spool %d, CDR %d, tshark on the capture %d", got, c.FaxPackets, want)
					}
				} else if c.FaxPackets != 0 {
					t.Errorf("G.711 fax call: CDR counts %d UDPTL packets", c.FaxPackets)
				}
				r, file, err := fax.DecodeFrames(context.Background(), &spooled{link: link, pkts: append(sipPkts, rtpPkts...)}, t.TempDir())
				if err != nil {
					t.Fatalf("%v (%+v)", err, r)
				}
				n, err := fax.CountPages(file)
				t.Logf("%s: %+v, %d pages in %s", tc.file, r, n, file)
				if r.Mode != tc.mode || r.Pages != 2 || n != 2 || err != nil {
					t.Errorf("decoded %+v, %d pages (%v); want %s with 2 pages", r, n, err, tc.mode)
				}
			}
		})
	}
}
