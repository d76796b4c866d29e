package fax

import (
	"context"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/fixture"
)

// fileFrames reads a capture file for DecodeFrames.
type fileFrames struct{ src capture.Source }

func (f fileFrames) ReadPacketData() ([]byte, CaptureInfo, error) {
	b, ci, err := f.src.ReadPacket()
	return b, CaptureInfo{Timestamp: ci.Timestamp}, err
}

func (f fileFrames) LinkType() layers.LinkType { return f.src.LinkType() }

// TestAsteriskRecordings: the project's real Asterisk 20.20.1 fax calls
// (res_fax_spandsp: SendFAX of testdata/sent.tif to ReceiveFAX over PJSIP
// on loopback, see testdata/README.md) decode to the two sent pages, from
// the sender, with the sender's station id; ReceiveFAX reported FAXPAGES=2,
// FAXSTATUS=SUCCESS for both.
func TestAsteriskRecordings(t *testing.T) {
	needSpandsp(t)
	for _, tc := range []struct{ file, mode string }{
		{"asterisk-fax-t38.pcap", ModeT38},
		{"asterisk-fax-t38fec.pcap", ModeT38},
		{"asterisk-fax-g711.pcap", ModeG711},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, err := capture.OpenFile(fixture.Repo(t, "testdata", "pcap", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			r, file, err := DecodeFrames(context.Background(), fileFrames{src}, t.TempDir())
			if err != nil {
				t.Fatalf("%v (result %+v)", err, r)
			}
			t.Logf("%+v", r)
			if r.Mode != tc.mode || r.Pages != 2 || r.Code != 0 || r.RemoteID != "PBX-AGENT SEND" {
				t.Errorf("result %+v; want mode %s, 2 pages, code 0, remote PBX-AGENT SEND", r, tc.mode)
			}
			checkPages(t, file, 2)
			// what Asterisk's ReceiveFAX itself wrote from the same call
			samePages(t, file, fixture.Repo(t, "testdata", "fax", "asterisk-received-"+strings.TrimSuffix(strings.TrimPrefix(tc.file, "asterisk-fax-"), ".pcap")+".tif"))
		})
	}
}

// BenchmarkDecodeRecording: the CPU one on-demand decode of a real fax call
// costs (the whole capture: SIP, RTP, UDPTL; 2 pages).
func BenchmarkDecodeRecording(b *testing.B) {
	if !Built {
		b.Skip("built without spandsp")
	}
	for _, file := range []string{"asterisk-fax-t38.pcap", "asterisk-fax-g711.pcap"} {
		b.Run(file, func(b *testing.B) {
			path := fixture.Repo(b, "testdata", "pcap", file)
			for b.Loop() {
				src, err := capture.OpenFile(path)
				if err != nil {
					b.Fatal(err)
				}
				r, _, err := DecodeFrames(context.Background(), fileFrames{src}, b.TempDir())
				src.Close()
				if err != nil || r.Pages != 2 {
					b.Fatalf("%+v %v", r, err)
				}
			}
		})
	}
}

// lossyFrames drops every nth UDPTL datagram the sender (127.0.0.2) sends.
type lossyFrames struct {
	fileFrames
	n, seen, dropped int
	dec              *decode.Decoder
	p                decode.Packet
	u                Packet
}

func (l *lossyFrames) ReadPacketData() ([]byte, CaptureInfo, error) {
	for {
		b, ci, err := l.fileFrames.ReadPacketData()
		if err != nil {
			return b, ci, err
		}
		if ok, _ := l.dec.Decode(b, ci.Timestamp, &l.p); ok && l.p.Src.Addr().String() == "127.0.0.2" &&
			l.p.Src.Port() >= 4000 && l.p.Src.Port() <= 4999 && Parse(l.p.Payload, &l.u) == nil {
			l.seen++
			if l.seen%l.n == 0 {
				l.dropped++
				continue
			}
		}
		return b, ci, nil
	}
}

// TestLossRecovered: every 5th UDPTL packet of the sender lost, the real
// T.38 calls still decode to both pages: the redundant IFPs (t38UDPRedundancy)
// and the parity entries (t38UDPFEC, span 3, 3 entries) restore them.
func TestLossRecovered(t *testing.T) {
	needSpandsp(t)
	for _, file := range []string{"asterisk-fax-t38.pcap", "asterisk-fax-t38fec.pcap"} {
		t.Run(file, func(t *testing.T) {
			src, err := capture.OpenFile(fixture.Repo(t, "testdata", "pcap", file))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			dec, err := decode.New(src.LinkType())
			if err != nil {
				t.Fatal(err)
			}
			l := &lossyFrames{fileFrames: fileFrames{src}, n: 5, dec: dec}
			r, out, err := DecodeFrames(context.Background(), l, t.TempDir())
			t.Logf("%d of %d sender UDPTL packets dropped: %+v", l.dropped, l.seen, r)
			if err != nil || r.Pages != 2 || r.Code != 0 {
				t.Fatalf("result %+v, %v; want 2 pages, code 0", r, err)
			}
			checkPages(t, out, 2)
		})
	}
}
