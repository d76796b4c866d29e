package sniffer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/simulate"
)

// netns is a network namespace made for one test, with veth pairs in it:
// nothing it carries leaves the namespace.
type netns struct {
	t    *testing.T
	name string
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace and veth interfaces; skipping")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 (ip) not installed; skipping")
	}
	ns := &netns{t: t, name: fmt.Sprintf("pbxwire-%d", os.Getpid())}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here (%v: %s); skipping", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns.name).Run() })
	return ns
}

func (ns *netns) ip(args ...string) {
	ns.t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns.name}, args...)...).CombinedOutput(); err != nil {
		ns.t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// vethPair makes a veth pair a<->b in the namespace, both up.
func (ns *netns) vethPair(a, b string) {
	ns.ip("link", "add", a, "type", "veth", "peer", "name", b)
	ns.ip("link", "set", a, "up")
	ns.ip("link", "set", b, "up")
}

// inside runs fn on a thread moved into the namespace: sockets it opens
// stay in the namespace afterwards.
func (ns *netns) inside(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns.name)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return err
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			panic("cannot leave the test's network namespace: " + err.Error())
		}
	}()
	return fn()
}

// injector sends raw frames out of one interface (AF_PACKET).
type injector struct {
	fd int
	sa unix.SockaddrLinklayer
}

func newInjector(name string) (*injector, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return nil, err
	}
	return &injector{fd: fd, sa: unix.SockaddrLinklayer{Ifindex: ifc.Index}}, nil
}

func (in *injector) send(frame []byte) error { return unix.Sendto(in.fd, frame, 0, &in.sa) }

func (in *injector) close() { unix.Close(in.fd) }

// TestLiveSeveralInterfaces captures `interface = vethA,vethB` in a network
// namespace made by the test: a call whose packets arrive on vethA only and
// one on vethB only are each seen once, in one call table, and a call whose
// every frame is mirrored onto both interfaces is counted once (its RTP
// figures are the generator's, not doubled).
func TestLiveSeveralInterfaces(t *testing.T) {
	ns := newNetns(t)
	ns.vethPair("vethA", "vethA2")
	ns.vethPair("vethB", "vethB2")
	ns.vethPair("vethC", "vethC2") // captured by nobody: must stay unseen
	var src capture.Live
	var toA, toB, toC *injector
	err := ns.inside(func() error {
		var err error
		if src, err = capture.OpenLive(capture.LiveOptions{Interface: "vethA,vethB", Filter: capture.UDPPortFilter(),
			BlockSize: 1 << 20, NumBlocks: 8}); err != nil {
			return err
		}
		if toA, err = newInjector("vethA2"); err != nil {
			return err
		}
		if toB, err = newInjector("vethB2"); err != nil {
			return err
		}
		toC, err = newInjector("vethC2")
		return err
	})
	if err != nil {
		t.Fatalf("setting up the capture in the namespace: %v", err)
	}
	defer src.Close()
	defer toA.close()
	defer toB.close()
	defer toC.close()

	gen, err := simulate.New(simulate.Options{Calls: 4, Duration: time.Second, CPS: 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan call.CDR, 8)
	sn := New(Config{Deduplicate: capture.Several("vethA,vethB"),
		Call: call.Config{OnCallEnd: func(c *call.CDR) { calls <- *c }}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sn.Run(ctx, src, RunOptions{}) }()

	// Call i's client is 10.1.0.i: call 0 on vethA, 1 on vethB, 2 mirrored
	// onto both, 3 on the uncaptured vethC.
	dec, _ := decode.New(gen.LinkType())
	var p decode.Packet
	mirrored := 0
	for n := 0; ; n++ {
		data, _, err := gen.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := dec.Decode(data, time.Time{}, &p); !ok {
			continue // a fragment: not generated with the default MTU
		}
		client := p.Src.Addr()
		if client == netip.MustParseAddr("192.0.2.10") {
			client = p.Dst.Addr()
		}
		var outs []*injector
		switch client.As4()[3] {
		case 0:
			outs = []*injector{toA}
		case 1:
			outs = []*injector{toB}
		case 2:
			outs, mirrored = []*injector{toA, toB}, mirrored+1
		default:
			outs = []*injector{toC}
		}
		for _, out := range outs {
			if err := out.send(data); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		if n%50 == 49 {
			time.Sleep(time.Millisecond) // a gentle pace: the ring never overflows
		}
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	sn.Flush()
	close(calls)
	got := map[string]call.CDR{}
	for c := range calls {
		if _, dup := got[c.CallID]; dup {
			t.Errorf("%s reported twice", c.CallID)
		}
		got[c.CallID] = c
	}
	truth := gen.Truth()
	for i, w := range truth.Calls {
		g, ok := got[w.CallID]
		if i == 3 {
			if ok {
				t.Errorf("%s: seen on an interface not captured", w.CallID)
			}
			continue
		}
		if !ok || g.LastSIPResponseNum != w.FinalCode {
			t.Errorf("%s: got %v (final %d), truth final %d", w.CallID, ok, g.LastSIPResponseNum, w.FinalCode)
		}
	}
	exact, streams := 0, 0
	for _, w := range truth.Streams {
		if w.CallID == truth.Calls[3].CallID {
			continue
		}
		streams++
		for _, s := range got[w.CallID].Streams {
			if s.SSRC == w.SSRC && s.Received == w.Received() && s.Lost == w.Dropped {
				exact++
			}
		}
	}
	st := sn.Stats()
	if exact != streams || st.Duplicates != uint64(mirrored) {
		t.Errorf("%d/%d streams exact; %d copies dropped, %d frames mirrored onto both", exact, streams, st.Duplicates, mirrored)
	}
	t.Logf("vethA,vethB: %d calls, %d/%d streams exact, %d mirrored frames counted once (%d copies dropped), kernel drops %d",
		len(got), exact, streams, mirrored, st.Duplicates, st.KernelDrops)
}
