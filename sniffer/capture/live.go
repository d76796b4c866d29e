package capture

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/net/bpf"
)

// LiveOptions configures capture from a network interface.
type LiveOptions struct {
	Interface string
	Snaplen   int               // bytes kept per frame; 0 = 65535
	Filter    []bpf.Instruction // optional BPF program (see CompileFilter)
	// BlockSize and NumBlocks size the TPACKET_V3 ring (0 = 1 MiB × 64).
	BlockSize, NumBlocks int
	// BlockTimeout is the ring's block retire timeout (tp_retire_blk_tov):
	// a partly filled block is handed to the agent after this long, so it
	// bounds the capture latency at low packet rates. 0 = DefaultBlockTimeout;
	// millisecond granularity.
	BlockTimeout time.Duration
	// Fanout joins an AF_PACKET fanout group (hashing flows across the
	// group's sockets), 0 = none. Ignored by the cgo-free fallback.
	Fanout uint16
}

// DefaultBlockTimeout is a few ms, not the kernel's 64 ms-ish default: a
// live listener hears a quiet call's packets without waiting for a block to
// fill (the retire timer costs a wake-up per block timeout while busy).
const DefaultBlockTimeout = 4 * time.Millisecond

// LiveStats are the kernel's counters for a live source.
type LiveStats struct {
	Packets, Drops uint64
}

// Live is a live capture source that can report kernel drop counters.
type Live interface {
	Source
	Stats() (LiveStats, error)
}

// OpenLive starts capturing on an interface: AF_PACKET with a TPACKET_V3 ring
// when built with cgo (kernel headers only, no libpcap), else pcapgo's
// EthernetHandle. On a loopback interface (or every interface) the kernel
// drops the PACKET_OUTGOING copy of loopback frames, so each is seen once.
func OpenLive(opts LiveOptions) (Live, error) {
	if opts.Interface == "" {
		return nil, fmt.Errorf("%w: no interface given", ErrLive)
	}
	if opts.Snaplen <= 0 {
		opts.Snaplen = 65535
	}
	filter, name := opts.Filter, opts.Interface
	var only []bpf.Instruction
	if Several(name) {
		// A list or any: one socket on every interface (see multi.go).
		var err error
		if only, err = interfaceFilter(Interfaces(name)); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrLive, err)
		}
		opts.Interface = ""
	}
	if ifs, err := net.Interfaces(); err == nil {
		filter = skipLoopbackOutgoing(opts.Interface, filter, ifs)
	}
	if len(only) > 0 {
		if len(filter) == 0 {
			filter = []bpf.Instruction{bpf.RetConstant{Val: 0xffffffff}}
		}
		filter = append(only, filter...)
	}
	var raw []bpf.RawInstruction
	if len(filter) > 0 {
		var err error
		if raw, err = bpf.Assemble(filter); err != nil {
			return nil, fmt.Errorf("%w: bpf: %v", ErrLive, err)
		}
	}
	l, err := openLive(opts, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLive, name, err)
	}
	return l, nil
}

// OpenFanout opens n sockets on the interface in one AF_PACKET fanout
// group (opts.Fanout; PACKET_FANOUT_HASH: every frame of a flow reaches the
// same socket, each frame one socket), each with 1/n of the ring's blocks,
// for n reader goroutines. Without fanout support (no cgo) or for n < 2 it
// opens one socket.
func OpenFanout(opts LiveOptions, n int) ([]Live, error) {
	if n < 2 || !canFanout || opts.Fanout == 0 {
		l, err := OpenLive(opts)
		if err != nil {
			return nil, err
		}
		return []Live{l}, nil
	}
	if opts.NumBlocks > 0 {
		opts.NumBlocks = max(opts.NumBlocks/n, 1)
	}
	var out []Live
	for range n {
		l, err := OpenLive(opts)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// UDPPortFilter returns a BPF program accepting IPv4 and IPv6 frames (with
// or without one 802.1Q tag) and the frames that may carry them deeper
// (802.1ad and stacked tags, MPLS) — a cheap kernel-side cut of what cannot
// be SIP or RTP (ARP, LLDP, STP, ...). Tunnels (GRE, ERSPAN, VXLAN) ride on
// IP, so they pass too. Port selection stays in user space because RTP
// ports are learnt from SDP and SIP is found by content.
func UDPPortFilter() []bpf.Instruction {
	// ldh [12]; one 802.1Q tag? -> ldh [16]; then accept the EtherTypes below.
	accept := []uint32{0x0800, 0x86dd, 0x8100, 0x88a8, 0x9100, 0x8847, 0x8848}
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x8100, SkipTrue: 0, SkipFalse: 1},
		bpf.LoadAbsolute{Off: 16, Size: 2},
	}
	for i, et := range accept {
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: et, SkipTrue: uint8(len(accept) - i)})
	}
	return append(prog, bpf.RetConstant{Val: 0}, bpf.RetConstant{Val: 0xffff})
}
