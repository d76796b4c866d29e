package capture

import (
	"bytes"
	"errors"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// kernelKeeps attaches prog to one end of a datagram socket pair, sends
// every frame from the other end and returns those that arrive: the kernel
// runs the program on the datagram as on a captured frame (no VLAN
// metadata: the frame path of KernelProgram).
func kernelKeeps(prog []bpf.Instruction, frames [][]byte) ([][]byte, error) {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	ins := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		ins[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	if err := unix.SetsockoptSockFprog(fds[1], unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}); err != nil {
		return nil, err
	}
	var kept [][]byte
	buf := make([]byte, 1<<16)
	for _, fr := range frames {
		if _, err := unix.Write(fds[0], fr); err != nil {
			return nil, err
		}
		n, _, err := unix.Recvfrom(fds[1], buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return nil, err
		}
		kept = append(kept, bytes.Clone(buf[:n]))
	}
	return kept, nil
}
