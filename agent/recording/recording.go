// Package recording pauses and resumes the recording of a conversation
// everywhere it is recorded (VoIPmonitor's pausecall/unpausecall, PCI DSS):
// the sniffer's own recording of every SIP leg, Asterisk's MixMonitor on
// every channel of the conversation (AMI MixMonitorMute, Direction both),
// the legacy Monitor (AMI PauseMonitor/UnpauseMonitor, Asterisk ≤ 20, learned
// from the "Invalid/unknown command" answer), and ARI live recordings
// (POST/DELETE /recordings/live/{name}/pause).
//
// A conversation is the set of Asterisk channels sharing the Linkedid of the
// channel correlated with the sniffed call, and the sniffed calls of those
// channels. Its pause state is kept and re-applied after an AMI or ARI
// reconnect, to a MixMonitor started while paused (a transfer re-runs the
// dialplan) and to new legs' sniffed calls.
//
// The sniffer is paused first, under the call table's short lock only;
// nothing on the packet path waits for Asterisk.
package recording

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/agent/correlate"
	"pbx-agent/ami"
	"pbx-agent/ami/ari"
	"pbx-agent/sniffer/call"
)

// Pauser is what the web API (handleActiveCall), the manager API
// (pausecall/unpausecall) and the dashboard call.
type Pauser interface {
	Pause(ctx context.Context, ref uint64, on bool) (Result, error)
}

// Calls is the sniffer side; *call.Table satisfies it.
type Calls interface {
	Lookup(ref uint64) (call.CDR, bool)
	SetPaused(ref uint64, on bool) error
	LookupCallID(callID string) (uint64, bool)
}

// AMI runs actions; *ami.Client satisfies it.
type AMI interface {
	Do(ctx context.Context, a ami.Action) (*ami.Response, error)
}

// Channels is the AMI channel table; *ami.Tracker satisfies it.
type Channels interface {
	Channels() []ami.Channel
	Ended() []ami.Channel
}

// ARI controls live recordings; *ari.Client satisfies it.
type ARI interface {
	PauseRecording(ctx context.Context, name string, on bool) error
	Recordings() []ari.Recording
}

// Config wires an Orchestrator. Only Calls is required.
type Config struct {
	Calls    Calls
	AMI      AMI      // nil: no Asterisk manager
	Channels Channels // the AMI tracker; needed with AMI
	ARI      ARI      // nil: ARI not configured
	// ActionTimeout bounds each Asterisk action (an earlier ctx deadline
	// wins). Default 5 s.
	ActionTimeout time.Duration
	// NoLegacyMonitor never sends PauseMonitor/UnpauseMonitor.
	NoLegacyMonitor bool
	// Slack is correlate.Join's time slack (default correlate.DefaultSlack).
	Slack  time.Duration
	Logger *slog.Logger
	// Audit, when set, receives every action as it completes (the audit
	// table); it must not block.
	Audit func(Entry)
}

// Requester says who asked (for the audit log); attach it with WithRequester.
type Requester = call.Requester

// WithRequester attaches who asked to ctx.
func WithRequester(ctx context.Context, r Requester) context.Context {
	return call.WithRequester(ctx, r)
}

func requester(ctx context.Context) Requester { return call.RequesterFrom(ctx) }

// Step is one action taken for a pause or unpause.
type Step struct {
	Target    string `json:"target"` // "sniffer", "ami", "ari"
	Action    string `json:"action"` // pause/unpause, MixMonitorMute, PauseMonitor, UnpauseMonitor
	CallRef   uint64 `json:"callref,omitempty"`
	CallID    string `json:"callid,omitempty"`
	Channel   string `json:"channel,omitempty"`
	Uniqueid  string `json:"uniqueid,omitempty"`
	Recording string `json:"recording,omitempty"`
	// Answer is what the other side said: AMI "Success", "Error: <Message>",
	// ARI "204".
	Answer  string `json:"answer,omitempty"`
	Skipped string `json:"skipped,omitempty"` // why nothing was done (not a failure)
	Err     string `json:"error,omitempty"`
	err     error
}

// OK reports whether the step did not fail.
func (s Step) OK() bool { return s.Err == "" }

// Result says what was paused where and what failed.
type Result struct {
	CallRef uint64 `json:"callref"`
	Paused  bool   `json:"paused"` // the state asked for
	// Already is set when the conversation was already in that state (the
	// actions were sent again anyway: they are idempotent and repair a
	// previous partial failure).
	Already  bool   `json:"already,omitempty"`
	Linkedid string `json:"linkedid,omitempty"`
	Steps    []Step `json:"steps"`
	Failed   int    `json:"failed"`
}

// Count returns how many steps of target/action succeeded (not skipped).
func (r Result) Count(target, action string) int {
	n := 0
	for _, s := range r.Steps {
		if s.Target == target && (action == "" || s.Action == action) && s.OK() && s.Skipped == "" {
			n++
		}
	}
	return n
}

// Summary renders the result in one line, e.g. "paused: sniffer 2 calls,
// MixMonitor 1 channel, PauseMonitor 2 channels, ARI 0 recordings; 0 failed".
func (r Result) Summary() string {
	verb := "unpaused"
	if r.Paused {
		verb = "paused"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: sniffer %d calls, MixMonitor %d channels, Monitor %d channels, ARI %d recordings; %d failed",
		verb, r.Count("sniffer", ""), r.Count("ami", "MixMonitorMute"), r.Count("ami", monitorAction(r.Paused)),
		r.Count("ari", ""), r.Failed)
	for _, s := range r.Steps {
		if !s.OK() {
			fmt.Fprintf(&b, "; %s %s %s: %s", s.Target, s.Action, s.Channel+s.Recording, s.Err)
		}
	}
	return b.String()
}

// Entry is one audit record: a step with its context.
type Entry struct {
	Time      time.Time
	Requester Requester
	CallRef   uint64
	Linkedid  string
	Paused    bool
	Step      Step
}

type conv struct {
	key      string
	linkedid string
	on       bool
	refs     []uint64 // sniffed calls of the conversation
	callIDs  []string
	uids     []string // channels seen in the conversation
}

type keyLock struct {
	mu sync.Mutex
	n  int
}

// Orchestrator implements Pauser.
type Orchestrator struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	convs map[string]*conv // by key: "L:<linkedid>" or "R:<callref>"
	locks map[string]*keyLock

	noMonitor atomic.Bool // PauseMonitor answered "Invalid/unknown command"
	reapplied atomic.Uint64
}

// New returns an orchestrator; call Run to keep the state applied across
// reconnects and new legs.
func New(cfg Config) *Orchestrator {
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Orchestrator{cfg: cfg, log: cfg.Logger.With("component", "recording"),
		convs: map[string]*conv{}, locks: map[string]*keyLock{}}
}

var _ Pauser = (*Orchestrator)(nil)

// Paused reports whether the conversation of a callreference is paused.
func (o *Orchestrator) Paused(ref uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.convs {
		if c.on && slices.Contains(c.refs, ref) {
			return true
		}
	}
	return false
}

// Reapplied counts actions re-sent by Run (reconnects, new legs).
func (o *Orchestrator) Reapplied() uint64 { return o.reapplied.Load() }

func (o *Orchestrator) lock(key string) func() {
	o.mu.Lock()
	l := o.locks[key]
	if l == nil {
		l = &keyLock{}
		o.locks[key] = l
	}
	l.n++
	o.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		o.mu.Lock()
		if l.n--; l.n == 0 {
			delete(o.locks, key)
		}
		o.mu.Unlock()
	}
}

func refKey(ref uint64) string { return "R:" + strconv.FormatUint(ref, 16) }

// Pause pauses (on) or resumes the recording of the conversation the call
// belongs to. Requests for one conversation are applied in order. The error
// wraps call.ErrNoCall when the sniffer has no such active call (nothing was
// done), ErrPartial when some action failed (the Result says which), nil
// when everything succeeded.
func (o *Orchestrator) Pause(ctx context.Context, ref uint64, on bool) (Result, error) {
	res := Result{CallRef: ref, Paused: on}
	cdr, ok := o.cfg.Calls.Lookup(ref)
	if !ok {
		return res, fmt.Errorf("recording: %w: %#x", call.ErrNoCall, ref)
	}
	legs, linkedid := o.legs(&cdr)
	key := refKey(ref)
	if linkedid != "" {
		key = "L:" + linkedid
	}
	unlock := o.lock(key)
	defer unlock()
	res.Linkedid = linkedid

	// The sniffer first: local, immediate.
	refs := []uint64{ref}
	callIDs := []string{cdr.CallID}
	for _, ch := range legs {
		if ch.CallID == "" || slices.Contains(callIDs, ch.CallID) {
			continue
		}
		callIDs = append(callIDs, ch.CallID)
		if r, ok := o.cfg.Calls.LookupCallID(ch.CallID); ok && !slices.Contains(refs, r) {
			refs = append(refs, r)
		}
	}
	o.mu.Lock()
	if c := o.convs[key]; c != nil { // legs found while paused (Run)
		refs = mergeRefs(refs, c.refs)
	}
	o.mu.Unlock()
	for i, r := range refs {
		s := Step{Target: "sniffer", Action: verb(on), CallRef: r}
		if i == 0 {
			s.CallID = cdr.CallID
		}
		if err := o.cfg.Calls.SetPaused(r, on); err != nil {
			if i == 0 {
				return res, fmt.Errorf("recording: %w: %#x: %w", call.ErrNoCall, ref, err)
			}
			if errors.Is(err, call.ErrNoCall) {
				s.Skipped = "call already ended"
			} else {
				s.err = err
			}
		}
		res.Steps = append(res.Steps, o.audit(ctx, &res, s))
	}

	o.mu.Lock()
	c := o.convs[key]
	if c == nil {
		c = &conv{key: key, linkedid: linkedid}
		o.convs[key] = c
	}
	res.Already = c.on == on
	c.on = on
	c.refs = mergeRefs(c.refs, refs)
	c.callIDs = mergeStrings(c.callIDs, callIDs)
	for _, ch := range legs {
		c.uids = mergeStrings(c.uids, []string{ch.Uniqueid})
	}
	uids, cids := slices.Clone(c.uids), slices.Clone(c.callIDs)
	o.mu.Unlock()

	res.Steps = append(res.Steps, o.asterisk(ctx, &res, legs, uids, cids, on)...)
	var errs []error
	for _, s := range res.Steps {
		if s.err != nil {
			res.Failed++
			errs = append(errs, s.err)
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("%w: %d of %d: %w", ErrPartial, len(errs), len(res.Steps), errors.Join(errs...))
	}
	return res, nil
}

func verb(on bool) string {
	if on {
		return "pause"
	}
	return "unpause"
}

func monitorAction(on bool) string {
	if on {
		return "PauseMonitor"
	}
	return "UnpauseMonitor"
}

// legs returns the live channels of the call's conversation (same Linkedid),
// ordered by Uniqueid, and that Linkedid ("" when not correlated).
func (o *Orchestrator) legs(cdr *call.CDR) ([]ami.Channel, string) {
	if o.cfg.Channels == nil {
		return nil, ""
	}
	j := correlate.Join([]correlate.Call{correlate.FromCDR(cdr)}, o.cfg.Channels, o.cfg.Slack)
	a := j.ByCallID[cdr.CallID]
	if a == nil || a.Linkedid == "" {
		return nil, ""
	}
	return o.conversation(a.Linkedid), a.Linkedid
}

func (o *Orchestrator) conversation(linkedid string) []ami.Channel {
	var out []ami.Channel
	for _, ch := range o.cfg.Channels.Channels() { // ordered by Uniqueid
		if ch.Linkedid == linkedid {
			out = append(out, ch)
		}
	}
	return out
}

// asterisk runs the Asterisk-side actions in order: MixMonitorMute on each
// recording leg, Pause/UnpauseMonitor on each leg, then ARI recordings.
func (o *Orchestrator) asterisk(ctx context.Context, res *Result, legs []ami.Channel, uids, callIDs []string, on bool) []Step {
	var steps []Step
	if o.cfg.AMI != nil {
		for _, ch := range legs {
			if ch.Recording {
				steps = append(steps, o.audit(ctx, res, o.mixMonitorMute(ctx, ch.Name, ch.Uniqueid, on)))
			}
		}
		if !o.cfg.NoLegacyMonitor {
			for _, ch := range legs {
				s, ok := o.monitor(ctx, ch.Name, ch.Uniqueid, on)
				steps = append(steps, o.audit(ctx, res, s))
				if !ok {
					break
				}
			}
		}
	}
	if o.cfg.ARI != nil {
		for _, r := range o.cfg.ARI.Recordings() {
			if belongs(r, uids, callIDs) {
				steps = append(steps, o.audit(ctx, res, o.ariPause(ctx, r, on)))
			}
		}
	}
	return steps
}

func belongs(r ari.Recording, uids, callIDs []string) bool {
	for _, u := range r.Channels {
		if slices.Contains(uids, u) {
			return true
		}
	}
	for _, c := range r.CallIDs {
		if slices.Contains(callIDs, c) {
			return true
		}
	}
	return false
}

// MixMonitorMuteAction is the AMI request (spec §7): Direction both, State 1/0.
func MixMonitorMuteAction(channel string, on bool) ami.Action {
	state := "0"
	if on {
		state = "1"
	}
	return ami.NewAction("MixMonitorMute", "Channel", channel, "Direction", "both", "State", state)
}

func (o *Orchestrator) mixMonitorMute(ctx context.Context, name, uid string, on bool) Step {
	s := Step{Target: "ami", Action: "MixMonitorMute", Channel: name, Uniqueid: uid}
	o.do(ctx, &s, MixMonitorMuteAction(name, on))
	return s
}

// monitor sends PauseMonitor/UnpauseMonitor; false once Asterisk says the
// action does not exist (21+, or res_monitor not loaded): then it is
// remembered and skipped.
func (o *Orchestrator) monitor(ctx context.Context, name, uid string, on bool) (Step, bool) {
	s := Step{Target: "ami", Action: monitorAction(on), Channel: name, Uniqueid: uid}
	if o.noMonitor.Load() {
		s.Skipped = "legacy Monitor not available on this Asterisk"
		return s, false
	}
	var ae *ami.ActionError
	if err := o.do(ctx, &s, ami.NewAction(s.Action, "Channel", name)); errors.As(err, &ae) && strings.HasPrefix(ae.Message, "Invalid/unknown command") {
		o.noMonitor.Store(true)
		s.err, s.Err = nil, ""
		s.Skipped = "legacy Monitor not available on this Asterisk: " + ae.Message
		return s, false
	}
	return s, true
}

// do runs one AMI action with the per-action timeout and fills the step.
func (o *Orchestrator) do(ctx context.Context, s *Step, a ami.Action) error {
	actx, cancel := context.WithTimeout(ctx, o.cfg.ActionTimeout)
	defer cancel()
	r, err := o.cfg.AMI.Do(actx, a)
	if r != nil {
		s.Answer = r.Get("Response")
		if m := r.Get("Message"); m != "" {
			s.Answer += ": " + m
		}
	}
	if err != nil {
		s.err = fmt.Errorf("%s %s: %w", a.Name, s.Channel, err)
		s.Err = err.Error()
	}
	return err
}

func (o *Orchestrator) ariPause(ctx context.Context, r ari.Recording, on bool) Step {
	s := Step{Target: "ari", Action: verb(on), Recording: r.Name}
	if len(r.Channels) > 0 {
		s.Uniqueid = r.Channels[0]
	}
	actx, cancel := context.WithTimeout(ctx, o.cfg.ActionTimeout)
	defer cancel()
	if err := o.cfg.ARI.PauseRecording(actx, r.Name, on); err != nil {
		var se *ari.StatusError
		if errors.As(err, &se) {
			s.Answer = strconv.Itoa(se.Code) + ": " + se.Message
		}
		s.err = fmt.Errorf("ARI %s %s: %w", s.Action, r.Name, err)
		s.Err = err.Error()
		return s
	}
	s.Answer = "204"
	return s
}

// audit logs one step (one line per action) and hands it to Config.Audit.
func (o *Orchestrator) audit(ctx context.Context, res *Result, s Step) Step {
	if s.err != nil && s.Err == "" {
		s.Err = s.err.Error()
	}
	rq := requester(ctx)
	lvl := slog.LevelInfo
	if s.Err != "" {
		lvl = slog.LevelWarn
	}
	o.log.Log(ctx, lvl, "recording "+verb(res.Paused), "callref", fmt.Sprintf("%#x", res.CallRef), "linkedid", res.Linkedid,
		"target", s.Target, "action", s.Action, "channel", s.Channel, "uniqueid", s.Uniqueid, "recording", s.Recording,
		"leg_callref", s.CallRef, "answer", s.Answer, "skipped", s.Skipped, "err", s.Err,
		"user", rq.User, "source", rq.Source, "via", rq.Via, "reason", rq.Reason)
	if o.cfg.Audit != nil {
		o.cfg.Audit(Entry{Time: time.Now(), Requester: rq, CallRef: res.CallRef, Linkedid: res.Linkedid, Paused: res.Paused, Step: s})
	}
	return s
}

func mergeRefs(a, b []uint64) []uint64 {
	for _, r := range b {
		if !slices.Contains(a, r) {
			a = append(a, r)
		}
	}
	return a
}

func mergeStrings(a, b []string) []string {
	for _, s := range b {
		if s != "" && !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}
