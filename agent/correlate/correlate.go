// Package correlate joins sniffed SIP calls with the Asterisk channels the AMI
// tracker saw: by SIP Call-ID when the channel's Call-ID is known, else by
// endpoint and time (a channel's Uniqueid starts with its creation epoch),
// and groups the legs of one conversation by Linkedid.
package correlate

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"pbx-agent/agent/cdr"
	"pbx-agent/ami"
	"pbx-agent/sniffer/call"
)

// Call is what correlation needs of a sniffed call.
type Call struct {
	CallID         string
	CallRef        uint64
	Start          time.Time
	Caller, Called string
}

// FromCDR adapts the sniffer's record.
func FromCDR(c *call.CDR) Call {
	return Call{CallID: c.CallID, CallRef: c.CallRef, Start: c.CallDate, Caller: c.Caller, Called: c.Called}
}

// Channels is the part of ami.Tracker correlation reads.
type Channels interface {
	Channels() []ami.Channel
	Ended() []ami.Channel
}

// ChannelRef names one Asterisk channel.
type ChannelRef struct {
	Name     string `json:"name"`
	Uniqueid string `json:"uniqueid"`
}

// Asterisk is the joined view of one sniffed call (replay JSON "asterisk").
type Asterisk struct {
	Channels    []ChannelRef `json:"channels"`
	Linkedid    string       `json:"linkedid"`
	AccountCode string       `json:"accountcode,omitempty"`
	Context     string       `json:"context,omitempty"`
	Exten       string       `json:"exten,omitempty"`
	Legs        []string     `json:"legs"`                   // Call-IDs of the other legs with the same Linkedid
	LegRefs     []uint64     `json:"leg_callrefs,omitempty"` // their callreferences
	Match       string       `json:"match"`                  // "callid" or "time"
}

// Result maps Call-ID → joined view; Matched/Total is the figure to report.
type Result struct {
	ByCallID       map[string]*Asterisk
	Matched, Total int
}

// DefaultSlack is how far a channel's creation second may be from the
// call's first INVITE for a time match.
const DefaultSlack = 2 * time.Second

// Join correlates calls with channels (live and ended).
func Join(calls []Call, src Channels, slack time.Duration) Result {
	if slack <= 0 {
		slack = DefaultSlack
	}
	chans := append(src.Ended(), src.Channels()...)
	res := Result{ByCallID: map[string]*Asterisk{}, Total: len(calls)}
	byCallID := map[string]int{}
	for i, c := range chans {
		if c.CallID != "" {
			byCallID[c.CallID] = i
		}
	}
	chanOf := make([]int, len(calls)) // index into chans, -1 = none
	used := make([]bool, len(chans))
	match := make([]string, len(calls))
	for i, c := range calls {
		chanOf[i] = -1
		if j, ok := byCallID[c.CallID]; ok && !used[j] {
			chanOf[i], used[j], match[i] = j, true, "callid"
		}
	}
	matchedLinked := map[string]bool{}
	for i := range calls {
		if chanOf[i] >= 0 {
			matchedLinked[chans[chanOf[i]].Linkedid] = true
		}
	}
	for i, c := range calls {
		if chanOf[i] >= 0 {
			continue
		}
		best, bestScore := -1, time.Duration(1<<62)
		for j, ch := range chans {
			if used[j] || ch.CallID != "" && ch.CallID != c.CallID {
				continue
			}
			ep := endpoint(ch.Name)
			if ep == "" || !sameEndpoint(ep, c.Called) && !sameEndpoint(ep, c.Caller) {
				continue
			}
			created, ok := uidTime(ch.Uniqueid)
			if !ok {
				continue
			}
			d := c.Start.Truncate(time.Second).Sub(created)
			if d < 0 {
				d = -d
			}
			if d > slack {
				continue
			}
			if !matchedLinked[ch.Linkedid] {
				d += slack // prefer a conversation that already has a matched leg
			}
			if d < bestScore {
				best, bestScore = j, d
			}
		}
		if best >= 0 {
			chanOf[i], used[best], match[i] = best, true, "time"
		}
	}
	for i, c := range calls {
		j := chanOf[i]
		if j < 0 {
			continue
		}
		ch := chans[j]
		a := &Asterisk{Channels: []ChannelRef{{Name: ch.Name, Uniqueid: ch.Uniqueid}}, Linkedid: ch.Linkedid,
			AccountCode: ch.AccountCode, Context: ch.Context, Exten: ch.Exten, Legs: []string{}, Match: match[i]}
		for k, o := range calls {
			if k != i && chanOf[k] >= 0 && chans[chanOf[k]].Linkedid == ch.Linkedid {
				a.Legs = append(a.Legs, o.CallID)
				a.LegRefs = append(a.LegRefs, o.CallRef)
			}
		}
		slices.Sort(a.Legs)
		res.ByCallID[c.CallID] = a
		res.Matched++
	}
	return res
}

// endpoint returns "1002" for "PJSIP/1002-0000000a" or "SIP/1002-00000001".
func endpoint(name string) string {
	_, rest, ok := strings.Cut(name, "/")
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(rest, '-'); i > 0 {
		return rest[:i]
	}
	return ""
}

// sameEndpoint: the SIP user is the endpoint name, or a contact user built
// from it ("1002-0x55de83666b70", as baresip registers).
func sameEndpoint(ep, user string) bool {
	return user == ep || strings.HasPrefix(user, ep+"-")
}

// uidTime is the creation second encoded in a Uniqueid ("1795560337.9").
func uidTime(uid string) (time.Time, bool) {
	sec, _, _ := strings.Cut(uid, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// Record is what the CDR store keeps of a finished call's correlation
// (cdr_asterisk): its channel, Linkedid and, once the channel has hung up,
// Asterisk's hang-up cause; nil when no channel matches.
func Record(c *call.CDR, src Channels, slack time.Duration) *cdr.Asterisk {
	a := Join([]Call{FromCDR(c)}, src, slack).ByCallID[c.CallID]
	if a == nil || len(a.Channels) == 0 {
		return nil
	}
	ch := a.Channels[0]
	r := &cdr.Asterisk{Linkedid: a.Linkedid, Uniqueid: ch.Uniqueid, Channel: ch.Name,
		AccountCode: a.AccountCode, Context: a.Context, Exten: a.Exten, Match: a.Match}
	for _, list := range [][]ami.Channel{src.Ended(), src.Channels()} {
		for _, x := range list {
			if x.Uniqueid == ch.Uniqueid && x.HungUp {
				r.HangupCause, r.HangupCauseText = x.Cause, x.CauseTxt
			}
		}
	}
	return r
}
