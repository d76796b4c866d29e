package sniffer

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/hep"
	"pbx-agent/sniffer/hep/heptest"
)

// checkingSender is a HEPOutput that runs every packet it is given through
// the byte-level HEP3 check and a decode before the real sender queues it.
type checkingSender struct {
	t    *testing.T
	next *hep.Sender
	buf  []byte
	n    int
}

func (c *checkingSender) Send(p *hep.Packet) bool {
	var err error
	if c.buf, err = hep.AppendMarshal(c.buf[:0], p); err != nil {
		c.t.Errorf("packet %d not encodable: %v", c.n, err)
		return false
	}
	if err := heptest.Check(c.buf); err != nil {
		c.t.Errorf("packet %d fails the HEP3 check: %v", c.n, err)
	}
	var q hep.Packet
	if err := q.Unmarshal(c.buf); err != nil || q.Src != p.Src || q.Dst != p.Dst || string(q.Payload) != string(p.Payload) {
		c.t.Errorf("packet %d does not decode back: %v", c.n, err)
	}
	c.n++
	return c.next.Send(p)
}

// roundTrip replays c on agent A, which sends HEP to agent B listening on
// 127.0.0.1 (network is udp or tcp); it returns A's and B's calls.
func roundTrip(t *testing.T, c captureCase, network string) (a, b []call.CDR, ra, rb []call.Register) {
	t.Helper()
	var mu sync.Mutex
	snB := New(Config{HEP: HEPInput{Enabled: true, Password: "rt-secret", Concurrent: true},
		Call: call.Config{IdleTimeout: -1, OnCallEnd: func(c *call.CDR) { mu.Lock(); b = append(b, *c); mu.Unlock() },
			OnRegister: func(r *call.Register) { mu.Lock(); rb = append(rb, *r); mu.Unlock() }}})
	// B takes the replayed capture's times as A sent them: its arrival
	// clock is past every capture's packets (one public capture jumps to
	// 2071), so none is ahead of its arrival (hepMaxAhead).
	arrival := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	handle := func(b []byte, _ time.Time) { snB.HandleHEP(b, arrival) }
	l, err := hep.Listen(hep.ListenConfig{Addr: "127.0.0.1:0", UDP: network == "udp", TCP: network == "tcp", Handler: handle})
	if err != nil {
		t.Fatal(err)
	}
	defer testkit.Run(t, l.Serve)()
	addr := l.TCPAddr()
	if network == "udp" {
		addr = l.UDPAddr()
	}
	out, err := hep.NewSender(hep.SenderConfig{Addr: addr.String(), Network: network, CaptureID: 4711, Password: "rt-secret", NodeName: "agent-a", Queue: 1 << 17})
	if err != nil {
		t.Fatal(err)
	}
	defer testkit.Run(t, out.Run)()

	ps, err := ParsePorts(c.ports)
	if err != nil {
		t.Fatal(err)
	}
	snA := New(Config{SIPPorts: ps, HEPOut: &checkingSender{t: t, next: out},
		Call: call.Config{IdleTimeout: -1, OnCallEnd: func(c *call.CDR) { a = append(a, *c) },
			OnRegister: func(r *call.Register) { ra = append(ra, *r) }}})
	if err := snA.ReplayFile(context.Background(), c.path, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	snA.Flush()
	// Wait until B received what A sent.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, ls := out.Stats(), l.Stats()
		got := ls.Datagrams + ls.TCPFrames
		if st.Dropped != 0 {
			t.Fatalf("sender dropped %d packets", st.Dropped)
		}
		if st.Sent+st.Failed == st.Queued && got >= st.Sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B received %d of %d HEP packets (sender %+v)", got, st.Queued, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	snB.Flush()
	snB.lock()
	snB.publish()
	snB.unlock()
	if st := snB.Stats().HEP; st.Errors != 0 || st.AuthFailed != 0 {
		t.Errorf("B: HEP stats %+v", st)
	}
	return a, b, ra, rb
}

// TestHEPRoundTrip is the round trip: agent A replays a capture and
// sends HEP for every SIP message (and RTCP, stream reports) to agent B,
// which sees the same calls: Call-ID, response codes, parties, times. B
// has no RTP, so call end (last packet) and stream figures are not
// compared. The repository's captures always run (UDP and TCP); the
// public ones of ../shared/fixtures when present.
func TestHEPRoundTrip(t *testing.T) {
	type run struct {
		c       captureCase
		network string
	}
	var runs []run
	for _, c := range repoCaptures(t) {
		runs = append(runs, run{c, "tcp"}, run{c, "udp"})
	}
	runs = append(runs, run{captureCase{repoTestdata(t, hepTLSPcap), "5060"}, "tcp"})
	for _, r := range runs {
		t.Run(filepath.Base(r.c.path)+"/"+r.network, func(t *testing.T) { compareRoundTrip(t, r.c, r.network) })
	}
	t.Run("shared", func(t *testing.T) {
		for _, c := range sharedCaptures(t) {
			t.Run(filepath.Base(c.path), func(t *testing.T) { compareRoundTrip(t, c, "tcp") })
		}
	})
}

func repoTestdata(t *testing.T, name string) string {
	return filepath.Join(filepath.Dir(repoCaptures(t)[0].path), name)
}

func compareRoundTrip(t *testing.T, c captureCase, network string) {
	a, b, ra, rb := roundTrip(t, c, network)
	if len(a)+len(ra) == 0 {
		t.Fatalf("A saw no call and no REGISTER in %s", c.path)
	}
	t.Logf("A: %d calls, %d REGISTER records; B: %d calls, %d REGISTER records", len(a), len(ra), len(b), len(rb))
	if len(ra) != len(rb) {
		t.Errorf("A has %d REGISTER records, B %d", len(ra), len(rb))
	}
	for i := range min(len(ra), len(rb)) {
		x, y := ra[i], rb[i]
		if x.CallID != y.CallID || x.State != y.State || x.ToNum != y.ToNum || x.FromNum != y.FromNum || !x.Time.Equal(y.Time) ||
			x.CallerIP != y.CallerIP || x.LastResponseNum != y.LastResponseNum {
			t.Errorf("REGISTER %d differs:\nA %+v\nB %+v", i, x, y)
		}
	}
	key := func(x call.CDR) string { return x.CallID }
	byID := map[string]call.CDR{}
	for _, x := range b {
		byID[key(x)] = x
	}
	if len(b) != len(a) {
		t.Errorf("A has %d calls, B %d", len(a), len(b))
	}
	for _, x := range a {
		y, ok := byID[key(x)]
		if !ok {
			t.Errorf("call %s missing on B", x.CallID)
			continue
		}
		if d := diffCall(&x, &y); d != "" {
			t.Errorf("call %s differs on B: %s", x.CallID, d)
		}
	}
}

// diffCall names the first differing field of the round trip's comparison.
func diffCall(a, b *call.CDR) string {
	eqT := func(x, y time.Time) bool { return x.Equal(y) }
	switch {
	case a.LastSIPResponseNum != b.LastSIPResponseNum || a.LastSIPResponse != b.LastSIPResponse:
		return fmt.Sprintf("last response %d %q vs %d %q", a.LastSIPResponseNum, a.LastSIPResponse, b.LastSIPResponseNum, b.LastSIPResponse)
	case !slices.Equal(a.Responses, b.Responses):
		return fmt.Sprintf("responses %v vs %v", a.Responses, b.Responses)
	case a.Caller != b.Caller || a.Called != b.Called || a.CallerDomain != b.CallerDomain || a.CalledDomain != b.CalledDomain || a.CallerName != b.CallerName:
		return fmt.Sprintf("parties %s@%s→%s@%s vs %s@%s→%s@%s", a.Caller, a.CallerDomain, a.Called, a.CalledDomain, b.Caller, b.CallerDomain, b.Called, b.CalledDomain)
	case a.CallerIP != b.CallerIP || a.CalledIP != b.CalledIP || a.CallerPort != b.CallerPort || a.CalledPort != b.CalledPort:
		return fmt.Sprintf("addresses %v:%d→%v:%d vs %v:%d→%v:%d", a.CallerIP, a.CallerPort, a.CalledIP, a.CalledPort, b.CallerIP, b.CallerPort, b.CalledIP, b.CalledPort)
	case !eqT(a.CallDate, b.CallDate) || !eqT(a.ProgressTime, b.ProgressTime) || !eqT(a.ConnectTime, b.ConnectTime) || !eqT(a.ByeTime, b.ByeTime):
		return fmt.Sprintf("times %v/%v/%v/%v vs %v/%v/%v/%v", a.CallDate, a.ProgressTime, a.ConnectTime, a.ByeTime, b.CallDate, b.ProgressTime, b.ConnectTime, b.ByeTime)
	case len(a.Streams) == 0 && !eqT(a.CallEnd, b.CallEnd):
		return fmt.Sprintf("call end %v vs %v", a.CallEnd, b.CallEnd)
	case a.Bye != b.Bye || a.WhoHanged != b.WhoHanged || a.ReInvites != b.ReInvites:
		return fmt.Sprintf("bye %d/%s/%d vs %d/%s/%d", a.Bye, a.WhoHanged, a.ReInvites, b.Bye, b.WhoHanged, b.ReInvites)
	}
	return ""
}
