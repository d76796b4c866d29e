package tap

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/rtp"
)

func newBare() (*Tapper, *tap, netip.AddrPort) {
	tp := &Tapper{bySrc: map[netip.AddrPort]leg{}, byPort: map[uint16]leg{}, taps: map[uint64]*tap{}}
	tt := &tap{ref: 1, call: audio.NewCall(audio.Config{Delay: 60 * time.Millisecond})}
	src := netip.MustParseAddrPort("127.0.0.1:10086")
	tp.bySrc[src] = leg{tt, audio.FromCaller}
	tp.byPort[src.Port()] = leg{tt, audio.FromCaller}
	tp.taps[1] = tt
	return tp, tt, src
}

func rtpPacket(seq uint16, ts uint32) []byte {
	b := make([]byte, 12+160)
	b[0] = 0x80
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], 0x2ab0a07b)
	for i := 12; i < len(b); i++ {
		b[i] = 0xff
	}
	return b
}

// TestHandle: what the receiver does with each kind of datagram.
func TestHandle(t *testing.T) {
	rtcp := []byte{0x80, 200, 0, 6, 0x2a, 0xb0, 0xa0, 0x7b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	tests := []struct {
		name string
		src  string
		in   []byte
		want Stats
	}{
		{name: "RTP from the announced source", src: "127.0.0.1:10086", in: rtpPacket(1, 160), want: Stats{Packets: 1}},
		{name: "RTP from the announced port, other address (NAT)", src: "192.0.2.9:10086", in: rtpPacket(1, 160), want: Stats{Packets: 1}},
		{name: "unknown source", src: "127.0.0.1:10088", in: rtpPacket(1, 160), want: Stats{Unknown: 1}},
		{name: "short", src: "127.0.0.1:10086", in: []byte{0x80, 0}, want: Stats{NotRTP: 1}},
		{name: "not version 2", src: "127.0.0.1:10086", in: append([]byte{0x40}, rtpPacket(1, 160)[1:]...), want: Stats{NotRTP: 1}},
		{name: "RTCP", src: "127.0.0.1:10086", in: rtcp, want: Stats{NotRTP: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, _, _ := newBare()
			var hdr rtp.Header
			tp.handle(&hdr, netip.MustParseAddrPort(tt.src), tt.in, time.Unix(1795561729, 0))
			got := tp.Stats()
			got.Taps = 0
			if got != tt.want {
				t.Errorf("stats %+v, want %+v", got, tt.want)
			}
		})
	}
}

// BenchmarkHandle is the receiver's per-packet work: lookup, RTP header,
// G.711 decode into the timeline, a frame to one listener.
func BenchmarkHandle(b *testing.B) {
	tp, tt, src := newBare()
	sub, err := tt.call.Subscribe(64)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	pkt := rtpPacket(0, 160)
	now := time.Unix(1795561729, 0)
	var hdr rtp.Header
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(160+160*i))
		tp.handle(&hdr, src, pkt, now)
		now = now.Add(20 * time.Millisecond)
	}
	if tp.Stats().Packets == 0 {
		b.Fatal("nothing decoded")
	}
}
