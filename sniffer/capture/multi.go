package capture

import (
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/bpf"
)

// Several interfaces in one capture (interface = eth0,eth1 as in
// voipmonitor.conf, or any): one AF_PACKET socket bound to no interface sees
// every interface's frames, and a BPF prefix on the frame's interface index
// keeps the listed ones. One ring, one reader, frames in the kernel's order,
// no copy. A frame seen on two of them (a mirror port and the host's own
// interface) reaches the sniffer twice; its deduplication handles it once.

// AnyInterface captures on every interface.
const AnyInterface = "any"

// Interfaces splits an interface option: a name, a comma list, or any.
func Interfaces(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Several reports whether an interface option names more than one
// interface (a list or any): the same packet may then be captured twice.
func Several(s string) bool {
	names := Interfaces(s)
	return len(names) > 1 || len(names) == 1 && names[0] == AnyInterface
}

// interfaceFilter returns the BPF prefix that accepts frames of the named
// interfaces only (nil for any) and jumps to the program that follows.
func interfaceFilter(names []string) ([]bpf.Instruction, error) {
	var idx []uint32
	for _, n := range names {
		if n == AnyInterface {
			return nil, nil
		}
		ifc, err := net.InterfaceByName(n)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", n, err)
		}
		idx = append(idx, uint32(ifc.Index))
	}
	prog := []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtInterfaceIndex}}
	for i, x := range idx {
		// Match: skip the remaining compares and the reject.
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: x, SkipTrue: uint8(len(idx) - i)})
	}
	return append(prog, bpf.RetConstant{Val: 0}), nil
}
