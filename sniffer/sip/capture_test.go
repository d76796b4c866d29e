package sip

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/sdp"
)

// wantMessages: SIP message counts from the fixtures README (tshark).
var wantMessages = map[string]int{
	"sip_ipv6_udp.pcap":           6,  // INVITE/100/200/ACK/BYE/200
	"sip_ipv4_tcp.pcap":           7,  // INVITE/100/180/200/ACK/BYE/200 over TCP
	"DTMFsipinfo.pcap":            32, // SIP only
	"sip-auth-failure.pcapng":     8,
	"sip-488-codec-reject.pcapng": 13,
}

// TestPublicCaptures parses every SIP message (UDP datagrams and TCP
// streams framed by Stream) of the public captures: each must parse, and
// each SDP body must parse too.
func TestPublicCaptures(t *testing.T) {
	dir := fixture.Shared(t, "public")
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	files2, _ := filepath.Glob(filepath.Join(dir, "*.cap"))
	files = append(files, files2...)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			var src gopacket.PacketDataSource
			var lt layers.LinkType
			if strings.HasSuffix(f, ".pcapng") {
				r, err := pcapgo.NewNgReader(fh, pcapgo.DefaultNgReaderOptions)
				if err != nil {
					t.Fatal(err)
				}
				src, lt = r, r.LinkType()
			} else {
				r, err := pcapgo.NewReader(fh)
				if err != nil {
					t.Fatal(err)
				}
				src, lt = r, r.LinkType()
			}
			streams := map[gopacket.Flow]map[gopacket.Flow]*Stream{}
			var msgs, sdps int
			check := func(b []byte) {
				var m Message
				if _, err := Parse(b, &m); err != nil {
					t.Errorf("message %d: %v\n%.300q", msgs, err, b)
					return
				}
				msgs++
				if body := SDPBody(&m); body != nil {
					var s sdp.Session
					if err := sdp.Parse(body, &s); err != nil {
						t.Errorf("SDP of %s %d: %v", m.Method, m.StatusCode, err)
					}
					sdps++
				}
			}
			ps := gopacket.NewPacketSource(src, lt)
			ps.DecodeOptions = gopacket.DecodeOptions{Lazy: true, NoCopy: true}
			for p := range ps.Packets() {
				tlay := p.TransportLayer()
				if tlay == nil || len(tlay.LayerPayload()) == 0 {
					continue
				}
				pl := tlay.LayerPayload()
				switch tl := tlay.(type) {
				case *layers.UDP:
					nl := bytes.IndexByte(pl, '\n')
					if nl < 0 || !isStartLine(pl[:nl+1]) {
						continue // RTP, keep-alives, other protocols
					}
					check(pl)
				case *layers.TCP:
					if tl.SrcPort != 5060 && tl.DstPort != 5060 {
						continue
					}
					nf, tf := p.NetworkLayer().NetworkFlow(), tl.TransportFlow()
					if streams[nf] == nil {
						streams[nf] = map[gopacket.Flow]*Stream{}
					}
					s := streams[nf][tf]
					if s == nil {
						s = &Stream{}
						streams[nf][tf] = s
					}
					s.Write(pl)
					for {
						b, err := s.Next()
						if errors.Is(err, io.ErrUnexpectedEOF) {
							break
						}
						if err != nil {
							t.Errorf("stream: %v", err)
							continue
						}
						check(b)
					}
				}
			}
			t.Logf("%d SIP messages, %d with SDP", msgs, sdps)
			if want, ok := wantMessages[filepath.Base(f)]; ok && msgs != want {
				t.Errorf("%d SIP messages, want %d (README / tshark)", msgs, want)
			}
		})
	}
}
