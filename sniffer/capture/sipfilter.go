package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// maxFilterRanges bounds the port ranges SIPPortFilter compiles (each costs
// two compares per port read; BPF jumps reach 255 instructions).
const maxFilterRanges = 16

// SIPPortFilter is UDPPortFilter narrowed for `sip_detect = no`: TCP and SCTP
// are kept only on the SIP ports (there is no other SIP, and RTP never rides
// on them); UDP is all kept (RTP ports are learnt from SDP), as are IP
// fragments after the first (their ports are unknown), tunnels and
// tagged/MPLS frames beyond one 802.1Q tag. With more than 16 ranges it
// returns UDPPortFilter.
func SIPPortFilter(sip []PortRange) []bpf.Instruction {
	if len(sip) == 0 || len(sip) > maxFilterRanges {
		return UDPPortFilter()
	}
	var a asm
	a.op(bpf.LoadAbsolute{Off: 12, Size: 2})
	a.jeq(0x8100, "vlan", "")
	a.op(bpf.LoadConstant{Dst: bpf.RegX, Val: 0})
	a.ja("ethertype")
	a.label("vlan")
	a.op(bpf.LoadConstant{Dst: bpf.RegX, Val: 4})
	a.label("ethertype")
	a.op(bpf.LoadIndirect{Off: 12, Size: 2})
	a.jeq(0x0800, "ip4", "")
	a.jeq(0x86dd, "ip6", "")
	for _, et := range []uint32{0x8100, 0x88a8, 0x9100, 0x8847, 0x8848} {
		a.jeq(et, "accept", "")
	}
	a.ja("reject")

	a.label("ip4")
	a.tcpOrSCTP(23, "ip4ports")
	a.op(bpf.LoadIndirect{Off: 20, Size: 2})
	a.jset(0x1fff, "accept", "") // a later fragment: no ports to see
	a.op(bpf.LoadIndirect{Off: 14, Size: 1})
	a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
	a.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	a.op(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.op(bpf.TAX{}) // X = tag offset + IPv4 header length
	a.ports(sip, 14)

	a.label("ip6")
	a.tcpOrSCTP(20, "ip6ports")
	a.ports(sip, 54)

	a.label("reject")
	a.op(bpf.RetConstant{Val: 0})
	a.label("accept")
	a.op(bpf.RetConstant{Val: 0xffff})
	prog, err := a.assemble()
	if err != nil {
		return UDPPortFilter() // cannot happen within maxFilterRanges
	}
	return prog
}

// asm lays out a BPF program with named jump targets ("" = next).
type asm struct {
	ins    []asmIns
	labels map[string]int
}

type asmIns struct {
	op       bpf.Instruction
	cond     bpf.JumpTest
	val      uint32
	jt, jf   string
	jump     bool // conditional
	always   string
	isAlways bool
}

func (a *asm) op(i bpf.Instruction) { a.ins = append(a.ins, asmIns{op: i}) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *asm) jeq(v uint32, jt, jf string) {
	a.ins = append(a.ins, asmIns{jump: true, cond: bpf.JumpEqual, val: v, jt: jt, jf: jf})
}

func (a *asm) jset(v uint32, jt, jf string) {
	a.ins = append(a.ins, asmIns{jump: true, cond: bpf.JumpBitsSet, val: v, jt: jt, jf: jf})
}

func (a *asm) ja(to string) { a.ins = append(a.ins, asmIns{isAlways: true, always: to}) }

// tcpOrSCTP goes on at label when the protocol byte at [x+off] is TCP or
// SCTP (which have ports to test), and accepts anything else.
func (a *asm) tcpOrSCTP(off uint32, label string) {
	a.op(bpf.LoadIndirect{Off: off, Size: 1})
	a.jeq(6, label, "")
	a.jeq(132, label, "")
	a.ja("accept")
	a.label(label)
}

// ports tests the source then the destination port of the transport header
// at [x+off] against the ranges: accept on a match, else reject.
func (a *asm) ports(sip []PortRange, off uint32) {
	for k, at := range []uint32{off, off + 2} {
		a.op(bpf.LoadIndirect{Off: at, Size: 2})
		for i, r := range sip {
			next := fmt.Sprintf("p%d-%d-%d", off, k, i)
			a.ins = append(a.ins, asmIns{jump: true, cond: bpf.JumpGreaterOrEqual, val: uint32(r.Lo), jf: next})
			a.ins = append(a.ins, asmIns{jump: true, cond: bpf.JumpGreaterThan, val: uint32(r.Hi), jt: next, jf: "accept"})
			a.label(next)
		}
	}
	a.ja("reject")
}

func (a *asm) assemble() ([]bpf.Instruction, error) {
	out := make([]bpf.Instruction, len(a.ins))
	skip := func(at int, to string) (int, error) {
		if to == "" {
			return 0, nil
		}
		pos, ok := a.labels[to]
		if !ok {
			return 0, fmt.Errorf("bpf: no label %q", to)
		}
		return pos - at - 1, nil
	}
	for i, in := range a.ins {
		switch {
		case in.isAlways:
			s, err := skip(i, in.always)
			if err != nil {
				return nil, err
			}
			out[i] = bpf.Jump{Skip: uint32(s)}
		case in.jump:
			t, err := skip(i, in.jt)
			if err != nil {
				return nil, err
			}
			f, err := skip(i, in.jf)
			if err != nil {
				return nil, err
			}
			if t < 0 || f < 0 || t > 255 || f > 255 {
				return nil, fmt.Errorf("bpf: jump out of range at %d", i)
			}
			out[i] = bpf.JumpIf{Cond: in.cond, Val: in.val, SkipTrue: uint8(t), SkipFalse: uint8(f)}
		default:
			out[i] = in.op
		}
	}
	return out, nil
}
