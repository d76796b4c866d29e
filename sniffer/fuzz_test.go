package sniffer

import (
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/simulate"
)

// FuzzPacketPath feeds random bytes as frames of every link type through the
// whole path (decode with tunnels, SIP over UDP/TCP/SCTP, call table). Seeds are the frames of
// a real capture; nothing may panic and the table must stay consistent.
func FuzzPacketPath(f *testing.F) {
	src, err := capture.OpenFile(fixture.Repo(f, "testdata", "pcap", "asterisk-call-busy.pcap"))
	if err != nil {
		f.Fatal(err)
	}
	for {
		data, _, err := src.ReadPacket()
		if err != nil {
			break
		}
		f.Add(uint8(src.LinkType()), append([]byte(nil), data...))
	}
	src.Close()
	// Every tunnel and mirror shape, and SIP over SCTP in fragments.
	for _, o := range []simulate.Options{{Encap: simulate.EncapERSPAN3}, {Encap: simulate.EncapVXLAN},
		{Encap: simulate.EncapMPLS}, {Encap: simulate.EncapQinQ}, {Transport: simulate.TransportSCTP, MTU: 400}} {
		o.Calls, o.Duration = 1, time.Second
		g, err := simulate.New(o)
		if err != nil {
			f.Fatal(err)
		}
		for range 6 {
			data, _, err := g.ZeroCopyReadPacketData()
			if err != nil {
				break
			}
			f.Add(uint8(g.LinkType()), append([]byte(nil), data...))
		}
	}
	ps, _ := ParsePorts("5060")
	f.Fuzz(func(t *testing.T, link uint8, frame []byte) {
		sn := New(Config{SIPPorts: ps})
		ts := time.Unix(1700000000, 0)
		for i := range 3 { // repeated: retransmissions, TCP overlap, fragments
			if err := sn.HandleFrame(layers.LinkType(link), frame, ts.Add(time.Duration(i)*time.Millisecond)); err != nil {
				return // unsupported link type
			}
		}
		sn.Flush()
		if n := len(sn.Table().Active()); n != 0 {
			t.Fatalf("%d calls still active after Flush", n)
		}
	})
}
