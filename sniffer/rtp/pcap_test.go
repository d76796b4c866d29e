package rtp

import (
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"pbx-agent/internal/pcaptest"
)

// udpPacket is one UDP datagram read from a capture by the tests.
type udpPacket struct {
	src, dst netip.AddrPort
	payload  []byte
	ts       time.Time
}

// readUDP calls fn for every UDP datagram (IPv4 or IPv6, any link type
// gopacket decodes) in a pcap file. Tests only: the production path is
// sniffer/decode.
func readUDP(t testing.TB, path string, fn func(p udpPacket)) {
	t.Helper()
	r := pcaptest.Open(t, path)
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.NoCopy)
		udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil {
			continue
		}
		var sa, da netip.Addr
		switch ip := pkt.NetworkLayer().(type) {
		case *layers.IPv4:
			sa, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			da, _ = netip.AddrFromSlice(ip.DstIP.To4())
		case *layers.IPv6:
			sa, _ = netip.AddrFromSlice(ip.SrcIP)
			da, _ = netip.AddrFromSlice(ip.DstIP)
		default:
			continue
		}
		fn(udpPacket{
			src:     netip.AddrPortFrom(sa, uint16(udp.SrcPort)),
			dst:     netip.AddrPortFrom(da, uint16(udp.DstPort)),
			payload: udp.Payload,
			ts:      ci.Timestamp,
		})
	}
}

// streamKey identifies an RTP stream in a capture.
type streamKey struct {
	src, dst netip.AddrPort
	ssrc     uint32
}

// feedStreams runs every RTP packet of the wanted streams through a Stream
// configured by cfgFor, and returns the streams.
func feedStreams(t testing.TB, path string, want map[streamKey]StreamConfig) map[streamKey]*Stream {
	t.Helper()
	out := make(map[streamKey]*Stream, len(want))
	var h Header
	readUDP(t, path, func(p udpPacket) {
		if !LooksLikeRTP(p.payload) {
			return
		}
		n, err := h.Unmarshal(p.payload)
		if err != nil {
			return
		}
		k := streamKey{p.src, p.dst, h.SSRC}
		cfg, ok := want[k]
		if !ok {
			return
		}
		s := out[k]
		if s == nil {
			s = NewStream(cfg)
			out[k] = s
		}
		s.Update(&h, len(h.Payload(p.payload, n)), p.ts)
	})
	return out
}
