package capture

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/google/gopacket"
	"golang.org/x/net/bpf"

	"pbx-agent/internal/testkit"
)

// TestLoopbackCountedOnce pins issue 16 item 1: AF_PACKET delivers every frame
// sent on lo twice (PACKET_OUTGOING, then incoming); a live source must yield
// it once, as libpcap does — bound to lo, and bound to every interface ("any").
// It needs CAP_NET_RAW (root in CI); without it the test skips.
func TestLoopbackCountedOnce(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, iface string
		filter      []bpf.Instruction
	}{
		{"lo", "lo", nil},
		{"lo+udp filter", "lo", UDPPortFilter()},
		{"any", "", UDPPortFilter()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := bpf.Assemble(skipLoopbackOutgoing(tc.iface, tc.filter, ifs))
			if err != nil {
				t.Fatal(err)
			}
			src, err := openLive(LiveOptions{Interface: tc.iface, Snaplen: 65535, BlockSize: 1 << 16, NumBlocks: 8}, raw)
			if err != nil {
				t.Skipf("live capture not permitted here (%v); needs CAP_NET_RAW", err)
			}
			defer src.Close()
			conn := testkit.LoopbackUDP(t)
			marker := []byte(fmt.Sprintf("count-once-%d", time.Now().UnixNano()))
			const n = 40
			for i := 0; i < n; i++ {
				if _, err := conn.Write(marker); err != nil {
					t.Fatal(err)
				}
			}
			if got := readMarked(t, src, marker, n, nil); got != n {
				t.Errorf("%d datagrams sent on lo, %d frames captured (want each once)", n, got)
			}
		})
	}
}

// TestSkipLoopbackOutgoingProgram checks the program's shape without a socket.
func TestSkipLoopbackOutgoingProgram(t *testing.T) {
	ifs := []net.Interface{
		{Index: 1, Name: "lo", Flags: net.FlagUp | net.FlagLoopback},
		{Index: 2, Name: "eth0", Flags: net.FlagUp},
	}
	typeTest := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipFalse: 1},
		bpf.RetConstant{Val: 0},
	}
	f := UDPPortFilter()
	tests := []struct {
		name, iface string
		filter      []bpf.Instruction
		want        []bpf.Instruction
	}{
		{"ethernet interface unchanged", "eth0", f, f},
		{"ethernet without filter", "eth0", nil, nil},
		{"lo", "lo", f, append(append([]bpf.Instruction{}, typeTest...), f...)},
		{"lo without filter", "lo", nil, append(append([]bpf.Instruction{}, typeTest...), bpf.RetConstant{Val: 0xffffffff})},
		{"any", "any", f, append(append([]bpf.Instruction{
			bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 1},
			bpf.Jump{Skip: 3},
		}, typeTest...), f...)},
		{"any without loopback", "any", f, f},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list := ifs
			if tc.name == "any without loopback" {
				list = ifs[1:]
			}
			got := skipLoopbackOutgoing(tc.iface, tc.filter, list)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
			if len(got) > 0 {
				if _, err := bpf.Assemble(got); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestLiveFilterInKernel: a filter attached to a live socket (after the
// agent's cut, as the daemon does) keeps the excluded datagrams out of the
// ring. It needs CAP_NET_RAW; without it the test skips.
func TestLiveFilterInKernel(t *testing.T) {
	kept, dropped := testkit.LoopbackUDP(t), testkit.LoopbackUDP(t)
	port := dropped.RemoteAddr().(*net.UDPAddr).Port
	f, err := CompileFilter(fmt.Sprintf("udp and not dst port %d", port))
	if err != nil {
		t.Fatal(err)
	}
	prog, err := f.After(UDPPortFilter())
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenLive(LiveOptions{Interface: "lo", Filter: prog, BlockSize: 1 << 16, NumBlocks: 8})
	if err != nil {
		t.Skipf("live capture not permitted here (%v); needs CAP_NET_RAW", err)
	}
	defer src.Close()
	marker := []byte(fmt.Sprintf("filter-%d", time.Now().UnixNano()))
	const n = 20
	for range n {
		if _, err := dropped.Write(marker); err != nil {
			t.Fatal(err)
		}
		if _, err := kept.Write(marker); err != nil {
			t.Fatal(err)
		}
	}
	got := readMarked(t, src, marker, n, func(data []byte) {
		if len(data) >= 38 && int(data[36])<<8|int(data[37]) == port {
			t.Fatalf("a datagram to the excluded port %d reached the ring", port)
		}
	})
	if got != n {
		t.Errorf("%d datagrams to the kept port, %d captured", n, got)
	}
}

// readMarked reads src for up to 3 s, until n frames holding marker came,
// and returns how many came; check, when set, sees each of them.
func readMarked(t *testing.T, src interface {
	ReadPacket() ([]byte, gopacket.CaptureInfo, error)
}, marker []byte, n int, check func(data []byte)) int {
	t.Helper()
	got := 0
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		data, _, err := src.ReadPacket()
		if errors.Is(err, ErrTimeout) {
			if got >= n {
				break
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, marker) {
			got++
			if check != nil {
				check(data)
			}
		}
	}
	return got
}
