// Package portowner finds which process holds a listening TCP port, from
// /proc/net/tcp{,6} (the socket's inode) and /proc/*/fd (who has that
// inode open), so a start-up failure can name it.
package portowner

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Owner is a process holding a listening socket.
type Owner struct {
	PID  int
	Name string // /proc/PID/comm
}

func (o Owner) String() string { return fmt.Sprintf("%s (pid %d)", o.Name, o.PID) }

// Find returns the process listening on TCP port, if it can be seen: the
// port is in /proc/net/tcp or tcp6 in state LISTEN and the process's fds
// are readable (another user's are not, without CAP_SYS_PTRACE).
func Find(ctx context.Context, port int) (Owner, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		err = listeningInodes(fh, port, inodes)
		fh.Close()
		if err != nil {
			return Owner{}, err
		}
	}
	if len(inodes) == 0 {
		return Owner{}, ErrNotFound
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return Owner{}, err
	}
	for _, p := range procs {
		if ctx.Err() != nil {
			return Owner{}, ctx.Err()
		}
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if holds(pid, inodes) {
			comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
			return Owner{PID: pid, Name: strings.TrimSpace(string(comm))}, nil
		}
	}
	return Owner{}, ErrNotFound
}

// listeningInodes adds the inodes of the sockets listening on port found in
// one /proc/net/tcp-format table.
func listeningInodes(r io.Reader, port int, into map[string]bool) error {
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" { // 0A = TCP_LISTEN
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			into[f[9]] = true
		}
	}
	return sc.Err()
}

func holds(pid int, inodes map[string]bool) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil || !strings.HasPrefix(target, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] {
			return true
		}
	}
	return false
}
