//go:build linux && cgo

package capture

import (
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/afpacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

type afpacketSource struct{ h *afpacket.TPacket }

// canFanout: the TPACKET_V3 sockets join fanout groups.
const canFanout = true

func openLive(opts LiveOptions, filter []bpf.RawInstruction) (Live, error) {
	bs, nb := opts.BlockSize, opts.NumBlocks
	if bs <= 0 {
		bs = 1 << 20
	}
	if nb <= 0 {
		nb = 64
	}
	tov := opts.BlockTimeout
	if tov <= 0 {
		tov = DefaultBlockTimeout
	}
	frame := 1 << 16
	for frame > bs {
		frame >>= 1
	}
	h, err := afpacket.NewTPacket(
		afpacket.OptInterface(opts.Interface),
		afpacket.OptFrameSize(frame),
		afpacket.OptBlockSize(bs),
		afpacket.OptNumBlocks(nb),
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptBlockTimeout(max(tov, time.Millisecond)),
		afpacket.OptPollTimeout(200*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	if len(filter) > 0 {
		if err := h.SetBPF(filter); err != nil {
			h.Close()
			return nil, err
		}
	}
	if opts.Fanout != 0 {
		if err := h.SetFanout(afpacket.FanoutHashWithDefrag, opts.Fanout); err != nil {
			h.Close()
			return nil, err
		}
	}
	return &afpacketSource{h: h}, nil
}

func (s *afpacketSource) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	for {
		data, ci, err := s.h.ZeroCopyReadPacketData()
		if err == afpacket.ErrTimeout || err == afpacket.ErrPoll {
			return nil, ci, ErrTimeout
		}
		return data, ci, err
	}
}

func (s *afpacketSource) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

func (s *afpacketSource) Close() error { s.h.Close(); return nil }

func (s *afpacketSource) Stats() (LiveStats, error) {
	_, v3, err := s.h.SocketStats()
	if err != nil {
		return LiveStats{}, err
	}
	return LiveStats{Packets: uint64(v3.Packets()), Drops: uint64(v3.Drops())}, nil
}
