package capture

import (
	"net"

	"golang.org/x/net/bpf"
)

// packetOutgoing is the kernel's PACKET_OUTGOING (linux/if_packet.h): a copy
// of a frame this host sends, as AF_PACKET's sll_pkttype and skb->pkt_type.
const packetOutgoing = 4

// skipLoopbackOutgoing prefixes filter so that the kernel drops the
// PACKET_OUTGOING copy of every frame on a loopback interface. AF_PACKET sees
// a frame sent on lo twice — once as it leaves (outgoing) and once as it
// arrives (host) — so without this every packet on lo is counted twice;
// libpcap and VoIPmonitor keep only the incoming copy, and so does this.
// Outgoing frames of other interfaces are kept (they are seen once).
//
// iface is the interface the socket is bound to: a loopback interface gets a
// pkt_type test; "" or "any" (every interface) gets it only for frames whose
// ifindex is a loopback interface's. Any other interface gets filter as is.
func skipLoopbackOutgoing(iface string, filter []bpf.Instruction, ifs []net.Interface) []bpf.Instruction {
	all := iface == "" || iface == "any"
	var loIdx []uint32
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			continue
		}
		if !all && i.Name == iface {
			return prependTypeTest(nil, filter) // bound to lo itself
		}
		loIdx = append(loIdx, uint32(i.Index))
	}
	if !all || len(loIdx) == 0 {
		return filter // a non-loopback interface: each frame seen once
	}
	// ld ifindex; jeq lo1 → type test; ...; else skip the type test.
	n := len(loIdx)
	prog := []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtInterfaceIndex}}
	for k, idx := range loIdx {
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: idx, SkipTrue: uint8(n - k)})
	}
	prog = append(prog, bpf.Jump{Skip: 3})
	return prependTypeTest(prog, filter)
}

// prependTypeTest appends "drop PACKET_OUTGOING" (3 instructions) and then
// filter (or "accept" without one) to prog.
func prependTypeTest(prog, filter []bpf.Instruction) []bpf.Instruction {
	prog = append(prog,
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: 0, SkipFalse: 1},
		bpf.RetConstant{Val: 0},
	)
	if len(filter) == 0 {
		return append(prog, bpf.RetConstant{Val: 0xffffffff}) // whole frame
	}
	return append(prog, filter...)
}
