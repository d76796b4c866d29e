package ari

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/ami/amitest"
	"pbx-agent/ami/ari/aritest"
	"pbx-agent/sniffer/fixture"
)

func recording(t testing.TB) *aritest.Recording {
	t.Helper()
	return aritest.LoadFile(t, fixture.Repo(t, "testdata", "ari", "ari-stasis-record-pause.jsonl"))
}

// run starts c.Run and stops it at the end of the test.
func run(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// next waits for an update of kind k, skipping others.
func next(t *testing.T, c *Client, k UpdateKind) Update {
	t.Helper()
	for u := range c.Updates() {
		if u.Kind == k {
			return u
		}
	}
	t.Fatalf("updates closed before kind %d", k)
	return Update{}
}

// TestRecordedRecordingControl replays flow b of the ARI recordings: every
// pause/unpause/mute/state request the recorded client made for
// pbxagent-rec-1 (and the queued rec-4), in the recorded order, answered by
// the fake with the recorded answers.
func TestRecordedRecordingControl(t *testing.T) {
	srv := aritest.NewServer(t, recording(t))
	c := New(Config{URL: srv.URL(), Username: "agent", Password: "agentpw"})
	ctx := context.Background()
	const rec1 = "pbxagent-rec-1"
	type step struct {
		name      string
		do        func() (string, error)
		want      string // state for gets
		wantErr   error
		wantMsg   string
		wantRoute string
	}
	get := func(n string) func() (string, error) {
		return func() (string, error) {
			d, err := c.LiveRecording(ctx, n)
			if err != nil {
				return "", err
			}
			if d.Key == nil || d.Key.ID != n {
				t.Errorf("key %v, want liverecording/%s", d.Key, n)
			}
			return d.State, nil
		}
	}
	pause := func(n string, on bool) func() (string, error) {
		return func() (string, error) { return "", c.PauseRecording(ctx, n, on) }
	}
	mute := func(n string, on bool) func() (string, error) {
		return func() (string, error) { return "", c.MuteRecording(ctx, n, on) }
	}
	steps := []step{
		{name: "state before", do: get(rec1), want: "recording", wantRoute: "GET /ari/recordings/live/pbxagent-rec-1 → 200"},
		{name: "pause", do: pause(rec1, true), wantRoute: "POST /ari/recordings/live/pbxagent-rec-1/pause → 204"},
		{name: "state paused", do: get(rec1), want: "paused", wantRoute: "GET /ari/recordings/live/pbxagent-rec-1 → 200"},
		{name: "pause twice", do: pause(rec1, true), wantRoute: "POST /ari/recordings/live/pbxagent-rec-1/pause → 204"},
		{name: "unpause", do: pause(rec1, false), wantRoute: "DELETE /ari/recordings/live/pbxagent-rec-1/pause → 204"},
		{name: "state after unpause", do: get(rec1), want: "recording", wantRoute: "GET /ari/recordings/live/pbxagent-rec-1 → 200"},
		{name: "unpause twice", do: pause(rec1, false), wantRoute: "DELETE /ari/recordings/live/pbxagent-rec-1/pause → 204"},
		{name: "mute", do: mute(rec1, true), wantRoute: "POST /ari/recordings/live/pbxagent-rec-1/mute → 204"},
		{name: "state muted", do: get(rec1), want: "recording", wantRoute: "GET /ari/recordings/live/pbxagent-rec-1 → 200"},
		{name: "unmute", do: mute(rec1, false), wantRoute: "DELETE /ari/recordings/live/pbxagent-rec-1/mute → 204"},
		{name: "pause unknown", do: pause("no-such-recording", true), wantErr: ErrNotFound, wantMsg: "Recording not found",
			wantRoute: "POST /ari/recordings/live/no-such-recording/pause → 404"},
		{name: "unpause unknown", do: pause("no-such-recording", false), wantErr: ErrNotFound, wantMsg: "Recording not found",
			wantRoute: "DELETE /ari/recordings/live/no-such-recording/pause → 404"},
		{name: "state after stop", do: get(rec1), wantErr: ErrNotFound, wantRoute: "GET /ari/recordings/live/pbxagent-rec-1 → 404"},
		{name: "pause after stop", do: pause(rec1, true), wantErr: ErrNotFound, wantRoute: "POST /ari/recordings/live/pbxagent-rec-1/pause → 404"},
		{name: "pause queued", do: pause("pbxagent-rec-4", true), wantErr: ErrConflict, wantMsg: "Recording not in session",
			wantRoute: "POST /ari/recordings/live/pbxagent-rec-4/pause → 409"},
	}
	for i, s := range steps {
		got, err := s.do()
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil) != (err == nil) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.wantErr)
		}
		var se *StatusError
		if s.wantMsg != "" && (!errors.As(err, &se) || se.Message != s.wantMsg) {
			t.Errorf("%s: err %v, want message %q", s.name, err, s.wantMsg)
		}
		if got != s.want {
			t.Errorf("%s: state %q, want %q", s.name, got, s.want)
		}
		reqs := srv.Requests()
		if len(reqs) != i+1 || reqs[i].String() != s.wantRoute {
			t.Fatalf("%s: server saw %v, want last %q", s.name, reqs, s.wantRoute)
		}
	}
}

func TestAuthFailure(t *testing.T) {
	srv := aritest.NewServer(t, recording(t))
	c := New(Config{URL: srv.URL(), Username: "agent", Password: "wrong"})
	err := c.PauseRecording(context.Background(), "pbxagent-rec-1", true)
	var se *StatusError
	if !errors.Is(err, ErrAuth) || !errors.As(err, &se) || se.Message != "Authentication required" {
		t.Fatalf("err %v, want ErrAuth with Asterisk's message", err)
	}
	if err := New(Config{}).PauseRecording(context.Background(), "x", true); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("unconfigured: %v", err)
	}
}

// TestEventSocket connects to the fake, receives the recorded events of the
// pause flow and follows the live recordings; a dropped socket reconnects and
// re-reads the recordings it knew.
func TestEventSocket(t *testing.T) {
	rec := recording(t)
	srv := aritest.NewServer(t, rec)
	c := New(Config{URL: srv.URL(), Username: "agent", Password: "agentpw", BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	run(t, c)
	if app := <-srv.Joined(); app != "pbxagent" {
		t.Fatalf("socket app %q", app)
	}
	next(t, c, UpdateConnected)
	// StasisStart, then RecordingStarted of rec-1.
	for _, ev := range rec.Events[:2] {
		srv.Emit("pbxagent", ev.Data)
	}
	u := next(t, c, UpdateRecordingStarted)
	want := Recording{Name: "pbxagent-rec-1", State: "recording", Target: "channel:1795561679.1",
		Channels: []string{"1795561679.1"}, CallIDs: []string{"b081dbd9cb3b3869"}}
	if !sameRecording(u.Recording, want) {
		t.Fatalf("update %+v, want %+v", u.Recording, want)
	}
	if got := c.Recordings(); len(got) != 1 || !sameRecording(got[0], want) {
		t.Fatalf("recordings %+v", got)
	}
	srv.DropSockets()
	next(t, c, UpdateDisconnected)
	<-srv.Joined()
	next(t, c, UpdateConnected)
	if c.Stats().Connects != 2 {
		t.Errorf("connects %d, want 2", c.Stats().Connects)
	}
	// The refresh after reconnect asked for rec-1's state (first recorded GET: "recording").
	var gets []string
	for _, r := range srv.Requests() {
		if r.Method == "GET" && strings.HasPrefix(r.Path, "/ari/recordings/") {
			gets = append(gets, r.String())
		}
	}
	if !slices.Equal(gets, []string{"GET /ari/recordings/live/pbxagent-rec-1 → 200"}) {
		t.Errorf("refresh requests %v", gets)
	}
	if got := c.Recordings(); len(got) != 1 {
		t.Errorf("after reconnect: %+v", got)
	}
}

func sameRecording(a, b Recording) bool {
	return a.Name == b.Name && a.State == b.State && a.Target == b.Target &&
		slices.Equal(a.Channels, b.Channels) && slices.Equal(a.CallIDs, b.CallIDs)
}

// TestReplayEvents applies every recorded event offline: four recordings
// start and finish on the same channel; at the end none is live.
func TestReplayEvents(t *testing.T) {
	rec := recording(t)
	c := New(Config{UpdateQueue: 64})
	started, ended := 0, 0
	for _, ev := range rec.Events {
		if err := c.HandleEvent(ev.Data); err != nil {
			t.Fatalf("%s: %v", ev.Type, err)
		}
	drain:
		for {
			select {
			case u := <-c.updates:
				switch u.Kind {
				case UpdateRecordingStarted:
					started++
					if !slices.Equal(u.Recording.CallIDs, []string{"b081dbd9cb3b3869"}) {
						t.Errorf("%s: callids %v", u.Recording.Name, u.Recording.CallIDs)
					}
				case UpdateRecordingEnded:
					ended++
				}
			default:
				break drain
			}
		}
	}
	if started != 4 || ended != 4 || len(c.Recordings()) != 0 {
		t.Errorf("started %d ended %d live %v, want 4/4/none", started, ended, c.Recordings())
	}
}

// TestSnoopAndBridgeTargets: a recording of a snoop channel holds the spied
// leg's audio; a bridge recording holds every member's.
func TestSnoopAndBridgeTargets(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		want   Recording
	}{
		{name: "snoop", events: []string{
			`{"type":"StasisStart","application":"pbxagent","channel":{"id":"1795561806.10","name":"PJSIP/1001-00000006","protocol_id":"a1"}}`,
			`{"type":"StasisStart","application":"pbxagent","args":[],"channel":{"id":"rec-snoop-1","name":"Snoop/1795561806.10-00000002","protocol_id":""}}`,
			`{"type":"RecordingStarted","application":"pbxagent","recording":{"name":"snoop-rec-1","format":"wav","state":"recording","target_uri":"channel:rec-snoop-1"}}`,
		}, want: Recording{Name: "snoop-rec-1", State: "recording", Target: "channel:rec-snoop-1", Channels: []string{"1795561806.10"}, CallIDs: []string{"a1"}}},
		{name: "bridge", events: []string{
			`{"type":"ChannelEnteredBridge","application":"pbxagent","bridge":{"id":"b1"},"channel":{"id":"1.1","name":"PJSIP/a-1","protocol_id":"ca"}}`,
			`{"type":"ChannelEnteredBridge","application":"pbxagent","bridge":{"id":"b1"},"channel":{"id":"1.2","name":"PJSIP/b-2","protocol_id":"cb"}}`,
			`{"type":"RecordingStarted","application":"pbxagent","recording":{"name":"br","format":"wav","state":"queued","target_uri":"bridge:b1"}}`,
		}, want: Recording{Name: "br", State: "queued", Target: "bridge:b1", Channels: []string{"1.1", "1.2"}, CallIDs: []string{"ca", "cb"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config{})
			for _, e := range tc.events {
				if err := c.HandleEvent([]byte(e)); err != nil {
					t.Fatal(err)
				}
			}
			got := c.Recordings()
			if len(got) != 1 || !sameRecording(got[0], tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBadEvents(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not json", `{"type":`},
		{"no type", `{"channel":{"id":"1"}}`},
		{"wrong shape", `{"type":"StasisStart","channel":"x"}`},
	}
	c := New(Config{})
	for _, tc := range tests {
		if err := c.HandleEvent([]byte(tc.in)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if c.Stats().BadEvents != uint64(len(tests)) {
		t.Errorf("bad events %d", c.Stats().BadEvents)
	}
}

func TestSnoopedChannel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Snoop/1795561806.10-00000002", "1795561806.10"},
		{"PJSIP/1001-00000006", ""},
		{"Snoop/x", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := SnoopedChannel(tc.in); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEventsURL(t *testing.T) {
	tests := []struct {
		in      Config
		want    string
		wantErr bool
	}{
		{in: Config{URL: "http://127.0.0.1:8088/ari", Application: "pbxagent"}, want: "ws://127.0.0.1:8088/ari/events?app=pbxagent"},
		{in: Config{URL: "https://pbx:8089/asterisk/ari/", Application: "a", SubscribeAll: true}, want: "wss://pbx:8089/asterisk/ari/events?app=a&subscribeAll=true"},
		{in: Config{URL: "::"}, wantErr: true},
	}
	for _, tc := range tests {
		got, err := EventsURL(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%+v → %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzHandleEvent(f *testing.F) {
	for _, ev := range recording(f).Events {
		f.Add(ev.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := New(Config{UpdateQueue: 1, MaxChannels: 4})
		_ = c.HandleEvent(data)
		_ = c.Recordings()
	})
}

func BenchmarkHandleEvent(b *testing.B) {
	evs := recording(b).Events
	c := New(Config{UpdateQueue: 1})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = c.HandleEvent(evs[i%len(evs)].Data)
	}
}

// stasisStarts are the recorded StasisStart events of the tap's snoop
// (tap-snoop-1) and externalMedia (tap-em-1) channels.
func stasisStarts(t testing.TB) map[string][]byte {
	t.Helper()
	rec := aritest.LoadFile(t, fixture.Repo(t, "testdata", "ari", "ari-tap-stasisstart.jsonl"))
	out := map[string][]byte{}
	for _, ev := range rec.Events {
		var e struct {
			Channel struct {
				ID string `json:"id"`
			} `json:"channel"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			t.Fatal(err)
		}
		out[e.Channel.ID] = ev.Data
	}
	if len(out) != 2 {
		t.Fatalf("StasisStart events: %d, want 2", len(out))
	}
	return out
}

// TestWaitStasis: WaitStasis returns once the channel's StasisStart arrived
// (also when it came first), and at once while the event socket is down.
func TestWaitStasis(t *testing.T) {
	starts := stasisStarts(t)
	srv := aritest.NewServer(t, nil)
	c := New(Config{URL: srv.URL(), Username: "agent", Password: "agentpw"})
	if err := c.WaitStasis(context.Background(), "tap-snoop-1"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("before Run: %v, want ErrNotConnected", err)
	}
	run(t, c)
	<-srv.Joined()
	next(t, c, UpdateConnected)
	done := make(chan error, 1)
	go func() { done <- c.WaitStasis(context.Background(), "tap-snoop-1") }()
	select {
	case err := <-done:
		t.Fatalf("returned before the StasisStart: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	srv.Emit("", starts["tap-em-1"]) // another channel: keeps waiting
	srv.Emit("", starts["tap-snoop-1"])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitStasis(ctx, "tap-em-1"); err != nil { // came before the call
		t.Fatal(err)
	}
}

// TestMetrics pins issue 16 item 7 for ARI: the event socket's state,
// connects, failures with their time, events; a wrong password is down.
func TestMetrics(t *testing.T) {
	for _, tc := range []struct {
		name, password string
	}{{"up", "agentpw"}, {"wrong password", "nope"}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := aritest.NewServer(t, nil)
			c := New(Config{URL: srv.URL(), Username: "agent", Password: tc.password, BackoffMin: time.Hour})
			reg := prometheus.NewPedanticRegistry()
			if err := c.Register(reg); err != nil {
				t.Fatal(err)
			}
			run(t, c)
			deadline := time.Now().Add(10 * time.Second)
			for c.Stats().Connects+c.Stats().Failures == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			m := amitest.Gather(t, reg)
			if tc.password == "agentpw" {
				next(t, c, UpdateConnected)
				srv.Emit("", stasisStarts(t)["tap-em-1"])
				for c.Stats().Events == 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				m = amitest.Gather(t, reg)
				if m["pbx_ari_up"] != 1 || m["pbx_ari_connects_total"] != 1 || m["pbx_ari_events_total"] != 1 || m["pbx_ari_last_error_timestamp_seconds"] != 0 {
					t.Errorf("metrics while up: %v", m)
				}
				return
			}
			if m["pbx_ari_up"] != 0 || m["pbx_ari_failures_total"] != 1 || m["pbx_ari_connects_total"] != 0 ||
				m["pbx_ari_last_error_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
				t.Errorf("metrics with a wrong password: %v", m)
			}
		})
	}
}

// TestProbesRefusedPort: while the port refuses connections (Asterisk
// restarting) the event socket is retried at least every ProbeMax, whatever
// the backoff has grown to (live: ARI back 15 s after Asterisk was).
func TestProbesRefusedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := New(Config{URL: "http://" + addr + "/ari", Username: "agent", Password: "agentpw",
		BackoffMin: time.Hour, BackoffMax: time.Hour, ProbeMax: 5 * time.Millisecond})
	run(t, c)
	deadline := time.Now().Add(20 * time.Second)
	for c.Stats().Failures < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connect attempts, want several while the port refuses", c.Stats().Failures)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunBadURL: a URL the client cannot use (ARI is optional) is counted
// as a failure with its reason, and Run stays until its ctx ends instead
// of failing: a part that fails stops the daemon.
func TestRunBadURL(t *testing.T) {
	c := New(Config{URL: "http://[::1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before its ctx ended", err)
	case <-time.After(200 * time.Millisecond):
	}
	if st := c.Stats(); st.Failures != 1 || !strings.Contains(st.Err, "bad URL") || c.Connected() {
		t.Errorf("stats %+v, connected %v; want one failure naming the bad URL, not connected", st, c.Connected())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}
