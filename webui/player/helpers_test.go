package player_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gorilla/websocket"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/spool"
	"pbx-agent/webui"
	"pbx-agent/webui/player"
)

// pipeline is the agent's packet path as the daemon wires it for live
// listening: sniffer → spool (one decode per call) with pause from the
// call table.
type pipeline struct {
	sn *sniffer.Sniffer
	sp *spool.Spool
	mu sync.Mutex // the sniffer is fed by one goroutine at a time
}

// newPipeline is a sniffer feeding a spool (live audio only, unless a mod
// turns more on).
func newPipeline(t testing.TB, mods ...func(*spool.Config)) *pipeline {
	t.Helper()
	p := &pipeline{}
	cfg := spool.Config{AudioDelay: 40 * time.Millisecond}
	for _, m := range mods {
		m(&cfg)
	}
	sp, err := spool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.sp = sp
	go func() { _ = sp.Run(t.Context()) }() // stopped by Close below
	p.sn = sniffer.New(sniffer.Config{Media: sp, SIPHook: sp.SIP, Call: call.Config{OnCallEnd: sp.CallEnded}})
	t.Cleanup(func() { _ = sp.Close(context.Background()) })
	return p
}

func (p *pipeline) handle(t testing.TB, link layers.LinkType, data []byte, ts time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.sn.HandleFrame(link, data, ts); err != nil {
		t.Error(err)
	}
}

func (p *pipeline) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sn.Flush()
}

// packets is a packet source: a capture file or the generator.
type packets interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

type fileSource struct{ s capture.Source }

func (f fileSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) { return f.s.ReadPacket() }

func openCapture(t testing.TB, parts ...string) packets {
	t.Helper()
	src, err := capture.OpenFile(fixture.Repo(t, parts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return fileSource{src}
}

func generator(t testing.TB, o simulate.Options) packets {
	t.Helper()
	g, err := simulate.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// replay feeds src with its timestamps moved to start at base. With a
// speed, packets are fed at speed × their recorded pace (1 = real time);
// 0 = as fast as possible. before, when set, runs
// before each packet with its (moved) time; returning false stops.
func (p *pipeline) replay(ctx context.Context, t testing.TB, src packets, base time.Time, speed float64, before func(ts time.Time) bool) {
	var first time.Time
	wall := time.Now()
	for ctx.Err() == nil {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Error(err)
			return
		}
		if first.IsZero() {
			first = ci.Timestamp
		}
		off := ci.Timestamp.Sub(first)
		if speed > 0 {
			if wait := time.Duration(float64(off)/speed) - time.Since(wall); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		ts := base.Add(off)
		if before != nil {
			// A before that takes its time (dialing listeners) holds the
			// replay: the rest keeps its pace rather than come in a burst.
			held := time.Now()
			if !before(ts) {
				return
			}
			wall = wall.Add(time.Since(held))
		}
		p.handle(t, layers.LinkTypeEthernet, data, ts)
	}
}

// activeRef waits (feeding nothing) for an answered call with RTP and
// returns its reference.
func (p *pipeline) connectedRef() (uint64, bool) {
	for _, c := range p.sn.ActiveCalls() {
		if !c.ConnectTime.IsZero() && len(c.Streams) > 0 {
			return c.CallRef, true
		}
	}
	return 0, false
}

// users of the tests: alice may listen, bob may only read CDRs.
var testUsers = []webui.User{
	{Name: "alice", Secret: "alicepw", Rights: webui.CanListenActiveCall | webui.CanActiveCalls | webui.CanHandleActiveCall},
	{Name: "bob", Secret: "bobpw", Rights: webui.CanCDR},
}

// agent is the HTTP side: webui's handler with the player mounted, behind
// the request logger as webui.NewServer serves it.
type agent struct {
	web  *webui.Handler
	pl   *player.Handler
	srv  *httptest.Server
	pipe *pipeline
	// stop ends the player's Run (its listeners) and waits for it.
	stop func()
}

func newAgent(t testing.TB, pipe *pipeline, mod func(*player.Options)) *agent {
	t.Helper()
	wo := webui.Options{Users: testUsers, SensorID: 1}
	if pipe != nil {
		wo.Calls = snifferCalls{pipe}
	}
	web := webui.New(wo)
	o := player.Options{Auth: web, SensorID: 1}
	if pipe != nil {
		o.Audio = pipe.sp
		o.Calls = pipe.sn
	}
	if mod != nil {
		mod(&o)
	}
	pl := player.New(o)
	pl.Mount(web)
	stop := testkit.Run(t, pl.Run)
	srv := httptest.NewServer(webui.LogRequests(discard(), web))
	t.Cleanup(func() {
		_ = stop()
		srv.Close()
	})
	return &agent{web: web, pl: pl, srv: srv, pipe: pipe, stop: func() { _ = stop() }}
}

// snifferCalls is the webui.Calls the daemon passes (pause through the table).
type snifferCalls struct{ p *pipeline }

func (s snifferCalls) Active() []call.CDR { return s.p.sn.ActiveCalls() }
func (s snifferCalls) Pause(_ context.Context, ref uint64, on bool) error {
	return s.p.sn.Table().SetPaused(ref, on)
}

// wsURL is the websocket URL for ref with extra query parameters.
func (a *agent) wsURL(ref uint64, extra url.Values) string {
	u, _ := url.Parse(a.srv.URL)
	u.Scheme = "ws"
	u.Path = "/ws/listen"
	q := url.Values{"callref": {"0x" + strings.ToLower(strconvHex(ref))}, "sensor_id": {"1"}}
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func strconvHex(v uint64) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{digits[v&15]}, b...)
		v >>= 4
	}
	return string(b)
}

var aliceQuery = url.Values{"user": {"alice"}, "password": {"alicepw"}}

// dial opens the websocket; the response is returned on refusal.
func dial(t testing.TB, u string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	return d.Dial(u, hdr)
}

// received is what a websocket client got.
type received struct {
	frames   []player.FrameHeader
	pcm      [][]int16 // per frame, interleaved as sent
	statuses []map[string]any
	latency  []time.Duration // from the capture of a frame's last sample to its arrival
	end      string
}

// collect reads until the end message and the close (or max > 0 frames);
// max < 0 keeps no PCM (load tests).
func collect(t testing.TB, c *websocket.Conn, max int, onFrame func(n int)) received {
	t.Helper()
	var r received
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		typ, b, err := c.ReadMessage()
		if err != nil {
			return r
		}
		now := time.Now()
		switch typ {
		case websocket.BinaryMessage:
			h, pcm, err := player.ParseFrame(b)
			if err != nil {
				t.Errorf("frame: %v", err)
				return r
			}
			r.frames = append(r.frames, h)
			if max >= 0 {
				s := make([]int16, len(pcm)/2)
				for i := range s {
					s[i] = int16(binary.LittleEndian.Uint16(pcm[2*i:]))
				}
				r.pcm = append(r.pcm, s)
			}
			r.latency = append(r.latency, now.Sub(h.Capture.Add(audio.FrameDuration)))
			if onFrame != nil {
				onFrame(len(r.frames))
			}
			if max > 0 && len(r.frames) >= max {
				return r
			}
		case websocket.TextMessage:
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("status %q: %v", b, err)
				continue
			}
			r.statuses = append(r.statuses, m)
			if m["type"] == "end" {
				r.end, _ = m["reason"].(string)
			}
		}
	}
}

func rms(s []int16, step, off int) float64 {
	var sum float64
	n := 0
	for i := off; i < len(s); i += step {
		v := float64(s[i])
		sum += v * v
		n++
	}
	if n == 0 {
		return 0
	}
	return math.Sqrt(sum / float64(n))
}

// goertzel is the power of frequency hz in s (sampled at rate).
func goertzel(s []float64, rate, hz float64) float64 {
	w := 2 * math.Pi * hz / rate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range s {
		s0 := x + c*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// dominant returns the candidate frequency with the most power in s.
func dominant(s []float64, rate float64, candidates ...float64) float64 {
	best, bestP := 0.0, -1.0
	for _, hz := range candidates {
		if p := goertzel(s, rate, hz); p > bestP {
			best, bestP = hz, p
		}
	}
	return best
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
