//go:build linux && !cgo

package capture

import (
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/net/bpf"
)

// Without cgo the agent falls back to pcapgo's EthernetHandle (AF_PACKET
// without the mmap ring): slower, but needs nothing but the kernel.
type ethernetSource struct{ h *pcapgo.EthernetHandle }

// canFanout: pcapgo's handle joins no fanout group (each socket would see
// every frame).
const canFanout = false

func openLive(opts LiveOptions, filter []bpf.RawInstruction) (Live, error) {
	h, err := pcapgo.NewEthernetHandle(opts.Interface)
	if err != nil {
		return nil, err
	}
	if err := h.SetCaptureLength(opts.Snaplen); err != nil {
		h.Close()
		return nil, err
	}
	if len(filter) > 0 {
		if err := h.SetBPF(filter); err != nil {
			h.Close()
			return nil, err
		}
	}
	return &ethernetSource{h: h}, nil
}

func (s *ethernetSource) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	return s.h.ZeroCopyReadPacketData()
}

func (s *ethernetSource) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

func (s *ethernetSource) Close() error { s.h.Close(); return nil }

func (s *ethernetSource) Stats() (LiveStats, error) {
	st, err := s.h.Stats()
	if err != nil {
		return LiveStats{}, err
	}
	return LiveStats{Packets: uint64(st.Packets), Drops: uint64(st.Drops)}, nil
}
