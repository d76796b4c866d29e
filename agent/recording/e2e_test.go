package recording

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"pbx-agent/ami"
	"pbx-agent/ami/amitest"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/fixture"
)

const (
	callerChan = "PJSIP/1001-00000009"
	calleeChan = "PJSIP/1002-0000000a"
	linkedid   = "1795560337.9"
	callIDA    = "f431e3956bf2ebd6"
	callIDB    = "63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f"
)

func amiFile(t testing.TB, name string) string { return fixture.Repo(t, "testdata", "ami", name) }

// addAnswers queues the recorded answers of the named actions only.
func addAnswers(a *amitest.Answers, rec *amitest.Recording, actions ...string) {
	for _, m := range rec.Sent {
		if !slices.Contains(actions, m.Get("Action")) {
			continue
		}
		var raw []byte
		for _, p := range rec.Packets {
			if p.Msg.ActionID() == m.ActionID() {
				raw = append(raw, p.Raw...)
			}
		}
		if raw != nil {
			a.Add(m.Get("Action"), m.Get("Channel"), m.Get("Variable"), m.ActionID(), raw)
		}
	}
}

// addSlice queues the packets of a cut-out answer file whose ActionID is
// id, for any channel.
func addSlice(t testing.TB, a *amitest.Answers, action, file, id string) {
	t.Helper()
	raw, err := os.ReadFile(amiFile(t, file))
	if err != nil {
		t.Fatal(err)
	}
	_, pkts, err := amitest.Split(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if p.Msg.ActionID() == id {
			a.Add(action, "", "", id, p.Raw)
		}
	}
}

// wire records what the client wrote on each connection.
type wire struct {
	mu    sync.Mutex
	conns []*teeConn
}

type teeConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *teeConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *teeConn) sent() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (w *wire) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &teeConn{Conn: nc}
	w.mu.Lock()
	w.conns = append(w.conns, tc)
	w.mu.Unlock()
	return tc, nil
}

func (w *wire) conn(i int) *teeConn {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i >= len(w.conns) {
		return nil
	}
	return w.conns[i]
}

var actionIDLine = regexp.MustCompile(`(?m)^ActionID: [^\r\n]*\r\n`)

// packets splits a client byte stream into request packets with the
// ActionID line cut out (Asterisk accepts it anywhere; our client writes it
// second, the recording client last), keeping the remaining bytes exactly.
func packets(b []byte, action string) []string {
	var out []string
	for _, p := range strings.SplitAfter(string(b), "\r\n\r\n") {
		if strings.HasPrefix(p, "Action: "+action+"\r\n") {
			out = append(out, actionIDLine.ReplaceAllString(p, ""))
		}
	}
	return out
}

// recordedRequest returns the recorded request with that ActionID, ActionID
// line cut out.
func recordedRequest(t testing.TB, file, id string) string {
	t.Helper()
	b, err := os.ReadFile(amiFile(t, file))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.SplitAfter(string(b), "\r\n\r\n") {
		if strings.Contains(p, "\r\nActionID: "+id+"\r\n") {
			return actionIDLine.ReplaceAllString(p, "")
		}
	}
	t.Fatalf("%s: no request %s", file, id)
	return ""
}

// fakeAsterisk serves the answered scenario's AMI session up to the moment
// the recording client muted MixMonitor (the call is talking then), with the
// recorded answers for Getvar, MixMonitorMute and Pause/UnpauseMonitor.
func fakeAsterisk(t *testing.T, monitor bool) *amitest.Server {
	t.Helper()
	call := amitest.LoadFiles(t, amiFile(t, "ami-call-answered.raw"), amiFile(t, "ami-call-answered.sent.raw"))
	actions := amitest.LoadFiles(t, amiFile(t, "ami-actions-answered.raw"), amiFile(t, "ami-actions-answered.sent.raw"))
	var events []amitest.Packet
	for _, p := range call.Events() {
		if p.Msg.Event() == "MixMonitorMute" {
			break
		}
		events = append(events, p)
	}
	answers := amitest.NewAnswers()
	addAnswers(answers, call, "MixMonitorMute", "Getvar")
	addAnswers(answers, actions, "Getvar")
	if monitor {
		addSlice(t, answers, "PauseMonitor", "ami-pausemonitor-unpausemonitor.raw", "pausemon-1")
		addSlice(t, answers, "UnpauseMonitor", "ami-pausemonitor-unpausemonitor.raw", "unpausemon-1")
	}
	// The stream starts before the call: the first resync finds no channel.
	first := amitest.NewAnswers()
	first.AddFile(t, "CoreShowChannels", "", "", amiFile(t, "ami-coreshowchannels-empty.raw"))
	answers.AddFile(t, "CoreShowChannels", "", "", amiFile(t, "ami-coreshowchannels.raw"))
	srv := &amitest.Server{Users: map[string]string{"monitor": "monpass"}, Answers: answers,
		Sessions: []amitest.Session{{Events: events, StartAfter: "CoreShowChannels", Answers: first}, {}}}
	srv.Start(t)
	return srv
}

// startAMI runs a client against srv and waits until the tracker knows both
// legs of the talking call: MixMonitor on the caller, both Call-IDs.
func startAMI(t *testing.T, srv *amitest.Server, w *wire) (*ami.Client, *ami.Subscription) {
	t.Helper()
	c := ami.New(ami.Config{Addr: srv.Addr(), Username: "monitor", Secret: "monpass", Dial: w.dial,
		PingInterval: -1, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	sub := c.Subscribe(4096)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	<-srv.StreamDone
	for i := 0; ; i++ {
		a, _ := c.Tracker().Channel(linkedid)
		b, _ := c.Tracker().Channel("1795560337.10")
		if a.Recording && a.CallID == callIDA && b.CallID == callIDB {
			break
		}
		if i > 2000 {
			t.Fatalf("tracker never learned the call: %+v %+v", a, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c, sub
}

type rtpCount struct{ paused, inInterval int }

// TestEndToEnd replays the answered call: the pcap through the sniffer and
// the AMI session through the fake Asterisk, in order; pausecall 3 s into
// the talk, unpausecall 3 s later. Both SIP legs (A: phone↔Asterisk, B:
// Asterisk↔phone) are paused in the sniffer, MixMonitor is muted on the
// caller's channel (the only one recording), the legacy Monitor is paused on
// both channels; the CDRs carry the paused interval and exactly the RTP
// packets inside it were seen while paused.
func TestEndToEnd(t *testing.T) {
	srv := fakeAsterisk(t, true)
	w := &wire{}
	client, _ := startAMI(t, srv, w)

	var cdrs []*call.CDR
	sn := sniffer.New(sniffer.Config{Call: call.Config{IdleTimeout: -1, OnCallEnd: func(c *call.CDR) { cdrs = append(cdrs, c) }}})
	var audit []Entry
	orch := New(Config{Calls: sn.Table(), AMI: client, Channels: client.Tracker(), Audit: func(e Entry) { audit = append(audit, e) }})

	src, err := capture.OpenFile(fixture.Repo(t, "testdata", "pcap", "asterisk-call-answered.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	t1 := time.Unix(1795560343, 500_000_000) // answered at ≈340.46, BYE at ≈349.47
	t2 := time.Unix(1795560346, 500_000_000)
	var (
		last          time.Time
		pausedAt      time.Time
		resumedAt     time.Time
		results       []Result
		counts        = map[uint64]*rtpCount{}
		refA, refB    uint64
		ctx           = WithRequester(context.Background(), Requester{User: "agent7", Source: "192.0.2.7", Via: "test", Reason: "card number"})
		pauseOrResume = func(on bool) {
			sn.Tick(last) // the table's clock is the packet clock; bring it to the last packet
			began := time.Now()
			res, err := orch.Pause(ctx, refA, on)
			t.Logf("pause=%v took %v (2 sniffer legs + 3 AMI actions over loopback)", on, time.Since(began))
			if err != nil {
				t.Fatalf("pause %v: %v (%s)", on, err, res.Summary())
			}
			results = append(results, res)
		}
	)
	for data, ci := range fixture.Packets(t, src.ReadPacket) {
		ts := ci.Timestamp
		if pausedAt.IsZero() && !ts.Before(t1) {
			refA, _ = sn.Table().LookupCallID(callIDA)
			refB, _ = sn.Table().LookupCallID(callIDB)
			pauseOrResume(true)
			pausedAt = last
		}
		if resumedAt.IsZero() && !pausedAt.IsZero() && !ts.Before(t2) {
			pauseOrResume(false)
			resumedAt = last
		}
		if err := sn.HandleFrame(src.LinkType(), data, ts); err != nil {
			t.Fatal(err)
		}
		last = ts
		// What the spool would see for this packet: the call it belongs to
		// and whether that call is paused now.
		pkt := gopacket.NewPacket(data, src.LinkType(), gopacket.NoCopy)
		udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil || udp.SrcPort == 5060 || udp.DstPort == 5060 || len(udp.Payload) < 12 || udp.Payload[0]>>6 != 2 {
			continue
		}
		ref := mediaRef(sn.Table(), pkt, udp, ts)
		if ref == 0 || (ref != refA && ref != refB) {
			continue
		}
		c := counts[ref]
		if c == nil {
			c = &rtpCount{}
			counts[ref] = c
		}
		if sn.Table().Paused(ref) {
			c.paused++
		}
		if !pausedAt.IsZero() && ts.After(pausedAt) && (resumedAt.IsZero() || !ts.After(resumedAt)) {
			c.inInterval++
		}
	}
	sn.Flush()

	if len(results) != 2 {
		t.Fatalf("%d pause results", len(results))
	}
	// The actions, in order, and what Asterisk answered.
	want := [][]string{
		{"sniffer pause " + callIDA, "sniffer pause", "ami MixMonitorMute " + callerChan + " Success",
			"ami PauseMonitor " + callerChan + " Success: Paused monitoring of the channel",
			"ami PauseMonitor " + calleeChan + " Success: Paused monitoring of the channel"},
		{"sniffer unpause " + callIDA, "sniffer unpause", "ami MixMonitorMute " + callerChan + " Success",
			"ami UnpauseMonitor " + callerChan + " Success: Unpaused monitoring of the channel",
			"ami UnpauseMonitor " + calleeChan + " Success: Unpaused monitoring of the channel"},
	}
	for i, res := range results {
		if got := stepStrings(res); !slices.Equal(got, want[i]) {
			t.Errorf("result %d steps\n got %q\nwant %q", i, got, want[i])
		}
		if res.Linkedid != linkedid || res.Failed != 0 {
			t.Errorf("result %d: linkedid %q failed %d", i, res.Linkedid, res.Failed)
		}
		if res.Steps[1].CallRef != refB {
			t.Errorf("result %d: second sniffer step is %#x, want the B leg %#x", i, res.Steps[1].CallRef, refB)
		}
		t.Logf("%s", res.Summary())
	}
	if len(audit) != 10 || audit[0].Requester.User != "agent7" || audit[0].Requester.Reason != "card number" {
		t.Errorf("audit: %d entries, first %+v", len(audit), audit[0])
	}

	// Exact request bytes (ActionID line aside) against the recorded client's.
	sent := w.conn(0).sent()
	mm := packets(sent, "MixMonitorMute")
	wantMM := []string{recordedRequest(t, "ami-call-answered.sent.raw", "ev-mmm-on"), recordedRequest(t, "ami-call-answered.sent.raw", "ev-mmm-off")}
	if !slices.Equal(mm, wantMM) {
		t.Errorf("MixMonitorMute sent\n%q\nwant\n%q", mm, wantMM)
	}
	pm, um := packets(sent, "PauseMonitor"), packets(sent, "UnpauseMonitor")
	if len(pm) != 2 || pm[0] != recordedRequest(t, "ami-actions-answered.sent.raw", "pausemon-1") ||
		len(um) != 2 || um[0] != recordedRequest(t, "ami-actions-answered.sent.raw", "unpausemon-1") {
		t.Errorf("Pause/UnpauseMonitor sent %q %q", pm, um)
	}

	// The CDRs: both legs carry the same paused interval.
	if len(cdrs) != 2 {
		t.Fatalf("%d CDRs", len(cdrs))
	}
	for _, c := range cdrs {
		if len(c.Paused) != 1 || !c.Paused[0].Start.Equal(pausedAt) || !c.Paused[0].End.Equal(resumedAt) {
			t.Errorf("%s: paused %v, want [%v, %v]", c.CallID, c.Paused, pausedAt, resumedAt)
		}
		n := counts[c.CallRef]
		if n == nil || n.paused == 0 || n.paused != n.inInterval {
			t.Errorf("%s: RTP packets seen paused %+v, want all and only those in the interval", c.CallID, n)
			continue
		}
		t.Logf("%s: paused %.3f s, %d RTP packets seen paused (= those inside the interval)", c.CallID,
			c.Paused[0].End.Sub(c.Paused[0].Start).Seconds(), n.paused)
	}
}

// mediaRef finds the call an RTP packet belongs to, as the sniffer does
// (the sniffer has just matched the same packet: nothing changes).
func mediaRef(tab *call.Table, pkt gopacket.Packet, udp *layers.UDP, ts time.Time) uint64 {
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		return 0
	}
	src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
	dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
	var m call.Media
	tab.MatchMedia(netip.AddrPortFrom(src, uint16(udp.SrcPort)), netip.AddrPortFrom(dst, uint16(udp.DstPort)), ts, &m)
	return m.Ref
}

func stepStrings(r Result) []string {
	var out []string
	for _, s := range r.Steps {
		f := []string{s.Target, s.Action}
		for _, x := range []string{s.CallID, s.Channel, s.Recording, s.Answer, s.Skipped, s.Err} {
			if x != "" {
				f = append(f, x)
			}
		}
		out = append(out, strings.Join(f, " "))
	}
	return out
}
