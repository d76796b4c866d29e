package sniffer

import (
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/fixture"
)

// FuzzPacketPath feeds random bytes as frames of every link type through the
// whole path (decode, SIP over UDP/TCP, call table). Seeds are the frames of
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
