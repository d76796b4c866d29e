package recording

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pbx-agent/ami"
	"pbx-agent/ami/amitest"
	"pbx-agent/ami/ari"
	"pbx-agent/ami/ari/aritest"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
)

// calls is a call table stand-in: refs by Call-ID, pause state per ref.
type calls struct {
	mu     sync.Mutex
	byID   map[string]uint64
	paused map[uint64]bool
}

func newCalls(ids ...string) *calls {
	c := &calls{byID: map[string]uint64{}, paused: map[uint64]bool{}}
	for i, id := range ids {
		c.byID[id] = uint64(0x100 + i)
	}
	return c
}

func (c *calls) Lookup(ref uint64) (call.CDR, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, r := range c.byID {
		if r == ref {
			return call.CDR{CallID: id, CallRef: r, CallDate: time.Unix(1795560337, 0)}, true
		}
	}
	return call.CDR{}, false
}

func (c *calls) SetPaused(ref uint64, on bool) error {
	if _, ok := c.Lookup(ref); !ok {
		return call.ErrNoCall
	}
	c.mu.Lock()
	c.paused[ref] = on
	c.mu.Unlock()
	return nil
}

func (c *calls) LookupCallID(id string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.byID[id]
	return r, ok
}

func (c *calls) isPaused(ref uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused[ref]
}

func TestUnknownCall(t *testing.T) {
	o := New(Config{Calls: newCalls()})
	if _, err := o.Pause(context.Background(), 0x7, true); !errors.Is(err, call.ErrNoCall) {
		t.Fatalf("err %v", err)
	}
}

// TestNoAsterisk: without AMI/ARI only the sniffer is paused; twice is harmless.
func TestNoAsterisk(t *testing.T) {
	cs := newCalls("a")
	o := New(Config{Calls: cs})
	ctx := context.Background()
	tests := []struct {
		name        string
		on, already bool
	}{
		{"pause", true, false}, {"pause again", true, true}, {"unpause", false, false}, {"unpause again", false, true},
	}
	for _, tc := range tests {
		res, err := o.Pause(ctx, 0x100, tc.on)
		if err != nil || res.Already != tc.already || len(res.Steps) != 1 || cs.isPaused(0x100) != tc.on {
			t.Errorf("%s: %v %+v", tc.name, err, res)
		}
		if o.Paused(0x100) != tc.on {
			t.Errorf("%s: Paused() = %v", tc.name, !tc.on)
		}
	}
}

// TestLegacyMonitorAbsent: an Asterisk without res_monitor answers
// PauseMonitor with "Invalid/unknown command" (as the recorded unknown
// action): the step is skipped, not failed, and never sent again.
func TestLegacyMonitorAbsent(t *testing.T) {
	srv := fakeAsterisk(t, false)
	w := &wire{}
	client, _ := startAMI(t, srv, w)
	o := New(Config{Calls: newCalls(callIDA, callIDB), AMI: client, Channels: client.Tracker()})
	for i, on := range []bool{true, false} {
		res, err := o.Pause(context.Background(), 0x100, on)
		if err != nil {
			t.Fatalf("%v: %v", on, err)
		}
		got := stepStrings(res)
		wantLast := "ami " + monitorAction(on) + " " + callerChan + " Error: Invalid/unknown command: PauseMonitor. Use Action: ListCommands to show available commands. legacy Monitor not available on this Asterisk: Invalid/unknown command: PauseMonitor. Use Action: ListCommands to show available commands."
		if i == 1 {
			wantLast = "ami UnpauseMonitor " + callerChan + " legacy Monitor not available on this Asterisk"
		}
		if len(got) != 4 || got[3] != wantLast || res.Failed != 0 {
			t.Errorf("%v: steps %q", on, got)
		}
	}
	if n := len(packets(w.conn(0).sent(), "PauseMonitor")) + len(packets(w.conn(0).sent(), "UnpauseMonitor")); n != 1 {
		t.Errorf("%d Pause/UnpauseMonitor requests, want 1", n)
	}
	// The recorded unknown-action answer has exactly the shape the fake sends.
	raw, err := os.ReadFile(amiFile(t, "ami-unknown-action.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "Message: Invalid/unknown command: NoSuchAction.") {
		t.Errorf("recorded unknown action: %q", raw)
	}
}

// TestFailureReported: a MixMonitorMute refused by Asterisk (the recorded
// error answer) and a lost AMI connection are reported, never swallowed.
func TestFailureReported(t *testing.T) {
	srv := fakeAsterisk(t, true)
	w := &wire{}
	client, _ := startAMI(t, srv, w)
	raw, err := os.ReadFile(amiFile(t, "ami-mixmonitormute.raw"))
	if err != nil {
		t.Fatal(err)
	}
	_, pkts, err := amitest.Split(raw)
	if err != nil {
		t.Fatal(err)
	}
	bad := pkts[len(pkts)-1] // mmm-baddir: "Invalid direction specified…"
	failing := amitest.NewAnswers()
	failing.Add("MixMonitorMute", "", "", bad.Msg.ActionID(), bad.Raw)
	srv.Answers = failing // consulted for the next actions (PauseMonitor falls back to "unknown")

	o := New(Config{Calls: newCalls(callIDA, callIDB), AMI: client, Channels: client.Tracker(), NoLegacyMonitor: true})
	res, err := o.Pause(context.Background(), 0x100, true)
	if !errors.Is(err, ErrPartial) || !errors.Is(err, ami.ErrAction) || res.Failed != 1 {
		t.Fatalf("err %v, failed %d", err, res.Failed)
	}
	if !strings.Contains(res.Summary(), "MixMonitorMute "+callerChan+": ami: action failed: MixMonitorMute: Error: Invalid direction specified") {
		t.Errorf("summary %q", res.Summary())
	}
	// The sniffer side was still paused.
	if res.Count("sniffer", "") != 2 {
		t.Errorf("sniffer steps %q", stepStrings(res))
	}

	// AMI down: the action fails with ErrNotConnected.
	o2 := New(Config{Calls: newCalls(callIDA, callIDB), AMI: ami.New(ami.Config{}), Channels: client.Tracker(), NoLegacyMonitor: true})
	res, err = o2.Pause(context.Background(), 0x100, true)
	if !errors.Is(err, ami.ErrNotConnected) || res.Failed != 1 {
		t.Errorf("not connected: %v %q", err, stepStrings(res))
	}
}

// TestReconnectReapplies: the AMI connection drops while paused; after the
// reconnect's resync snapshot the mute and PauseMonitor are sent again on the
// new connection.
func TestReconnectReapplies(t *testing.T) {
	srv := fakeAsterisk(t, true)
	w := &wire{}
	client, sub := startAMI(t, srv, w)
	o := New(Config{Calls: newCalls(callIDA, callIDB), AMI: client, Channels: client.Tracker()})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = o.Run(ctx, sub.C(), nil) })
	defer func() { cancel(); wg.Wait() }()

	if _, err := o.Pause(context.Background(), 0x100, true); err != nil {
		t.Fatal(err)
	}
	before := o.Reapplied()
	w.conn(0).Close()
	for i := 0; o.Reapplied() < before+3; i++ {
		if i > 2000 {
			t.Fatalf("re-applied %d actions", o.Reapplied()-before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	sent := w.conn(1).sent()
	mm := packets(sent, "MixMonitorMute")
	want := recordedRequest(t, "ami-call-answered.sent.raw", "ev-mmm-on")
	if len(mm) != 1 || mm[0] != want {
		t.Errorf("after reconnect MixMonitorMute %q, want %q", mm, want)
	}
	if pm := packets(sent, "PauseMonitor"); len(pm) != 2 {
		t.Errorf("after reconnect PauseMonitor %q", pm)
	}
}

// amiRecorder is an AMI stand-in answering Success and logging requests.
type amiRecorder struct {
	mu   sync.Mutex
	sent []string
}

func (a *amiRecorder) Do(_ context.Context, act ami.Action) (*ami.Response, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := []string{act.Name}
	for _, x := range act.Fields {
		f = append(f, x.Value)
	}
	a.sent = append(a.sent, strings.Join(f, " "))
	return &ami.Response{Message: ami.Message{Fields: []ami.Field{{Key: "Response", Value: "Success"}}}}, nil
}

func (a *amiRecorder) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.sent)
}

// TestNewLegWhilePaused: a MixMonitorStart in a paused conversation (a
// transfer re-runs the dialplan) is muted at once; a new leg's Call-ID
// (BRIDGEPVTCALLID) pauses its sniffed call.
func TestNewLegWhilePaused(t *testing.T) {
	tr := ami.NewTracker(ami.TrackerConfig{})
	ev := func(kv ...string) ami.Message {
		m := ami.Message{}
		for i := 0; i+1 < len(kv); i += 2 {
			m.Fields = append(m.Fields, ami.Field{Key: kv[i], Value: kv[i+1]})
		}
		return m
	}
	tr.Event(ev("Event", "Newchannel", "Channel", callerChan, "Uniqueid", linkedid, "Linkedid", linkedid, "ChanVariable", "x=y"))
	tr.SetCallID(linkedid, callIDA, "test")
	cs := newCalls(callIDA, "carol-call-id")
	a := &amiRecorder{}
	o := New(Config{Calls: cs, AMI: a, Channels: tr, NoLegacyMonitor: true})
	if _, err := o.Pause(context.Background(), 0x100, true); err != nil {
		t.Fatal(err)
	}
	if got := a.requests(); len(got) != 0 {
		t.Fatalf("no MixMonitor yet, sent %q", got)
	}
	notes := make(chan ami.Notification, 4)
	notes <- ami.Notification{Kind: ami.NoteEvent, Event: ev("Event", "MixMonitorStart", "Channel", callerChan, "Uniqueid", linkedid, "Linkedid", linkedid)}
	notes <- ami.Notification{Kind: ami.NoteEvent, Event: ev("Event", "VarSet", "Channel", callerChan, "Uniqueid", linkedid, "Linkedid", linkedid,
		"Variable", "BRIDGEPVTCALLID", "Value", "carol-call-id")}
	notes <- ami.Notification{Kind: ami.NoteEvent, Event: ev("Event", "MixMonitorStart", "Channel", "PJSIP/9-1", "Uniqueid", "9.9", "Linkedid", "9.9")}
	close(notes)
	if err := o.Run(context.Background(), notes, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := a.requests(), []string{"MixMonitorMute " + callerChan + " both 1"}; !slices.Equal(got, want) {
		t.Errorf("sent %q, want %q", got, want)
	}
	if !cs.isPaused(0x101) || !o.Paused(0x101) {
		t.Errorf("new leg's call not paused")
	}
	// Unpause covers the new leg too; then Sweep forgets the conversation.
	res, err := o.Pause(context.Background(), 0x100, false)
	if err != nil || cs.isPaused(0x101) || res.Count("sniffer", "unpause") != 2 {
		t.Errorf("unpause: %v %q", err, stepStrings(res))
	}
	o.Sweep()
	if len(o.convs) != 0 {
		t.Errorf("sweep kept %d conversations", len(o.convs))
	}
}

// TestARI: a Stasis channel's live recording (flow b of the ARI
// recordings, served by the fake ARI) is paused and unpaused with the
// call; a recording started while paused is paused at once.
func TestARI(t *testing.T) {
	rec := aritest.LoadFile(t, fixture.Repo(t, "testdata", "ari", "ari-stasis-record-pause.jsonl"))
	srv := aritest.NewServer(t, rec)
	ac := ari.New(ari.Config{URL: srv.URL(), Username: "agent", Password: "agentpw"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = ac.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	<-srv.Joined()
	cs := newCalls("b081dbd9cb3b3869") // the Stasis channel's protocol_id
	o := New(Config{Calls: cs, ARI: ac})
	updates := make(chan ari.Update, 16)
	var started []*aritest.Event
	for _, ev := range rec.Events {
		if ev.Type == "RecordingStarted" || ev.Type == "StasisStart" {
			started = append(started, ev)
		}
	}
	// StasisStart + RecordingStarted rec-1.
	srv.Emit("pbxagent", started[0].Data)
	srv.Emit("pbxagent", started[1].Data)
	for u := range ac.Updates() {
		if u.Kind == ari.UpdateRecordingStarted {
			break
		}
	}
	res, err := o.Pause(context.Background(), 0x100, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := stepStrings(res); !slices.Equal(got, []string{"sniffer pause b081dbd9cb3b3869", "ari pause pbxagent-rec-1 204"}) {
		t.Errorf("pause steps %q", got)
	}
	// rec-2 starts while paused: Run pauses it.
	srv.Emit("pbxagent", started[2].Data)
	for u := range ac.Updates() {
		if u.Kind == ari.UpdateRecordingStarted {
			updates <- u
			break
		}
	}
	close(updates)
	if err := o.Run(context.Background(), nil, updates); err != nil {
		t.Fatal(err)
	}
	// The recording never unpaused rec-2: the fake answers 404 as Asterisk
	// does for an unknown name, and the failure is reported.
	res, err = o.Pause(context.Background(), 0x100, false)
	if !errors.Is(err, ErrPartial) || !errors.Is(err, ari.ErrNotFound) || res.Failed != 1 {
		t.Errorf("unpause: err %v failed %d", err, res.Failed)
	}
	if got := stepStrings(res); !slices.Equal(got, []string{"sniffer unpause b081dbd9cb3b3869",
		"ari unpause pbxagent-rec-1 204", "ari unpause pbxagent-rec-2 404: Recording not found ari: not found: DELETE /recordings/live/pbxagent-rec-2/pause: 404 Recording not found"}) {
		t.Errorf("unpause steps %q", got)
	}
	var routes []string
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "/pause") {
			routes = append(routes, r.String())
		}
	}
	want := []string{"POST /ari/recordings/live/pbxagent-rec-1/pause → 204", "POST /ari/recordings/live/pbxagent-rec-2/pause → 204",
		"DELETE /ari/recordings/live/pbxagent-rec-1/pause → 204", "DELETE /ari/recordings/live/pbxagent-rec-2/pause → 404"}
	if !slices.Equal(routes, want) {
		t.Errorf("ARI requests\n got %q\nwant %q", routes, want)
	}
}
