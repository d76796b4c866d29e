package tap_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"pbx-agent/agent/tap"
	"pbx-agent/ami/ari"
	"pbx-agent/ami/ari/aritest"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/webui"
	"pbx-agent/webui/player"
)

const (
	callRef = 0x1234
	caller  = "1795561726.2" // the recorded call's caller channel (flow c)
)

// recordedARI is a fake ARI answering with flow c's recorded answers (the
// negative probes left out); the externalMedia channel's
// UNICASTRTP_LOCAL_PORT is changed to srcPort, the port the test sends the
// RTP from (Asterisk's side of the stream).
func recordedARI(t *testing.T, srcPort int) (*aritest.Server, *aritest.Recording) {
	t.Helper()
	rec := aritest.LoadFile(t, fixture.Repo(t, "testdata", "ari", "ari-snoop-externalmedia.http.jsonl"))
	srv := aritest.NewServer(t, nil)
	for _, ex := range rec.Exchanges {
		if ex.Label != "" {
			continue
		}
		if strings.HasPrefix(ex.Path, "/ari/channels/externalMedia") || strings.HasSuffix(ex.Query, "UNICASTRTP_LOCAL_PORT") {
			cp := *ex
			cp.Body = bytes.ReplaceAll(ex.Body, []byte(`"10086"`), []byte(strconv.Quote(strconv.Itoa(srcPort))))
			ex = &cp
		}
		srv.Add(ex)
	}
	return srv, rec
}

// startTapper makes a Tapper for the call callRef on caller's channel
// against srv (cfg's other fields kept) and runs it until the test ends.
func startTapper(t *testing.T, srv *aritest.Server, cfg tap.Config) *tap.Tapper {
	t.Helper()
	if cfg.ARI == nil {
		cfg.ARI = ari.New(ari.Config{URL: srv.URL(), Username: "agent", Password: "agentpw"})
	}
	cfg.Target = func(ref uint64) (tap.Target, bool) { return tap.Target{Channel: caller}, ref == callRef }
	tp, err := tap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = tp.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return tp
}

type env struct {
	srv    *aritest.Server
	rec    *aritest.Recording
	tp     *tap.Tapper
	paused atomic.Bool
	active atomic.Bool
	// clock, when set (Unix ns), is the RTP's arrival time instead of the
	// wall clock: a test replaying a stream times each packet itself.
	clock atomic.Int64
}

// newEnv starts a Tapper against the recorded fake ARI.
func newEnv(t *testing.T, srcPort int) *env {
	t.Helper()
	e := &env{}
	e.active.Store(true)
	e.srv, e.rec = recordedARI(t, srcPort)
	client := ari.New(ari.Config{URL: e.srv.URL(), Username: "agent", Password: "agentpw"})
	tp, err := tap.New(tap.Config{ARI: client, Prefix: "tap-", Idle: 50 * time.Millisecond, CheckEvery: 10 * time.Millisecond,
		Target: func(ref uint64) (tap.Target, bool) {
			return tap.Target{Channel: caller}, ref == callRef
		},
		Paused: func(uint64) bool { return e.paused.Load() },
		Active: func(uint64) bool { return e.active.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	e.tp = tp
	tap.SetClock(tp, func() time.Time {
		if ns := e.clock.Load(); ns != 0 {
			return time.Unix(0, ns)
		}
		return time.Now()
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = tp.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return e
}

// waitRequests waits until the fake got a request matching each of want
// ("DELETE /ari/channels/tap-em-1 → 204"), then returns all it got.
func (e *env) waitRequests(t *testing.T, want ...string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []string
		for _, r := range e.srv.Requests() {
			got = append(got, r.Method+" "+r.Path+" → "+strconv.Itoa(r.Status))
		}
		missing := false
		for _, w := range want {
			if !slices.Contains(got, w) {
				missing = true
			}
		}
		if !missing {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests %q, still waiting for %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitTeardowns waits until n taps were torn down (the ARI requests are
// answered before the tapper counts).
func (e *env) waitTeardowns(t *testing.T, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.tp.Stats().Teardowns != n {
		if time.Now().After(deadline) {
			t.Fatalf("teardowns: %+v, want %d", e.tp.Stats(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := e.tp.Stats(); st.Taps != 0 {
		t.Errorf("taps still up after teardown: %+v", st)
	}
}

// checkSetup compares the set-up requests with the recorded client's:
// same paths and parameters, external_host being the tap's address.
func (e *env) checkSetup(t *testing.T) {
	t.Helper()
	var want []*aritest.Exchange
	for _, ex := range e.rec.Exchanges {
		if ex.Label == "" && ex.Method == "POST" {
			want = append(want, ex)
		}
	}
	var got []aritest.Request
	for _, r := range e.srv.Requests() {
		if r.Method == "POST" {
			got = append(got, r)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("POSTs %v, recorded %d", got, len(want))
	}
	for i, r := range got {
		gq, _ := url.ParseQuery(r.Query)
		wq, _ := url.ParseQuery(want[i].Query)
		if wq.Has("external_host") {
			if gq.Get("external_host") != e.tp.Advertised() {
				t.Errorf("external_host %q, want the tap's %s", gq.Get("external_host"), e.tp.Advertised())
			}
			gq.Del("external_host")
			wq.Del("external_host")
		}
		if r.Path != want[i].Path || gq.Encode() != wq.Encode() || r.Status != want[i].Status {
			t.Errorf("request %d: %s %s?%s → %d, recorded %s?%s → %d", i, r.Method, r.Path, gq.Encode(), r.Status, want[i].Path, wq.Encode(), want[i].Status)
		}
	}
}

var teardown = []string{"DELETE /ari/channels/tap-em-1 → 204", "DELETE /ari/channels/tap-snoop-1 → 204", "DELETE /ari/bridges/tap-bridge-1 → 204"}

// linearToULaw is G.711 µ-law encoding (test side only: the agent decodes).
func linearToULaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v, sign := int(s), byte(0)
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, clip) + bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^(sign | byte(exp<<4) | byte(mant))
}

// toneSender plays Asterisk's side of externalMedia: ulaw RTP shaped as
// the recorded stream (PT 0, no marker, 160-byte payloads, timestamp from
// 160 in steps of 160, first packet silence), a tone of hz, one packet
// every 20 ms.
type toneSender struct {
	conn *net.UDPConn
	seq  uint16
	ts   uint32
	n    int // samples sent
}

func (s *toneSender) send(t *testing.T, to net.Addr, hz float64, amp float64, silence bool) {
	t.Helper()
	pkt := make([]byte, 12, 12+160)
	pkt[0], pkt[1] = 0x80, 0 // v2, PT 0
	binary.BigEndian.PutUint16(pkt[2:], s.seq)
	binary.BigEndian.PutUint32(pkt[4:], s.ts)
	binary.BigEndian.PutUint32(pkt[8:], 0x2ab0a07b)
	for i := range 160 {
		v := int16(0)
		if !silence {
			v = int16(amp * math.Sin(2*math.Pi*hz*float64(s.n+i)/8000))
		}
		pkt = append(pkt, linearToULaw(v))
	}
	if _, err := s.conn.WriteTo(pkt, to); err != nil {
		t.Fatal(err)
	}
	s.seq++
	s.ts += 160
	s.n += 160
}

func goertzel(s []float64, hz float64) float64 {
	k := 2 * math.Cos(2*math.Pi*hz/8000)
	var s1, s2 float64
	for _, x := range s {
		s1, s2 = x+k*s1-s2, s1
	}
	return s1*s1 + s2*s2 - k*s1*s2
}

type allowAll struct{}

func (allowAll) Authenticate(*http.Request) (*webui.User, error) {
	return &webui.User{Name: "alice", Rights: webui.CanListenActiveCall}, nil
}

type noLocal struct{}

func (noLocal) Subscribe(context.Context, uint64, int) (*audio.Subscription, error) {
	return nil, call.ErrNoCall
}

// TestToneThroughPlayer is issue 10's ARI tap figure: a listener opens
// /ws/listen on webui/player for a call only the tap can hear; the tap asks
// the fake ARI (recorded answers) for snoop + externalMedia + bridge; a
// generated ulaw RTP stream of a 1 kHz tone goes over real UDP to the tap's
// port from the source Asterisk announced; the binary websocket frames'
// PCM has a dominant 1 kHz, exact silence while the call is paused, and
// the tap is torn down when the listener leaves.
func TestToneThroughPlayer(t *testing.T) {
	snd, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	e := newEnv(t, snd.LocalAddr().(*net.UDPAddr).Port)
	pl := runPlayer(t, e.tp)
	hs := httptest.NewServer(pl)
	defer hs.Close()

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws/listen?callref=0x1234&layout=mono", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, msg, err := ws.ReadMessage()
	var st struct{ Type, Layout string }
	if err != nil || json.Unmarshal(msg, &st) != nil || st.Type != "start" || st.Layout != "mono" {
		t.Fatalf("first message %q (%v)", msg, err)
	}
	e.checkSetup(t)

	// 2 s of stream: silence first (as Asterisk's first packet), tone,
	// the call paused for packets 50–69, tone again.
	const packets, pauseFrom, pauseTo = 100, 50, 70
	// Each packet arrives (the tap's clock) 20 ms after the one before, the
	// stream's own pace: a loaded machine delaying the sender or the
	// tap's reader does not make packets late for the jitter buffer.
	to := net.UDPAddrFromAddrPort(e.tp.Addr())
	base := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		s := &toneSender{conn: snd, seq: 35418, ts: 160}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := range packets {
			e.paused.Store(i >= pauseFrom && i < pauseTo)
			e.clock.Store(base.Add(time.Duration(i) * 20 * time.Millisecond).UnixNano())
			s.send(t, to, 1000, 8000, i == 0)
			// The pause applies to what the tap has handled: wait for it
			// before the next toggle (a loaded machine may delay the reader).
			for deadline := time.Now().Add(5 * time.Second); e.tp.Stats().Packets < uint64(i+1) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			<-tick.C
		}
		e.paused.Store(false)
	})

	type frame struct {
		seq uint32
		pcm []int16
	}
	var frames []frame
	// The last frames wait for late packets until the tap closes. A loaded
	// machine may make the listener's queue drop frames (counted, and seen
	// as a sequence gap): frames are placed by their sequence, not by order.
	for len(frames) < packets-6 && (len(frames) == 0 || frames[len(frames)-1].seq < packets-7) {
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d frames: %v", len(frames), err)
		}
		if typ != websocket.BinaryMessage {
			continue
		}
		h, pcm, err := player.ParseFrame(msg)
		if err != nil || h.Layout != player.LayoutMono || h.SampleRate != 8000 {
			t.Fatalf("frame %+v: %v", h, err)
		}
		f := frame{seq: h.Seq}
		for i := 0; i+1 < len(pcm); i += 2 {
			f.pcm = append(f.pcm, int16(binary.LittleEndian.Uint16(pcm[i:])))
		}
		frames = append(frames, f)
	}
	wg.Wait()

	// Frame seq holds packet seq (the first packet anchors the timeline).
	if len(frames) < (packets-6)*8/10 {
		t.Fatalf("only %d frames of %d arrived", len(frames), packets-6)
	}
	var tone []float64
	var silentFrames []int
	received := map[int]bool{}
	for i, f := range frames {
		if i > 0 && f.seq <= frames[i-1].seq {
			t.Fatalf("frame %d has sequence %d after %d", i, f.seq, frames[i-1].seq)
		}
		received[int(f.seq)] = true
		zero := !slices.ContainsFunc(f.pcm, func(v int16) bool { return v != 0 })
		if zero {
			silentFrames = append(silentFrames, int(f.seq))
			continue
		}
		for _, v := range f.pcm {
			tone = append(tone, float64(v))
		}
	}
	var wantSilent []int
	if received[0] {
		wantSilent = append(wantSilent, 0)
	}
	for i := pauseFrom; i < pauseTo; i++ {
		if received[i] {
			wantSilent = append(wantSilent, i)
		}
	}
	if !slices.Equal(silentFrames, wantSilent) {
		t.Errorf("silent frames %v, want the first and the paused ones %v", silentFrames, wantSilent)
	}
	p1k := goertzel(tone, 1000)
	var rms float64
	for _, v := range tone {
		rms += v * v
	}
	rms = math.Sqrt(rms / float64(len(tone)))
	worst, worstHz := 0.0, 0.0
	for _, hz := range []float64{300, 500, 800, 900, 1100, 1200, 1500, 2000, 2500, 3000, 3400} {
		if p := goertzel(tone, hz); p > worst {
			worst, worstHz = p, hz
		}
	}
	ratio := 10 * math.Log10(p1k/worst)
	if ratio < 30 || rms < 8000/math.Sqrt2*0.9 || rms > 8000/math.Sqrt2*1.1 {
		t.Errorf("1 kHz %.1f dB above the strongest other bin (%v Hz); RMS %.0f, sent %.0f", ratio, worstHz, rms, 8000/math.Sqrt2)
	}
	t.Logf("%d frames over the websocket (%d of tone, %d silent = first packet + %d paused); 1 kHz %.1f dB above the strongest other bin (%v Hz); RMS %.0f (sent %.0f); tap %+v",
		len(frames), len(tone)/160, len(silentFrames), pauseTo-pauseFrom, ratio, worstHz, rms, 8000/math.Sqrt2, e.tp.Stats())

	// The listener leaves: the tap goes away after Idle.
	ws.Close()
	got := e.waitRequests(t, teardown...)
	e.waitTeardowns(t, 1)
	if st := e.tp.Stats(); st.Taps != 0 || st.Started != 1 || st.Unknown != 0 {
		t.Errorf("stats after the listener left: %+v", st)
	}
	// The same figures on /metrics.
	reg := prometheus.NewRegistry()
	if err := e.tp.Register(reg); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("# HELP pbx_tap_packets_total RTP packets received from Asterisk and decoded.\n# TYPE pbx_tap_packets_total counter\npbx_tap_packets_total %d\n"+
		"# HELP pbx_tap_started_total ARI taps set up.\n# TYPE pbx_tap_started_total counter\npbx_tap_started_total 1\n", e.tp.Stats().Packets)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pbx_tap_packets_total", "pbx_tap_started_total"); err != nil {
		t.Error(err)
	}
	t.Logf("requests: %q", got)
}

// TestTapEndsWithCall: the call ends while listened; the tap is torn down
// and the feed closes (the player then says "call ended").
func TestTapEndsWithCall(t *testing.T) {
	e := newEnv(t, 10086)
	sub, err := e.tp.Subscribe(context.Background(), callRef, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.checkSetup(t)
	e.active.Store(false)
	for range sub.Frames() {
	}
	e.waitRequests(t, teardown...)
	e.waitTeardowns(t, 1)
}

// TestSubscribeErrors: calls that cannot be tapped.
func TestSubscribeErrors(t *testing.T) {
	tests := []struct {
		name    string
		ref     uint64
		answer  *aritest.Exchange // the snoop's answer
		wantErr []error
		wantReq []string
	}{
		{name: "not correlated", ref: 0x99, wantErr: []error{tap.ErrNoChannel}},
		{name: "channel gone", ref: callRef, wantErr: []error{tap.ErrSetup, ari.ErrNotFound},
			answer:  &aritest.Exchange{Method: "POST", Path: "/ari/channels/" + caller + "/snoop", Status: 404, Body: []byte(`{"message":"Provided channel was not found"}`)},
			wantReq: []string{"POST /ari/channels/" + caller + "/snoop → 404"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := aritest.NewServer(t, nil)
			if tt.answer != nil {
				srv.Add(tt.answer)
			}
			tp, err := tap.New(tap.Config{ARI: ari.New(ari.Config{URL: srv.URL(), Username: "agent", Password: "agentpw"}),
				Target: func(ref uint64) (tap.Target, bool) { return tap.Target{Channel: caller}, ref == callRef }})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { _ = tp.Run(ctx) })
			defer func() { cancel(); wg.Wait() }()
			_, err = tp.Subscribe(context.Background(), tt.ref, 0)
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("err %v, want %v", err, w)
				}
			}
			var got []string
			for _, r := range srv.Requests() {
				if r.Method != "GET" { // the start-up Cleanup's listings
					got = append(got, r.Method+" "+r.Path+" → "+strconv.Itoa(r.Status))
				}
			}
			if !slices.Equal(got, tt.wantReq) {
				t.Errorf("requests %q, want %q (nothing created, nothing to delete)", got, tt.wantReq)
			}
			if st := tp.Stats(); st.Taps != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestCleanup: at start, channels and bridges with the tapper's prefix
// (left by an agent that died mid-tap) are removed, nothing else.
func TestCleanup(t *testing.T) {
	rec := aritest.LoadFile(t, fixture.Repo(t, "testdata", "ari", "ari-snoop-externalmedia.http.jsonl"))
	srv := aritest.NewServer(t, nil)
	for _, ex := range rec.Exchanges {
		switch {
		case ex.Method == "GET" && ex.Path == "/ari/channels" && bytes.Contains(ex.Body, []byte("tap-em-1")),
			ex.Method == "DELETE" && ex.Status == 204:
			srv.Add(ex)
		case ex.Method == "GET" && ex.Path == "/ari/bridges/tap-bridge-1":
			// GET /bridges as it answered while the tap was up: the
			// dialplan's bridge and the tap's.
			srv.Add(&aritest.Exchange{Method: "GET", Path: "/ari/bridges", Status: 200,
				Body: []byte(`[{"id":"a3195698-f1f4-4720-9768-05b8f9dff2ba","bridge_class":"basic","channels":["1795561726.2","1795561726.3"]},` + string(ex.Body) + `]`)})
		}
	}
	tp, err := tap.New(tap.Config{ARI: ari.New(ari.Config{URL: srv.URL(), Username: "agent", Password: "agentpw"}), Prefix: "tap-",
		Target: func(uint64) (tap.Target, bool) { return tap.Target{}, false }})
	if err != nil {
		t.Fatal(err)
	}
	n, err := tp.Cleanup(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("removed %d: %v", n, err)
	}
	var got []string
	for _, r := range srv.Requests() {
		if r.Method == "DELETE" {
			got = append(got, r.Method+" "+r.Path+" → "+strconv.Itoa(r.Status))
		}
	}
	want := []string{"DELETE /ari/channels/tap-snoop-1 → 204", "DELETE /ari/channels/tap-em-1 → 204", "DELETE /ari/bridges/tap-bridge-1 → 204"}
	if !slices.Equal(got, want) {
		t.Errorf("deleted %q, want %q", got, want)
	}
}

// TestSplit: Config.Split taps each direction on its own (spy=in → caller,
// spy=out → callee), each with its externalMedia and bridge; a 1 kHz tone
// on the first stream and 500 Hz on the second come out on the caller and
// callee channels of the frames.
func TestSplit(t *testing.T) {
	var socks [2]*net.UDPConn
	for i := range socks {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		socks[i] = c
	}
	rec := aritest.LoadFile(t, fixture.Repo(t, "testdata", "ari", "ari-snoop-externalmedia.http.jsonl"))
	srv := aritest.NewServer(t, nil)
	for _, ex := range rec.Exchanges {
		switch {
		case ex.Label != "" || ex.Method == "GET":
		case strings.HasPrefix(ex.Path, "/ari/channels/externalMedia"):
			for i, s := range socks { // one answer per direction, each from its own port
				cp := *ex
				cp.Body = bytes.ReplaceAll(ex.Body, []byte(`"10086"`), []byte(strconv.Quote(strconv.Itoa(s.LocalAddr().(*net.UDPAddr).Port))))
				cp.Body = bytes.ReplaceAll(cp.Body, []byte(`"tap-em-1"`), []byte(`"tap-em-`+strconv.Itoa(i+1)+`"`))
				srv.Add(&cp)
			}
		default:
			srv.Add(ex)
		}
	}
	srv.Add(&aritest.Exchange{Method: "POST", Path: "/ari/bridges/tap-bridge-2/addChannel", Status: 204})
	for _, p := range []string{"/ari/channels/tap-em-2", "/ari/channels/tap-snoop-2", "/ari/bridges/tap-bridge-2"} {
		srv.Add(&aritest.Exchange{Method: "DELETE", Path: p, Status: 204})
	}
	tp := startTapper(t, srv, tap.Config{Prefix: "tap-", Split: true, Idle: 20 * time.Millisecond, CheckEvery: 10 * time.Millisecond})
	sub, err := tp.Subscribe(context.Background(), callRef, 100)
	if err != nil {
		t.Fatal(err)
	}
	var spies []string
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, "/snoop") {
			q, _ := url.ParseQuery(r.Query)
			spies = append(spies, q.Get("snoopId")+" spy="+q.Get("spy"))
		}
	}
	if want := []string{"tap-snoop-1 spy=in", "tap-snoop-2 spy=out"}; !slices.Equal(spies, want) {
		t.Errorf("snoops %q, want %q", spies, want)
	}

	to := net.UDPAddrFromAddrPort(tp.Addr())
	senders := [2]*toneSender{{conn: socks[0], seq: 100, ts: 160}, {conn: socks[1], seq: 900, ts: 160}}
	tick := time.NewTicker(20 * time.Millisecond)
	const packets = 40
	for range packets {
		senders[0].send(t, to, 1000, 8000, false)
		senders[1].send(t, to, 500, 8000, false)
		<-tick.C
	}
	tick.Stop()
	var left, right []float64
	for len(left) < 30*160 {
		f := <-sub.Frames()
		if f == nil {
			t.Fatalf("feed closed after %d frames", len(left)/160)
		}
		for i := range f.Caller {
			left = append(left, float64(f.Caller[i]))
			right = append(right, float64(f.Callee[i]))
		}
	}
	for _, c := range []struct {
		name      string
		s         []float64
		want, not float64
	}{{"caller", left, 1000, 500}, {"callee", right, 500, 1000}} {
		r := 10 * math.Log10(goertzel(c.s, c.want)/goertzel(c.s, c.not))
		if r < 30 {
			t.Errorf("%s channel: %v Hz only %.1f dB above %v Hz", c.name, c.want, r, c.not)
		}
		t.Logf("%s channel: %v Hz %.1f dB above %v Hz", c.name, c.want, r, c.not)
	}
	sub.Close()
	deadline := time.Now().Add(10 * time.Second)
	for tp.Stats().Teardowns != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("not torn down: %+v", tp.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	var deleted []string
	for _, r := range srv.Requests() {
		if r.Method == "DELETE" {
			deleted = append(deleted, r.Path+" → "+strconv.Itoa(r.Status))
		}
	}
	want := []string{"/ari/channels/tap-em-2 → 204", "/ari/channels/tap-snoop-2 → 204", "/ari/channels/tap-em-1 → 204",
		"/ari/channels/tap-snoop-1 → 204", "/ari/bridges/tap-bridge-1 → 204", "/ari/bridges/tap-bridge-2 → 204"}
	if !slices.Equal(deleted, want) {
		t.Errorf("deleted %q, want %q", deleted, want)
	}
}

// TestAddChannelRetriedWhileNotInStasis pins issue 16 item 3 (without an
// event socket): Asterisk answers 422 "Channel not in Stasis application"
// to an addChannel issued before the channels' StasisStart; the tap retries
// it with a bounded backoff instead of failing.
func TestAddChannelRetriedWhileNotInStasis(t *testing.T) {
	srv, _ := recordedARI(t, 10086)
	notYet := &aritest.Exchange{Method: "POST", Path: "/ari/bridges/tap-bridge-1/addChannel", Status: 422,
		Body: []byte(`{"message":"Channel not in Stasis application"}`)}
	// Answers are used in order: two 422s, then the recorded 204.
	srv.Prepend(notYet.Method, notYet.Path, notYet, notYet)
	tp := startTapper(t, srv, tap.Config{Prefix: "tap-"})
	sub, err := tp.Subscribe(context.Background(), callRef, 0)
	if err != nil {
		t.Fatalf("tap set-up after two 422s: %v", err)
	}
	sub.Close()
	if st := tp.Stats(); st.Retries != 2 || st.Started != 1 || st.Failed != 0 {
		t.Errorf("stats %+v, want 2 retries and the tap up", st)
	}
}

// TestSetupWaitsForStasisStart pins issue 16 item 3 (with the event
// socket): externalMedia is requested only after the snoop channel's
// StasisStart, the bridge only after the externalMedia channel's (recorded
// events), so addChannel never meets a channel outside the application.
func TestSetupWaitsForStasisStart(t *testing.T) {
	starts := map[string][]byte{}
	for _, ev := range aritest.LoadFile(t, fixture.Repo(t, "testdata", "ari", "ari-tap-stasisstart.jsonl")).Events {
		switch {
		case bytes.Contains(ev.Data, []byte(`"id":"tap-snoop-1"`)):
			starts["snoop"] = ev.Data
		case bytes.Contains(ev.Data, []byte(`"id":"tap-em-1"`)):
			starts["em"] = ev.Data
		}
	}
	srv, _ := recordedARI(t, 10086)
	client := ari.New(ari.Config{URL: srv.URL(), Username: "agent", Password: "agentpw"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = client.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	tp := startTapper(t, srv, tap.Config{ARI: client, Prefix: "tap-", ActionTimeout: 10 * time.Second})
	go func() {
		for range client.Updates() { // keep the queue drained
		}
	}()
	<-srv.Joined()
	for !client.Connected() {
		time.Sleep(time.Millisecond)
	}
	requested := func(suffix string) bool {
		for _, r := range srv.Requests() {
			if r.Method == "POST" && strings.HasSuffix(r.Path, suffix) {
				return true
			}
		}
		return false
	}
	var early []string
	emitter := make(chan struct{})
	go func() {
		defer close(emitter)
		for _, step := range []struct{ after, notYet, event string }{
			{"/snoop", "/externalMedia", "snoop"},
			{"/externalMedia", "/addChannel", "em"},
		} {
			for !requested(step.after) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // Asterisk is slow to start the application
			if requested(step.notYet) {
				early = append(early, step.notYet+" before the "+step.event+" channel's StasisStart")
			}
			srv.Emit("", starts[step.event])
		}
	}()
	sub, err := tp.Subscribe(context.Background(), callRef, 0)
	<-emitter
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
	if len(early) > 0 {
		t.Errorf("requested too early: %q", early)
	}
	if st := tp.Stats(); st.Retries != 0 {
		t.Errorf("stats %+v: addChannel retried although the StasisStarts were awaited", st)
	}
}

// TestFailedTapTellsTheListenerWhy pins the second half of issue 16 item 3:
// a tap that cannot be set up is reported with ARI's answer, not as "call
// not found".
func TestFailedTapTellsTheListenerWhy(t *testing.T) {
	srv := aritest.NewServer(t, nil)
	srv.Add(&aritest.Exchange{Method: "POST", Path: "/ari/channels/" + caller + "/snoop", Status: 404, Body: []byte(`{"message":"Provided channel was not found"}`)})
	tp := startTapper(t, srv, tap.Config{})
	h := runPlayer(t, tp)
	hs := httptest.NewServer(h)
	defer hs.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws/listen?callref=0x1234", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var st struct{ Type, Reason string }
	if err := ws.ReadJSON(&st); err != nil {
		t.Fatal(err)
	}
	if st.Type != "error" || !strings.Contains(st.Reason, "ARI tap failed") || !strings.Contains(st.Reason, "404 Provided channel was not found") {
		t.Errorf("listener told %+v, want the tap's failure", st)
	}
}

// runPlayer runs a player whose every call is tapped through tp, until
// the test ends.
func runPlayer(t *testing.T, tp *tap.Tapper) *player.Handler {
	pl := player.New(player.Options{Auth: allowAll{}, SensorID: 1,
		Audio: tap.Source{Local: noLocal{}, Tap: tp, UseTap: func(uint64) bool { return true }}})
	testkit.Run(t, pl.Run)
	return pl
}
