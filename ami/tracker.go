package ami

import (
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Channel is the tracker's view of one Asterisk channel (one leg).
type Channel struct {
	Uniqueid          string
	Linkedid          string
	Name              string
	State             int
	StateDesc         string
	CallerIDNum       string
	CallerIDName      string
	ConnectedLineNum  string
	ConnectedLineName string
	AccountCode       string
	Context           string
	Exten             string
	Application       string `json:",omitempty"`
	BridgeID          string `json:",omitempty"`
	DialStatus        string `json:",omitempty"`
	// CallID is the SIP Call-ID of this leg's dialog; CallIDSource says how
	// it was learned (Getvar, VarSet SIPCALLID, BRIDGEPVTCALLID of the peer, ...).
	CallID       string `json:",omitempty"`
	CallIDSource string `json:",omitempty"`
	Recording    bool   // MixMonitor running (MixMonitorStart until MixMonitorStop/Hangup)
	RecordFile   string `json:",omitempty"`
	MutedRead    bool   `json:",omitempty"`
	MutedWrite   bool   `json:",omitempty"`
	// Set once the channel is gone.
	HungUp   bool   `json:",omitempty"`
	Cause    int    `json:",omitempty"`
	CauseTxt string `json:",omitempty"`
	// From a Cdr event whose UniqueID is this channel.
	CDRDisposition string `json:",omitempty"`
	CDRBillsec     int    `json:",omitempty"`

	peerName, peerCallID string
	asked                string // channel name a Getvar was already wanted for
}

// Want asks the owner to fetch a channel variable (the Call-ID) with Getvar.
type Want struct {
	Uniqueid string
	Channel  string
	Variable string
}

// CallIDVariable returns the Getvar expression giving the SIP Call-ID of a
// channel name, or "" for non-SIP technologies (spec §8).
func CallIDVariable(channel string) string {
	switch {
	case strings.HasPrefix(channel, "PJSIP/"):
		return "CHANNEL(pjsip,call-id)"
	case strings.HasPrefix(channel, "SIP/"):
		return "SIPCALLID"
	}
	return ""
}

// TrackerConfig tunes a Tracker.
type TrackerConfig struct {
	// CallIDVars are channel variables whose VarSet / ChanVariable value is the
	// channel's own Call-ID. Default: SIPCALLID, CALLID.
	CallIDVars []string
	// History is how many ended channels are kept (default 1024).
	History int
	// OnEnd, when set, is called (under the tracker lock: keep it short) with
	// each channel that hung up.
	OnEnd func(Channel)
}

// Tracker keeps the table of live channels keyed by Uniqueid. It is fed with
// Notifications (events, gaps, snapshots) and read through copies.
type Tracker struct {
	cfg    TrackerConfig
	mu     sync.RWMutex
	live   map[string]*Channel
	ended  []Channel
	stale  bool
	hungup map[string]bool // Uniqueids hung up since the last gap, the last maxHungup
	// hungupQ holds hungup's keys in the order they hung up, a ring from
	// hungupNext once full: the oldest is forgotten for a new one.
	hungupQ    []string
	hungupNext int
	refused    uint64 // events that would have added a channel past maxLive
}

// maxLive bounds the live channels: an event of a Uniqueid not yet known
// adds one, and only its Hangup (or a resync) removes it, so a server that
// sends events of channels it never hangs up grew the table without end.
// Past it, events of new channels are counted and ignored until a Hangup
// or a snapshot makes room.
const maxLive = 100000

// maxHungup is how many hung-up Uniqueids the tracker remembers (so a late
// event does not bring a channel back, and a snapshot after a gap leaves
// out channels whose Hangup came meanwhile). It remembered every one until
// the next gap: a session up for months held them all (1 M channels: 75 MB).
const maxHungup = 16384

// markHungup remembers that uid hung up.
func (t *Tracker) markHungup(uid string) {
	if t.hungup[uid] {
		return
	}
	if len(t.hungupQ) < maxHungup {
		t.hungupQ = append(t.hungupQ, uid)
	} else {
		delete(t.hungup, t.hungupQ[t.hungupNext])
		t.hungupQ[t.hungupNext] = uid
		t.hungupNext = (t.hungupNext + 1) % maxHungup
	}
	t.hungup[uid] = true
}

// forgetHungup empties hungup (a gap, or a snapshot applied).
func (t *Tracker) forgetHungup() {
	clear(t.hungup)
	clear(t.hungupQ)
	t.hungupQ, t.hungupNext = t.hungupQ[:0], 0
}

// NewTracker returns an empty tracker.
func NewTracker(cfg TrackerConfig) *Tracker {
	if cfg.CallIDVars == nil {
		cfg.CallIDVars = []string{"SIPCALLID", "CALLID"}
	}
	if cfg.History <= 0 {
		cfg.History = 1024
	}
	return &Tracker{cfg: cfg, live: map[string]*Channel{}, hungup: map[string]bool{}}
}

// Apply updates the table and returns the Getvar lookups it wants.
func (t *Tracker) Apply(n Notification) []Want {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch n.Kind {
	case NoteEvent:
		return t.event(&n.Event)
	case NoteGap:
		t.stale = true
		t.forgetHungup()
	case NoteSnapshot:
		return t.snapshot(n.Items)
	}
	return nil
}

// Event is Apply for one event message.
func (t *Tracker) Event(m Message) []Want {
	return t.Apply(Notification{Kind: NoteEvent, Event: m})
}

// Refused counts events ignored because they would have added a channel
// past the limit of live channels.
func (t *Tracker) Refused() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.refused
}

// Stale reports whether a gap happened and no snapshot has been applied since.
func (t *Tracker) Stale() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.stale
}

// SetCallID records a Call-ID learned out of band (a Getvar answer).
func (t *Tracker) SetCallID(uniqueid, callID, source string) {
	if callID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.live[uniqueid]; c != nil {
		c.CallID, c.CallIDSource = callID, source
		return
	}
	for i := range t.ended {
		if t.ended[i].Uniqueid == uniqueid && t.ended[i].CallID == "" {
			t.ended[i].CallID, t.ended[i].CallIDSource = callID, source
		}
	}
}

// Channels returns the live channels ordered by Uniqueid.
func (t *Tracker) Channels() []Channel {
	t.mu.RLock()
	out := make([]Channel, 0, len(t.live))
	for _, c := range t.live {
		out = append(out, *c)
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Channel) int { return CompareUniqueid(a.Uniqueid, b.Uniqueid) })
	return out
}

// Ended returns the remembered hung-up channels, oldest first.
func (t *Tracker) Ended() []Channel {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return slices.Clone(t.ended)
}

// Channel returns one channel, live or recently ended.
func (t *Tracker) Channel(uniqueid string) (Channel, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if c := t.live[uniqueid]; c != nil {
		return *c, true
	}
	for i := len(t.ended) - 1; i >= 0; i-- {
		if t.ended[i].Uniqueid == uniqueid {
			return t.ended[i], true
		}
	}
	return Channel{}, false
}

// CompareUniqueid orders "epoch.seq" Uniqueids numerically.
func CompareUniqueid(a, b string) int {
	as, aq, _ := strings.Cut(a, ".")
	bs, bq, _ := strings.Cut(b, ".")
	if c := cmpNum(as, bs); c != 0 {
		return c
	}
	return cmpNum(aq, bq)
}

func cmpNum(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func (t *Tracker) get(uid string) *Channel {
	if uid == "" || uid == "none" {
		return nil
	}
	c := t.live[uid]
	if c == nil {
		if t.hungup[uid] {
			return nil
		}
		if len(t.live) >= maxLive {
			t.refused++
			return nil
		}
		c = &Channel{Uniqueid: uid}
		t.live[uid] = c
	}
	return c
}

// block copies the standard channel block (with a key prefix such as "Dest").
func block(c *Channel, m *Message, prefix string) {
	for _, f := range m.Fields {
		k := f.Key
		if prefix != "" {
			if len(k) <= len(prefix) || !strings.EqualFold(k[:len(prefix)], prefix) {
				continue
			}
			k = k[len(prefix):]
		}
		switch strings.ToLower(k) {
		case "channel":
			c.Name = f.Value
		case "channelstate":
			c.State, _ = strconv.Atoi(f.Value)
		case "channelstatedesc":
			c.StateDesc = f.Value
		case "calleridnum":
			c.CallerIDNum = f.Value
		case "calleridname":
			c.CallerIDName = f.Value
		case "connectedlinenum":
			c.ConnectedLineNum = f.Value
		case "connectedlinename":
			c.ConnectedLineName = f.Value
		case "accountcode":
			c.AccountCode = f.Value
		case "context":
			c.Context = f.Value
		case "exten":
			c.Exten = f.Value
		case "linkedid":
			c.Linkedid = f.Value
		}
	}
}

func (t *Tracker) want(c *Channel) []Want {
	if c.CallID != "" || c.asked == c.Name {
		return nil
	}
	c.asked = c.Name
	if v := CallIDVariable(c.Name); v != "" {
		return []Want{{Uniqueid: c.Uniqueid, Channel: c.Name, Variable: v}}
	}
	return nil
}

func (t *Tracker) isCallIDVar(name string) bool {
	for _, v := range t.cfg.CallIDVars {
		if strings.EqualFold(strings.TrimLeft(name, "_"), v) {
			return true
		}
	}
	return false
}

func (t *Tracker) chanVars(c *Channel, m *Message) {
	for _, v := range m.Values("ChanVariable") {
		name, val, ok := strings.Cut(v, "=")
		if ok && val != "" && c.CallID == "" && t.isCallIDVar(name) {
			c.CallID, c.CallIDSource = val, "ChanVariable "+name
		}
	}
}

func (t *Tracker) event(m *Message) []Want {
	ev := m.Event()
	uid := m.Get("Uniqueid")
	switch ev {
	case "Newchannel":
		c := t.get(uid)
		if c == nil {
			return nil
		}
		block(c, m, "")
		t.chanVars(c, m)
		return t.want(c)
	case "Newstate", "NewCallerid", "NewConnectedLine", "NewAccountCode", "Newexten":
		c := t.get(uid)
		if c == nil {
			return nil
		}
		block(c, m, "")
		if ev == "Newexten" {
			c.Application = m.Get("Application")
		}
		t.chanVars(c, m)
	case "Rename":
		if c := t.get(uid); c != nil {
			c.Name = m.Get("Newname")
			return t.want(c)
		}
	case "VarSet":
		c := t.get(uid)
		if c == nil {
			return nil
		}
		block(c, m, "")
		t.varSet(c, m.Get("Variable"), m.Get("Value"))
	case "DialBegin", "DialState", "DialEnd":
		if c := t.get(uid); c != nil {
			block(c, m, "")
			if ev == "DialEnd" {
				c.DialStatus = m.Get("DialStatus")
			}
		}
		if d := t.get(m.Get("DestUniqueid")); d != nil {
			block(d, m, "Dest")
			if ev == "DialEnd" {
				d.DialStatus = m.Get("DialStatus")
			}
			return t.want(d)
		}
	case "BridgeEnter":
		if c := t.get(uid); c != nil {
			block(c, m, "")
			c.BridgeID = m.Get("BridgeUniqueid")
		}
	case "BridgeLeave":
		if c := t.get(uid); c != nil {
			block(c, m, "")
			c.BridgeID = ""
		}
	case "MixMonitorStart":
		if c := t.get(uid); c != nil {
			c.Recording = true
		}
	case "MixMonitorStop":
		if c := t.get(uid); c != nil {
			c.Recording, c.MutedRead, c.MutedWrite = false, false, false
		}
	case "MixMonitorMute":
		if c := t.get(uid); c != nil {
			c.mute(m.Get("Direction"), m.Get("State") == "1")
		}
	case "Hangup":
		t.hangup(uid, m)
	case "Cdr":
		t.cdr(m)
	}
	return nil
}

// varSet keeps the channel variables the tracker follows: the SIP Call-ID,
// the bridged peer (name, Call-ID) and the MixMonitor file.
func (t *Tracker) varSet(c *Channel, name, val string) {
	switch {
	case t.isCallIDVar(name):
		if val != "" {
			c.CallID, c.CallIDSource = val, "VarSet "+name
		}
	case strings.EqualFold(name, "BRIDGEPEER"):
		c.peerName = val
		t.peer(c)
	case strings.EqualFold(name, "BRIDGEPVTCALLID"):
		c.peerCallID = val
		t.peer(c)
	case strings.EqualFold(name, "MIXMONITOR_FILENAME"):
		c.RecordFile = val
	}
}

// mute applies a MixMonitorMute: direction "read", "write" or both.
func (c *Channel) mute(direction string, on bool) {
	d := strings.ToLower(direction)
	if d != "write" {
		c.MutedRead = on
	}
	if d != "read" {
		c.MutedWrite = on
	}
}

// hangup ends the channel uid with the event's cause. A channel already
// ended (e.g. gone during a gap) is completed in place.
func (t *Tracker) hangup(uid string, m *Message) {
	c := t.live[uid]
	if c == nil {
		for i := len(t.ended) - 1; i >= 0; i-- {
			if e := &t.ended[i]; e.Uniqueid == uid {
				e.cause(m)
				t.markHungup(uid)
				return
			}
		}
		c = &Channel{Uniqueid: uid}
	}
	block(c, m, "")
	c.HungUp, c.Recording = true, false
	c.cause(m)
	delete(t.live, uid)
	t.markHungup(uid)
	t.end(*c)
}

// cause takes the hang-up cause of a Hangup event.
func (c *Channel) cause(m *Message) {
	c.Cause, _ = strconv.Atoi(m.Get("Cause"))
	c.CauseTxt = m.Get("Cause-txt")
}

func (t *Tracker) end(c Channel) {
	t.ended = append(t.ended, c)
	if len(t.ended) > t.cfg.History {
		t.ended = slices.Delete(t.ended, 0, len(t.ended)-t.cfg.History)
	}
	if t.cfg.OnEnd != nil {
		t.cfg.OnEnd(c)
	}
}

// peer uses BRIDGEPEER + BRIDGEPVTCALLID set on c: the value is the Call-ID
// of the peer channel's dialog.
func (t *Tracker) peer(c *Channel) {
	if c.peerName == "" || c.peerCallID == "" {
		return
	}
	for _, p := range t.live {
		if p.Name == c.peerName && p.CallID == "" {
			p.CallID, p.CallIDSource = c.peerCallID, "BRIDGEPVTCALLID of "+c.Name
		}
	}
}

func (t *Tracker) cdr(m *Message) {
	uid := m.Get("UniqueID")
	apply := func(c *Channel) {
		c.CDRDisposition = m.Get("Disposition")
		c.CDRBillsec, _ = strconv.Atoi(m.Get("BillableSeconds"))
		if a := m.Get("AccountCode"); a != "" {
			c.AccountCode = a
		}
	}
	if c := t.live[uid]; c != nil {
		apply(c)
		return
	}
	for i := len(t.ended) - 1; i >= 0; i-- {
		if t.ended[i].Uniqueid == uid {
			apply(&t.ended[i])
			return
		}
	}
}

// snapshot replaces the table with CoreShowChannel items, keeping what was
// already known about surviving channels (Call-ID, recording state) and
// leaving out channels whose Hangup was seen after the gap.
func (t *Tracker) snapshot(items []Message) []Want {
	old := t.live
	t.live = make(map[string]*Channel, len(items))
	var wants []Want
	for i := range items {
		m := &items[i]
		uid := m.Get("Uniqueid")
		if uid == "" || t.hungup[uid] {
			continue
		}
		c := &Channel{Uniqueid: uid}
		if o := old[uid]; o != nil {
			*c = *o
		}
		block(c, m, "")
		c.Application = m.Get("Application")
		c.BridgeID = m.Get("BridgeId")
		t.chanVars(c, m)
		t.live[uid] = c
		wants = append(wants, t.want(c)...)
	}
	// Channels that disappeared while we were away never get a Hangup.
	for uid, o := range old {
		if _, ok := t.live[uid]; !ok && !t.hungup[uid] {
			c := *o
			c.HungUp, c.Recording, c.CauseTxt = true, false, "gone during AMI gap"
			t.end(c)
		}
	}
	t.stale = false
	t.forgetHungup()
	return wants
}
