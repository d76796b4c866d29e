package capture

import (
	"encoding/binary"
	"fmt"

	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

// filterAccept is what libpcap's programs return for a kept frame.
const filterAccept = 262144

// Program returns the filter as classic BPF for frames of a link type read
// from a file (Ethernet or Linux cooked): libpcap's program for a savefile,
// where a VLAN tag is in the frame.
func (f *Filter) Program(link layers.LinkType) ([]bpf.Instruction, error) {
	g := &filterGen{f: f}
	switch link {
	case layers.LinkTypeEthernet:
		g.etherOff, g.netOff = 12, 14
	case layers.LinkTypeLinuxSLL:
		if f.vlans > 0 {
			return nil, fmt.Errorf("%w: vlan on %s", ErrFilterLinkType, link)
		}
		g.etherOff, g.netOff = 14, 16
	default:
		return nil, fmt.Errorf("%w: %s", ErrFilterLinkType, link)
	}
	g.body("f", false)
	return g.finish()
}

// KernelProgram returns the filter for an AF_PACKET socket (Ethernet). The
// kernel hands a socket frames whose outer VLAN tag was taken out into the
// packet's metadata, so with vlan in the expression the program tests the
// metadata first (as libpcap does on a live Linux socket): a frame with a
// tag there runs a variant whose first vlan reads the metadata and whose
// other primitives read the frame as it is; a frame without one runs
// Program's code.
func (f *Filter) KernelProgram() ([]bpf.Instruction, error) {
	g := &filterGen{f: f, etherOff: 12, netOff: 14}
	if f.vlans > 0 {
		g.a.op(bpf.LoadExtension{Num: bpf.ExtVLANTagPresent})
		g.a.jeq(1, "meta", "")
		g.a.ja("frame")
		g.a.label("meta")
		g.body("m", true)
		g.a.label("frame")
	}
	g.body("f", false)
	return g.finish()
}

type filterGen struct {
	f                *Filter
	a                asm
	etherOff, netOff uint32
	meta             bool // the frame's outer tag is in the metadata
	n                int  // label counter
	prefix           string
}

func (g *filterGen) finish() ([]bpf.Instruction, error) {
	prog, err := g.a.assemble()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilterLimit, err)
	}
	if len(prog) > maxBPFInsns {
		return nil, fmt.Errorf("%w: %d BPF instructions > %d", ErrFilterLimit, len(prog), maxBPFInsns)
	}
	return prog, nil
}

func (g *filterGen) newLabel() string {
	g.n++
	return fmt.Sprintf("%s%d", g.prefix, g.n)
}

// body emits the whole expression, ending in its own accept and reject.
func (g *filterGen) body(prefix string, meta bool) {
	g.prefix, g.meta = prefix, meta
	acc, rej := prefix+"accept", prefix+"reject"
	g.node(g.f.root, acc, rej)
	g.a.label(rej)
	g.a.op(bpf.RetConstant{Val: 0})
	g.a.label(acc)
	g.a.op(bpf.RetConstant{Val: filterAccept})
}

func (g *filterGen) node(i int, t, f string) {
	n := &g.f.nodes[i]
	switch n.op {
	case opAnd:
		mid := g.newLabel()
		g.node(n.l, mid, f)
		g.a.label(mid)
		g.node(n.r, t, f)
	case opOr:
		mid := g.newLabel()
		g.node(n.l, t, mid)
		g.a.label(mid)
		g.node(n.r, t, f)
	case opNot:
		g.node(n.l, f, t)
	default:
		// A primitive jumps only to its own two stubs, which jump anywhere
		// (unconditional jumps reach past the 255 of conditional ones).
		lt, lf := g.newLabel(), g.newLabel()
		g.prim(&n.prim, lt, lf)
		g.a.label(lt)
		g.a.ja(t)
		g.a.label(lf)
		g.a.ja(f)
	}
}

func (g *filterGen) prim(p *filterPrim, t, f string) {
	shift := uint32(p.shift)
	if g.meta && shift > 0 {
		shift-- // the first tag is not in the frame
	}
	E, L := g.etherOff+4*shift, g.netOff+4*shift
	a := &g.a
	switch p.kind {
	case kVLAN:
		if g.meta && p.shift == 0 {
			if p.vlanID < 0 {
				a.ja(t)
				return
			}
			a.op(bpf.LoadExtension{Num: bpf.ExtVLANTag})
			a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xfff})
			a.jeq(uint32(p.vlanID), t, f)
			return
		}
		yes := g.newLabel()
		a.op(bpf.LoadAbsolute{Off: E, Size: 2})
		a.jeq(0x8100, yes, "")
		a.jeq(0x88a8, yes, "")
		a.jeq(0x9100, yes, f)
		a.label(yes)
		if p.vlanID < 0 {
			a.ja(t)
			return
		}
		a.op(bpf.LoadAbsolute{Off: E + 2, Size: 2})
		a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xfff})
		a.jeq(uint32(p.vlanID), t, f)
	case kProto:
		g.proto(p.proto, E, L, t, f)
	case kHost, kNet:
		a.op(bpf.LoadAbsolute{Off: E, Size: 2})
		if p.v6 {
			a.jeq(0x86dd, "", f)
			g.dir(p.dir, t, f, func(ok, fail string, src bool) {
				off := L + 24
				if src {
					off = L + 8
				}
				g.cmpAddr(p, off, 4, ok, fail)
			})
			return
		}
		arp := f
		if p.proto == pAny {
			arp = g.newLabel()
		}
		a.jeq(0x0800, "", arp)
		g.dir(p.dir, t, f, func(ok, fail string, src bool) {
			off := L + 16
			if src {
				off = L + 12
			}
			g.cmpAddr(p, off, 1, ok, fail)
		})
		if p.proto == pAny { // host and net also match ARP and RARP, as libpcap's
			yes := g.newLabel()
			a.label(arp)
			a.jeq(0x0806, yes, "")
			a.jeq(0x8035, yes, f)
			a.label(yes)
			g.dir(p.dir, t, f, func(ok, fail string, src bool) {
				off := L + 24
				if src {
					off = L + 14
				}
				g.cmpAddr(p, off, 1, ok, fail)
			})
		}
	case kPort, kPortRange:
		protos := []uint32{pSCTP, pTCP, pUDP}
		if p.proto != pAny {
			protos = []uint32{uint32(p.proto)}
		}
		v4, ports6, ports4 := g.newLabel(), g.newLabel(), g.newLabel()
		a.op(bpf.LoadAbsolute{Off: E, Size: 2})
		a.jeq(0x86dd, "", v4)
		a.op(bpf.LoadAbsolute{Off: L + 6, Size: 1})
		g.oneOf(protos, ports6, f)
		a.label(ports6)
		g.dir(p.dir, t, f, func(ok, fail string, src bool) {
			off := L + 42
			if src {
				off = L + 40
			}
			a.op(bpf.LoadAbsolute{Off: off, Size: 2})
			g.cmpPort(p, ok, fail)
		})
		a.label(v4)
		a.jeq(0x0800, "", f)
		a.op(bpf.LoadAbsolute{Off: L + 9, Size: 1})
		g.oneOf(protos, ports4, f)
		a.label(ports4)
		a.op(bpf.LoadAbsolute{Off: L + 6, Size: 2})
		a.jset(0x1fff, f, "") // a later fragment carries no ports
		a.op(bpf.LoadMemShift{Off: L})
		g.dir(p.dir, t, f, func(ok, fail string, src bool) {
			off := L + 2
			if src {
				off = L
			}
			a.op(bpf.LoadIndirect{Off: off, Size: 2})
			g.cmpPort(p, ok, fail)
		})
	}
}

// proto tests ip, ip6, icmp or a transport protocol (over IPv6 also behind
// a fragment header, as libpcap's).
func (g *filterGen) proto(proto int, E, L uint32, t, f string) {
	a := &g.a
	a.op(bpf.LoadAbsolute{Off: E, Size: 2})
	switch proto {
	case pIP:
		a.jeq(0x0800, t, f)
	case pIP6:
		a.jeq(0x86dd, t, f)
	case pICMP:
		a.jeq(0x0800, "", f)
		a.op(bpf.LoadAbsolute{Off: L + 9, Size: 1})
		a.jeq(pICMP, t, f)
	default:
		v6 := g.newLabel()
		a.jeq(0x0800, "", v6)
		a.op(bpf.LoadAbsolute{Off: L + 9, Size: 1})
		a.jeq(uint32(proto), t, f)
		a.label(v6)
		a.jeq(0x86dd, "", f)
		a.op(bpf.LoadAbsolute{Off: L + 6, Size: 1})
		a.jeq(uint32(proto), t, "")
		a.jeq(44, "", f)
		a.op(bpf.LoadAbsolute{Off: L + 40, Size: 1})
		a.jeq(uint32(proto), t, f)
	}
}

// oneOf jumps to t when A is one of vals, else to f.
func (g *filterGen) oneOf(vals []uint32, t, f string) {
	for i, v := range vals {
		if i == len(vals)-1 {
			g.a.jeq(v, t, f)
		} else {
			g.a.jeq(v, t, "")
		}
	}
}

// dir combines a source and a destination test as the direction says.
func (g *filterGen) dir(d int, t, f string, test func(ok, fail string, src bool)) {
	switch d {
	case dSrc:
		test(t, f, true)
	case dDst:
		test(t, f, false)
	case dSrcAndDst:
		nx := g.newLabel()
		test(nx, f, true)
		g.a.label(nx)
		test(t, f, false)
	default:
		nx := g.newLabel()
		test(t, nx, true)
		g.a.label(nx)
		test(t, f, false)
	}
}

// cmpAddr compares words 32-bit words at off with the primitive's address
// under its mask.
func (g *filterGen) cmpAddr(p *filterPrim, off uint32, words int, ok, fail string) {
	last := -1
	for i := range words {
		if binary.BigEndian.Uint32(p.mask[4*i:]) != 0 {
			last = i
		}
	}
	if last < 0 { // net 0/0
		g.a.ja(ok)
		return
	}
	for i := 0; i <= last; i++ {
		m := binary.BigEndian.Uint32(p.mask[4*i:])
		if m == 0 {
			continue
		}
		g.a.op(bpf.LoadAbsolute{Off: off + uint32(4*i), Size: 4})
		if m != 0xffffffff {
			g.a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m})
		}
		next := ""
		if i == last {
			next = ok
		}
		g.a.jeq(binary.BigEndian.Uint32(p.addr[4*i:]), next, fail)
	}
}

// cmpPort tests the port in A.
func (g *filterGen) cmpPort(p *filterPrim, ok, fail string) {
	if p.kind == kPort {
		g.a.jeq(uint32(p.lo), ok, fail)
		return
	}
	g.a.ins = append(g.a.ins, asmIns{jump: true, cond: bpf.JumpGreaterOrEqual, val: uint32(p.lo), jf: fail})
	g.a.ins = append(g.a.ins, asmIns{jump: true, cond: bpf.JumpGreaterThan, val: uint32(p.hi), jt: fail, jf: ok})
}

// Matcher runs a filter's program on frames in user space.
type Matcher struct {
	vm *bpf.VM
}

// Matcher returns the filter's evaluator for frames of the link type.
func (f *Filter) Matcher(link layers.LinkType) (*Matcher, error) {
	prog, err := f.Program(link)
	if err != nil {
		return nil, err
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilterLimit, err)
	}
	return &Matcher{vm: vm}, nil
}

// Match reports whether the filter keeps the frame. A frame too short for
// a field the program reads is dropped, as by libpcap.
func (m *Matcher) Match(frame []byte) bool {
	n, err := m.vm.Run(frame)
	return err == nil && n > 0
}

// After returns the program a live capture attaches: base (the agent's
// own cut, UDPPortFilter or SIPPortFilter) and then, for the frames base
// keeps, the filter's KernelProgram. A nil filter returns base.
func (f *Filter) After(base []bpf.Instruction) ([]bpf.Instruction, error) {
	if f == nil {
		return base, nil
	}
	prog, err := f.KernelProgram()
	if err != nil {
		return nil, err
	}
	return AndPrograms(base, prog), nil
}

// AndPrograms returns a program that runs first and, where first would
// keep the frame, then (whose verdict and snap length decide). first
// must end in constant returns only.
func AndPrograms(first, then []bpf.Instruction) []bpf.Instruction {
	if len(then) == 0 {
		return first
	}
	if len(first) == 0 {
		return then
	}
	out := make([]bpf.Instruction, 0, len(first)+len(then))
	for i, ins := range first {
		if r, ok := ins.(bpf.RetConstant); ok && r.Val != 0 {
			ins = bpf.Jump{Skip: uint32(len(first) - i - 1)}
		}
		out = append(out, ins)
	}
	return append(out, then...)
}
