package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"pbx-agent/agent/config"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/capture"
)

// TestCaptureSets: the interfaces without interface_libpcap_filter
// entries stay one capture with filter; each entry is a capture of its own
// with (filter) and (entry).
func TestCaptureSets(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []captureSet
	}{
		{name: "no entries", in: "interface = eth0,eth1\nfilter = udp\n", want: []captureSet{{"eth0,eth1", "udp"}}},
		{name: "entries split one interface", in: "interface = eth0\ninterface_libpcap_filter = eth0 : port 5060; eth0 : not port 5060\n",
			want: []captureSet{{"eth0", "port 5060"}, {"eth0", "not port 5060"}}},
		{name: "other interfaces stay together", in: "interface = eth0,eth1,eth2\nfilter = udp\ninterface_libpcap_filter = eth1 : port 5060\n",
			want: []captureSet{{"eth0,eth2", "udp"}, {"eth1", "(udp) and (port 5060)"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.conf", []byte(tt.in), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := captureSets(cfg); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestInterfaceFiltersLive: two interface_libpcap_filter entries on lo
// (udp port A, udp port B) open a socket each, as the daemon opens them;
// every datagram to A reaches the first once, every datagram to B the
// second once, and neither sees a datagram to C nor the other's.
// Needs CAP_NET_RAW; without it the test skips.
func TestInterfaceFiltersLive(t *testing.T) {
	a, b, c := testkit.LoopbackUDP(t), testkit.LoopbackUDP(t), testkit.LoopbackUDP(t)
	port := func(conn net.Conn) int { return conn.RemoteAddr().(*net.UDPAddr).Port }
	pa, pb := port(a), port(b)
	cfg, err := config.Parse("t.conf", []byte(fmt.Sprintf("interface = lo\nringbuffer = 8\nrtpthreads = 4\n"+
		"interface_libpcap_filter = lo : udp port %d; lo : udp port %d\n", pa, pb)), nil)
	if err != nil {
		t.Fatal(err)
	}
	sets := captureSets(cfg)
	if len(sets) != 2 {
		t.Fatalf("captures %v, want 2", sets)
	}
	d := &daemon{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	var srcs [][]capture.Live
	for i, set := range sets {
		lives, err := d.openCapture(set, capture.UDPPortFilter(), i, 2)
		if err != nil {
			t.Skipf("live capture not permitted here (%v); needs CAP_NET_RAW", err)
		}
		for _, l := range lives {
			defer l.Close()
		}
		srcs = append(srcs, lives)
	}
	marker := []byte(fmt.Sprintf("ifilter-%d", time.Now().UnixNano()))
	const n = 20
	for range n {
		for _, conn := range []net.Conn{a, b, c} {
			if _, err := conn.Write(marker); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, want := range []int{pa, pb} {
		got := map[int]int{} // datagrams by destination port
		total := 0
		count := func(data []byte) {
			if len(data) >= 38 {
				got[int(data[36])<<8|int(data[37])]++
				total++
			}
		}
		// The frames show once their ring block is retired: read the
		// entry's sockets until all came (or 3 s passed), then once more
		// until each is quiet, for any frame that should not be there.
		for deadline := time.Now().Add(3 * time.Second); total < n && time.Now().Before(deadline); {
			for _, src := range srcs[i] {
				readAll(t, src, marker, count)
			}
		}
		for _, src := range srcs[i] {
			readAll(t, src, marker, count)
		}
		if len(got) != 1 || got[want] != n {
			t.Errorf("entry %d (udp port %d): datagrams by destination port %v, want %d to %d only", i, want, got, n, want)
		}
	}
}

// readAll reads src until it has been quiet for a poll interval (at most
// 3 s) and calls seen for each frame holding marker.
func readAll(t *testing.T, src capture.Live, marker []byte, seen func([]byte)) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		data, _, err := src.ReadPacket()
		if errors.Is(err, capture.ErrTimeout) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, marker) {
			seen(data)
		}
	}
}
