package ami_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/ami"
	"pbx-agent/ami/amitest"
)

func td(name string) string { return filepath.Join("..", "testdata", "ami", name) }

func slice(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(td(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answers loads the recorded answers of the answered scenario's action session
// and the cut-out CoreShowChannels / Getvar slices.
func answers(t *testing.T, csc ...string) *amitest.Answers {
	a := amitest.NewAnswers()
	for _, n := range csc {
		if err := a.AddSlice("CoreShowChannels", "", "", slice(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	rec := amitest.LoadFiles(t, td("ami-actions-answered.raw"), td("ami-actions-answered.sent.raw"))
	a.AddRecording(rec)
	return a
}

func dialConn(t *testing.T, ctx context.Context, s *amitest.Server) *ami.Conn {
	t.Helper()
	c, err := ami.NewConn(ctx, s.Pipe(), ami.ConnConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMD5KeyMatchesRecording(t *testing.T) {
	// ami-auth-md5-ok: Challenge 64290949, secret monpass → the Key the recording sent.
	sum := md5.Sum([]byte("64290949" + "monpass"))
	if got := hex.EncodeToString(sum[:]); got != "a17dc25522a3f1173c0fdf315231547b" {
		t.Fatalf("md5 key %s", got)
	}
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		md5     bool
		wantErr error
	}{
		{name: "plain ok", secret: "monpass"},
		{name: "md5 ok", secret: "monpass", md5: true},
		{name: "plain wrong", secret: "wrong", wantErr: ami.ErrAuth},
		{name: "md5 wrong", secret: "wrong", md5: true, wantErr: ami.ErrAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s := &amitest.Server{Users: map[string]string{"monitor": "monpass"}}
			defer s.Close()
			c := dialConn(t, ctx, s)
			if c.Version() != "9.0.0" {
				t.Errorf("version %q", c.Version())
			}
			err := c.Login(ctx, "monitor", tc.secret, tc.md5, "off")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				<-c.Done() // Asterisk closes the socket after a failed login
				return
			}
			if err := c.Logoff(ctx); err != nil {
				t.Fatalf("logoff: %v", err)
			}
		})
	}
}

func TestActionsAgainstRecordedAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := &amitest.Server{Users: map[string]string{"monitor": "monpass"}, Answers: answers(t, "ami-coreshowchannels.raw")}
	defer s.Close()
	c := dialConn(t, ctx, s)
	if err := c.Login(ctx, "monitor", "monpass", false, "off"); err != nil {
		t.Fatal(err)
	}
	// Before login-free actions: many concurrent callers on one connection.
	type res struct {
		name string
		r    *ami.Response
		err  error
	}
	out := make(chan res, 4)
	for _, a := range []ami.Action{
		ami.NewAction("CoreShowChannels"),
		ami.NewAction("Getvar", "Channel", "PJSIP/1001-00000009", "Variable", "CHANNEL(pjsip,call-id)"),
		ami.NewAction("Getvar", "Channel", "PJSIP/1002-0000000a", "Variable", "CHANNEL(pjsip,call-id)"),
		ami.NewAction("Getvar", "Channel", "PJSIP/nosuch-00000000", "Variable", "CHANNEL(pjsip,call-id)"),
	} {
		go func() {
			r, err := c.Do(ctx, a)
			out <- res{a.Name + " " + a.Fields0(), r, err}
		}()
	}
	got := map[string]res{}
	for range 4 {
		r := <-out
		got[r.name] = r
	}
	csc := got["CoreShowChannels "]
	if csc.err != nil || len(csc.r.Items) != 2 || csc.r.Complete.Get("ListItems") != "2" {
		t.Fatalf("CoreShowChannels: %v %+v", csc.err, csc.r)
	}
	if n := csc.r.Items[0].Get("Channel"); n != "PJSIP/1002-0000000a" {
		t.Errorf("first item %q", n)
	}
	if r := got["Getvar PJSIP/1001-00000009"]; r.err != nil || r.r.Get("Value") != "f431e3956bf2ebd6" {
		t.Errorf("caller call-id: %v %v", r.err, r.r)
	}
	if r := got["Getvar PJSIP/1002-0000000a"]; r.err != nil || r.r.Get("Value") != "63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f" {
		t.Errorf("callee call-id: %v %v", r.err, r.r)
	}
	var ae *ami.ActionError
	if r := got["Getvar PJSIP/nosuch-00000000"]; !errors.As(r.err, &ae) || ae.Message != "No such channel" {
		t.Errorf("no such channel: %v", r.err)
	}
}

// callServer is a fake manager replaying the answered call's events in one
// session (sess sets how: StartAfter, DropAfter, Interval; Events is filled
// in), more sessions as given; every user is monitor/monpass.
func callServer(t *testing.T, sess amitest.Session, more ...amitest.Session) *amitest.Server {
	t.Helper()
	rec := amitest.LoadFiles(t, td("ami-call-answered.raw"), td("ami-call-answered.sent.raw"))
	sess.Events = rec.Events()
	s := &amitest.Server{Users: map[string]string{"monitor": "monpass"},
		Answers: answers(t, "ami-coreshowchannels-empty.raw"), Sessions: append([]amitest.Session{sess}, more...)}
	s.Start(t)
	return s
}

// runClient starts a Client against s and returns it with a stop func that
// cancels and joins Run.
func runClient(t *testing.T, s *amitest.Server, cfg ami.Config) (*ami.Client, *ami.Subscription, func()) {
	if cfg.Addr == "" {
		cfg.Addr = s.Addr()
	}
	cfg.Username, cfg.Secret = "monitor", "monpass"
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = time.Millisecond, 5*time.Millisecond
	}
	cfg.PingInterval = -1
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c := ami.New(cfg)
	sub := c.Subscribe(4096) // before Run: sees every notification
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return c, sub, func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
}

// waitFor polls cond; the deadline only guards against a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClientFullCall(t *testing.T) {
	s := callServer(t, amitest.Session{StartAfter: "CoreShowChannels"})
	c, sub, stop := runClient(t, s, ami.Config{})
	defer stop()
	<-s.StreamDone
	tr := c.Tracker()
	waitFor(t, "both legs hung up", func() bool { return len(tr.Ended()) == 2 })
	waitFor(t, "call-ids", func() bool {
		a, _ := tr.Channel("1795560337.9")
		b, _ := tr.Channel("1795560337.10")
		return a.CallID == "f431e3956bf2ebd6" && b.CallID == "63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f"
	})
	if live := tr.Channels(); len(live) != 0 {
		t.Errorf("live channels left: %+v", live)
	}
	a, _ := tr.Channel("1795560337.9")
	if a.Linkedid != "1795560337.9" || a.Cause != 16 || a.CDRDisposition != "ANSWERED" {
		t.Errorf("caller: %+v", a)
	}
	if sub.Dropped() != 0 {
		t.Errorf("dropped %d", sub.Dropped())
	}
	if st := c.Stats(); st.Connects != 1 || st.Resyncs < 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestClientReconnectResync(t *testing.T) {
	rec := amitest.LoadFiles(t, td("ami-call-answered.raw"), td("ami-call-answered.sent.raw"))
	events := rec.Events()
	// Drop right after the first BridgeEnter: the answered call is up.
	drop := slices.IndexFunc(events, func(p amitest.Packet) bool { return p.Msg.Event() == "BridgeEnter" }) + 1
	s := &amitest.Server{Users: map[string]string{"monitor": "monpass"},
		// first connect: no channels; after the reconnect: the cancel scenario's ringing pair.
		Answers: answers(t),
		Sessions: []amitest.Session{
			{Events: events, DropAfter: drop, StartAfter: "CoreShowChannels", Answers: answers(t, "ami-coreshowchannels-empty.raw")},
			{Answers: answers(t, "ami-coreshowchannels-ringing.raw")},
		}}
	s.Start(t)
	c, sub, stop := runClient(t, s, ami.Config{})
	defer stop()
	tr := c.Tracker()
	waitFor(t, "reconnect", func() bool { return s.Connections() >= 2 })
	waitFor(t, "table = new set", func() bool {
		live := tr.Channels()
		return len(live) == 2 && live[0].Uniqueid == "1795560238.2" && !tr.Stale()
	})
	live := tr.Channels()
	want := []struct {
		uid, name, linked string
		state             int
	}{
		{"1795560238.2", "PJSIP/1001-00000002", "1795560238.2", 4},
		{"1795560238.3", "PJSIP/1002-00000003", "1795560238.2", 5},
	}
	for i, w := range want {
		if live[i].Uniqueid != w.uid || live[i].Name != w.name || live[i].Linkedid != w.linked || live[i].State != w.state {
			t.Errorf("live[%d] = %+v, want %+v", i, live[i], w)
		}
	}
	// The channels of the interrupted call are not lost: they ended during the gap.
	gone := 0
	for _, e := range tr.Ended() {
		if e.Linkedid == "1795560337.9" && e.CauseTxt == "gone during AMI gap" {
			gone++
		}
	}
	if gone != 2 {
		t.Errorf("ended = %+v", tr.Ended())
	}
	// Subscribers were told about the gap.
	gaps := 0
	for len(sub.C()) > 0 {
		if n := <-sub.C(); n.Kind == ami.NoteGap {
			gaps++
		}
	}
	if gaps < 2 {
		t.Errorf("%d gap notifications, want >= 2 (lost + resync)", gaps)
	}
}

func TestClientAuthFailureBacksOff(t *testing.T) {
	s := &amitest.Server{Users: map[string]string{"monitor": "other"}}
	s.Start(t)
	cfg := ami.Config{AuthBackoff: time.Hour}
	c, _, stop := runClient(t, s, cfg)
	waitFor(t, "first failure", func() bool { return c.Stats().Failures >= 1 })
	stop() // ctx cancels the hour-long back-off at once
	if n := s.Connections(); n != 1 {
		t.Errorf("%d connections during auth back-off, want 1", n)
	}
	if _, err := c.Do(context.Background(), ami.NewAction("Ping")); !errors.Is(err, ami.ErrNotConnected) {
		t.Errorf("Do while down: %v", err)
	}
}

func TestSlowSubscriberDoesNotBlockReader(t *testing.T) {
	s := callServer(t, amitest.Session{StartAfter: "CoreShowChannels"})
	c, _, stop := runClient(t, s, ami.Config{})
	defer stop()
	slow := c.Subscribe(1) // never read
	<-s.StreamDone
	waitFor(t, "tracker done", func() bool { return len(c.Tracker().Ended()) == 2 })
	// The reader still answers actions.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, "connected", func() bool { _, err := c.Do(ctx, ami.NewAction("Ping")); return err == nil })
	if slow.Dropped() == 0 {
		t.Fatalf("slow subscriber dropped nothing out of %d events", s.EventsWritten())
	}
	t.Logf("slow subscriber: %d of %d events dropped", slow.Dropped(), s.EventsWritten())
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		min, max time.Duration
	}{
		{"first", 0, time.Second, time.Minute},
		{"grows", 3, time.Second, time.Minute},
		{"capped", 30, time.Second, 10 * time.Second},
	}
	for _, tc := range tests {
		full := tc.min << tc.n
		if tc.n > 20 || full > tc.max {
			full = tc.max
		}
		for range 50 {
			d := ami.Backoff(tc.n, tc.min, tc.max)
			if d < full/2 || d > full {
				t.Errorf("%s: %v outside [%v, %v]", tc.name, d, full/2, full)
			}
		}
	}
}

// TestClientBannerTimeout pins issue 17 item 10 (first half): a port that
// accepts and never greets is given up after BannerTimeout, not waited on
// forever.
func TestClientBannerTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never written to
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	c, _, stop := runClient(t, nil, ami.Config{Addr: ln.Addr().String(), BannerTimeout: 50 * time.Millisecond})
	defer stop()
	waitFor(t, "a banner timeout", func() bool { return c.Stats().Failures >= 1 })
	if st := c.Stats(); !strings.Contains(st.Err, "banner") || st.LastError.IsZero() || c.State() == ami.StateUp {
		t.Errorf("after a silent server: %+v, state %v", st, c.State())
	}
}

// TestClientShortSessionKeepsBackoff pins issue 17 item 10 (second half): a
// server that accepts the login and drops the session at once is retried
// after the backoff, not immediately (the review saw 180 reconnects in 15 s).
func TestClientShortSessionKeepsBackoff(t *testing.T) {
	s := callServer(t, amitest.Session{DropAfter: 1})
	c, _, stop := runClient(t, s, ami.Config{BackoffMin: time.Hour, BackoffMax: time.Hour})
	waitFor(t, "the session lost", func() bool { return c.Stats().Failures >= 1 && c.State() == ami.StateBackoff })
	time.Sleep(200 * time.Millisecond) // room for a reconnect storm to show
	stop()
	if n := s.Connections(); n != 1 {
		t.Errorf("%d connections after a session lost right after login, want 1 (backoff kept)", n)
	}
	if st := c.Stats(); st.Connects != 1 || st.Failures != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestClientHealthySessionReconnectsAtOnce: a session that was up longer
// than HealthyAfter starts the backoff over (Asterisk restarted).
func TestClientHealthySessionReconnectsAtOnce(t *testing.T) {
	s := callServer(t, amitest.Session{DropAfter: 2, Interval: 30 * time.Millisecond}, amitest.Session{})
	c, _, stop := runClient(t, s, ami.Config{BackoffMin: time.Hour, BackoffMax: time.Hour, HealthyAfter: time.Millisecond})
	defer stop()
	waitFor(t, "the reconnect", func() bool { return c.Stats().Connects >= 2 })
}

// TestClientProbesRefusedPort pins issue 16 item 9: while the port refuses
// connections (Asterisk restarting) the client retries at least every
// ProbeMax, whatever the backoff has grown to, and logs in as soon as the
// port answers (AMI was down 19.6 s after a restart while ARI was back in 5).
func TestClientProbesRefusedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused from now on
	c, _, stop := runClient(t, nil, ami.Config{Addr: addr, BackoffMin: time.Hour, BackoffMax: time.Hour, ProbeMax: 5 * time.Millisecond})
	defer stop()
	waitFor(t, "several refused probes", func() bool { return c.Stats().Failures >= 3 })
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	s := &amitest.Server{Users: map[string]string{"monitor": "monpass"}, Answers: answers(t, "ami-coreshowchannels-empty.raw")}
	s.Serve(t, ln)
	waitFor(t, "login once the port answers", func() bool { return c.State() == ami.StateUp })
}

// TestClientMD5Login: ami_auth = md5 logs in with Challenge/MD5 (no Secret
// on the wire).
func TestClientMD5Login(t *testing.T) {
	s := &amitest.Server{Users: map[string]string{"monitor": "monpass"}, Answers: answers(t, "ami-coreshowchannels-empty.raw"), RefusePlain: true}
	s.Start(t)
	c, _, stop := runClient(t, s, ami.Config{MD5: true})
	defer stop()
	waitFor(t, "MD5 login", func() bool { return c.State() == ami.StateUp })
}

// TestClientMetrics pins issue 16 item 7: /metrics shows the AMI session up
// with events counted, and a wrong secret as down with auth failures and the
// time of the last error.
func TestClientMetrics(t *testing.T) {
	t.Run("up", func(t *testing.T) {
		s := callServer(t, amitest.Session{StartAfter: "CoreShowChannels"})
		c, _, stop := runClient(t, s, ami.Config{})
		defer stop()
		reg := prometheus.NewPedanticRegistry()
		if err := c.Register(reg); err != nil {
			t.Fatal(err)
		}
		<-s.StreamDone
		waitFor(t, "events counted", func() bool { return c.Stats().Events >= uint64(s.EventsWritten()) })
		m := amitest.Gather(t, reg)
		if m["pbx_ami_up"] != 1 || m["pbx_ami_connects_total"] != 1 || m["pbx_ami_events_total"] < float64(s.EventsWritten()) || m["pbx_ami_last_error_timestamp_seconds"] != 0 {
			t.Errorf("metrics while up: %v", m)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		s := &amitest.Server{Users: map[string]string{"monitor": "other"}}
		s.Start(t)
		c, _, stop := runClient(t, s, ami.Config{AuthBackoff: time.Hour})
		defer stop()
		reg := prometheus.NewPedanticRegistry()
		if err := c.Register(reg); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the refused login", func() bool { return c.Stats().AuthFailures >= 1 })
		m := amitest.Gather(t, reg)
		if m["pbx_ami_up"] != 0 || m["pbx_ami_auth_failures_total"] != 1 || m["pbx_ami_backoff"] != 1 ||
			m["pbx_ami_last_error_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
			t.Errorf("metrics with a wrong secret: %v", m)
		}
	})
}
