package recording

import (
	"context"
	"slices"
	"strings"
	"time"

	"pbx-agent/ami"
	"pbx-agent/ami/ari"
)

// SweepInterval is how often Run forgets conversations that ended.
const SweepInterval = 30 * time.Second

// Run keeps paused conversations paused until ctx ends:
//   - after an AMI reconnect (the resync snapshot) it re-sends MixMonitorMute
//     and PauseMonitor on every leg, and forgets what it learned about
//     PauseMonitor (Asterisk may have been upgraded);
//   - a MixMonitorStart on a channel of a paused conversation (a transfer
//     re-runs the dialplan) is muted at once;
//   - a new leg's sniffed call (its Call-ID from VarSet CALLID/SIPCALLID/
//     BRIDGEPVTCALLID, or the tracker at BridgeEnter) is paused in the sniffer;
//   - an ARI recording started on a paused conversation, and every such
//     recording after an ARI reconnect, is paused.
//
// notes is an AMI subscription (ami.Client.Subscribe(n).C()), updates the
// ARI client's Updates(); either may be nil. Run returns ctx's error, or nil
// once both are closed.
func (o *Orchestrator) Run(ctx context.Context, notes <-chan ami.Notification, updates <-chan ari.Update) error {
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for notes != nil || updates != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case n, ok := <-notes:
			if !ok {
				notes = nil
				continue
			}
			o.onAMI(ctx, n)
		case u, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			o.onARI(ctx, u)
		case <-t.C:
			o.Sweep()
		}
	}
	return nil
}

// paused returns copies of the paused conversations (all, or those with
// the given Linkedid).
func (o *Orchestrator) paused(linkedid string) []conv {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []conv
	for _, c := range o.convs {
		if c.on && (linkedid == "" || c.linkedid == linkedid) {
			cc := *c
			cc.refs, cc.callIDs, cc.uids = slices.Clone(c.refs), slices.Clone(c.callIDs), slices.Clone(c.uids)
			out = append(out, cc)
		}
	}
	slices.SortFunc(out, func(a, b conv) int { return strings.Compare(a.key, b.key) })
	return out
}

// still runs fn under the conversation's lock if it is still paused, with a
// fresh copy of its state.
func (o *Orchestrator) still(key string, fn func(c *conv)) {
	unlock := o.lock(key)
	defer unlock()
	o.mu.Lock()
	c := o.convs[key]
	if c == nil || !c.on {
		o.mu.Unlock()
		return
	}
	cc := *c
	cc.refs, cc.callIDs, cc.uids = slices.Clone(c.refs), slices.Clone(c.callIDs), slices.Clone(c.uids)
	o.mu.Unlock()
	fn(&cc)
}

func (o *Orchestrator) update(key string, fn func(c *conv)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.convs[key]; c != nil {
		fn(c)
	}
}

// step audits one re-applied action.
func (o *Orchestrator) step(ctx context.Context, c *conv, s Step) {
	o.reapplied.Add(1)
	res := &Result{Paused: true, Linkedid: c.linkedid}
	if len(c.refs) > 0 {
		res.CallRef = c.refs[0]
	}
	o.audit(WithRequester(ctx, Requester{Via: "reapply"}), res, s)
}

func (o *Orchestrator) onAMI(ctx context.Context, n ami.Notification) {
	switch n.Kind {
	case ami.NoteSnapshot:
		o.noMonitor.Store(false)
		for _, c := range o.paused("") {
			if c.linkedid == "" || o.cfg.AMI == nil {
				continue
			}
			o.still(c.key, func(c *conv) { o.reapplyAMI(ctx, c, n.Items) })
		}
	case ami.NoteEvent:
		ev := &n.Event
		lid := ev.Get("Linkedid")
		if lid == "" {
			return
		}
		for _, c := range o.paused(lid) {
			o.still(c.key, func(c *conv) { o.onLegEvent(ctx, c, ev) })
		}
	}
}

// reapplyAMI re-sends the AMI actions for the legs listed in a resync
// snapshot; whether a leg records comes from the tracker (it keeps the
// MixMonitor flag of channels that survived the gap).
func (o *Orchestrator) reapplyAMI(ctx context.Context, c *conv, items []ami.Message) {
	recording := map[string]bool{}
	if o.cfg.Channels != nil {
		for _, ch := range o.cfg.Channels.Channels() {
			recording[ch.Uniqueid] = ch.Recording
		}
	}
	var legs []ami.Channel
	for i := range items {
		if items[i].Get("Linkedid") != c.linkedid {
			continue
		}
		uid := items[i].Get("Uniqueid")
		legs = append(legs, ami.Channel{Uniqueid: uid, Name: items[i].Get("Channel"), Linkedid: c.linkedid, Recording: recording[uid]})
	}
	slices.SortFunc(legs, func(a, b ami.Channel) int { return ami.CompareUniqueid(a.Uniqueid, b.Uniqueid) })
	for _, ch := range legs {
		if ch.Recording {
			o.step(ctx, c, o.mixMonitorMute(ctx, ch.Name, ch.Uniqueid, true))
		}
	}
	if !o.cfg.NoLegacyMonitor {
		for _, ch := range legs {
			s, ok := o.monitor(ctx, ch.Name, ch.Uniqueid, true)
			o.step(ctx, c, s)
			if !ok {
				break
			}
		}
	}
}

// onLegEvent handles an event of a channel in a paused conversation.
func (o *Orchestrator) onLegEvent(ctx context.Context, c *conv, ev *ami.Message) {
	uid, name := ev.Get("Uniqueid"), ev.Get("Channel")
	if uid != "" && !slices.Contains(c.uids, uid) {
		o.update(c.key, func(c *conv) { c.uids = mergeStrings(c.uids, []string{uid}) })
	}
	switch ev.Event() {
	case "MixMonitorStart":
		if o.cfg.AMI != nil {
			o.step(ctx, c, o.mixMonitorMute(ctx, name, uid, true))
		}
	case "VarSet":
		switch v := strings.TrimLeft(strings.ToUpper(ev.Get("Variable")), "_"); v {
		case "CALLID", "SIPCALLID", "BRIDGEPVTCALLID":
			o.pauseLegCall(ctx, c, ev.Get("Value"))
		}
	case "BridgeEnter":
		if o.cfg.Channels != nil {
			for _, ch := range o.conversation(c.linkedid) {
				o.pauseLegCall(ctx, c, ch.CallID)
			}
		}
	}
}

// pauseLegCall pauses the sniffed call with that Call-ID if it is a new leg.
func (o *Orchestrator) pauseLegCall(ctx context.Context, c *conv, callID string) {
	if callID == "" || slices.Contains(c.callIDs, callID) {
		return
	}
	ref, ok := o.cfg.Calls.LookupCallID(callID)
	if !ok {
		return // not sniffed (yet): the next event or BridgeEnter retries
	}
	c.callIDs = append(c.callIDs, callID)
	s := Step{Target: "sniffer", Action: "pause", CallRef: ref, CallID: callID}
	if err := o.cfg.Calls.SetPaused(ref, true); err != nil {
		s.err = err
	}
	o.update(c.key, func(cc *conv) {
		cc.callIDs = mergeStrings(cc.callIDs, []string{callID})
		cc.refs = mergeRefs(cc.refs, []uint64{ref})
	})
	o.step(ctx, c, s)
}

func (o *Orchestrator) onARI(ctx context.Context, u ari.Update) {
	if o.cfg.ARI == nil {
		return
	}
	var recs []ari.Recording
	switch u.Kind {
	case ari.UpdateRecordingStarted:
		recs = []ari.Recording{u.Recording}
	case ari.UpdateConnected:
		recs = o.cfg.ARI.Recordings()
	default:
		return
	}
	for _, c := range o.paused("") {
		o.still(c.key, func(c *conv) {
			for _, r := range recs {
				if belongs(r, c.uids, c.callIDs) {
					o.step(ctx, c, o.ariPause(ctx, r, true))
				}
			}
		})
	}
}

// Sweep forgets conversations that are not paused, or whose sniffed calls
// and Asterisk channels are all gone. Run calls it every SweepInterval.
func (o *Orchestrator) Sweep() {
	live := map[string]bool{}
	if o.cfg.Channels != nil {
		for _, ch := range o.cfg.Channels.Channels() {
			live[ch.Linkedid] = true
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, c := range o.convs {
		if !c.on {
			delete(o.convs, k)
			continue
		}
		alive := c.linkedid != "" && live[c.linkedid]
		for _, r := range c.refs {
			if _, ok := o.cfg.Calls.Lookup(r); ok {
				alive = true
			}
		}
		if !alive {
			delete(o.convs, k)
		}
	}
}
