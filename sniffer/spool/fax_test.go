package spool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer"
	"pbx-agent/sniffer/capture"
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
		// savertp; faxdetect (a G.711 fax is a fax once its tones are heard)
		save      spool.RTPMode
		faxDetect bool
	}{
		{"asterisk-fax-t38.pcap", fax.ModeT38, true, spool.RTPFull, false},
		{"asterisk-fax-g711.pcap", fax.ModeG711, false, spool.RTPFull, false},
		// A fax call's packets are stored whole whatever savertp says, as
		// VoIPmonitor does: its pages can still be decoded.
		{"asterisk-fax-t38.pcap", fax.ModeT38, true, spool.RTPOff, false},
		{"asterisk-fax-g711.pcap", fax.ModeG711, false, spool.RTPOff, true},
		{"asterisk-fax-g711.pcap", fax.ModeG711, false, spool.RTPHeader, true},
	} {
		t.Run(fmt.Sprintf("%s/savertp=%d/faxdetect=%v", tc.mode, tc.save, tc.faxDetect), func(t *testing.T) {
			in := fixture.Repo(t, "testdata", "pcap", tc.file)
			dir := t.TempDir()
			cfg := fullConfig(dir)
			cfg.SaveRTP, cfg.SaveRTCP = tc.save, tc.save != spool.RTPOff // as the daemon
			src, err := capture.OpenFile(in)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			res := replayEach(t, fileSource{src}, "5060,5070", cfg, nil, nil, func(c *sniffer.Config) { c.FaxDetect = tc.faxDetect })
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

// TestNoFaxNoRTPPcap: with savertp = no, the G.711 fax call whose tones
// are not looked for (faxdetect off) is an ordinary call: no RTP pcap.
func TestNoFaxNoRTPPcap(t *testing.T) {
	in := fixture.Repo(t, "testdata", "pcap", "asterisk-fax-g711.pcap")
	dir := t.TempDir()
	cfg := fullConfig(dir)
	cfg.SaveRTP, cfg.SaveRTCP = spool.RTPOff, false // as the daemon sets them for savertp = no
	res := replay(t, in, cfg, nil)
	if len(res.cdrs) != 1 {
		t.Fatalf("%d CDRs, want 1", len(res.cdrs))
	}
	for id, c := range res.cdrs {
		p := spool.Path(dir, c.CallDate, time.UTC, spool.TypeRTP, spool.FBasename(id), "pcap")
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("RTP pcap of a call with savertp = no and no fax found: %v", err)
		}
	}
}
