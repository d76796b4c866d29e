package ami

import (
	"fmt"
	"testing"
)

func ev(name string, kv ...string) Message {
	m := Message{Fields: []Field{{Key: "Event", Value: name}}}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Fields = append(m.Fields, Field{Key: kv[i], Value: kv[i+1]})
	}
	return m
}

// TestTrackerHungupBounded: a session that stays up remembers the last
// maxHungup hung-up channels, not every one since it connected (1 M
// channels held 1 M Uniqueids, 75 MB, until the next reconnect). A late
// event of a recent one still does not bring it back.
func TestTrackerHungupBounded(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	const n = 3*maxHungup + 5
	uid := func(i int) string { return fmt.Sprintf("1733580000.%d", i) }
	for i := range n {
		tr.Event(ev("Newchannel", "Uniqueid", uid(i), "Linkedid", uid(i), "Channel", fmt.Sprintf("PJSIP/100-%08x", i)))
		tr.Event(ev("Hangup", "Uniqueid", uid(i), "Cause", "16"))
		tr.Event(ev("Hangup", "Uniqueid", uid(i), "Cause", "16")) // repeated: remembered once
	}
	if len(tr.hungup) != maxHungup || len(tr.hungupQ) != maxHungup {
		t.Errorf("%d hung-up channels remembered (%d in order), want %d", len(tr.hungup), len(tr.hungupQ), maxHungup)
	}
	for _, i := range []int{n - 1, n - maxHungup} {
		if !tr.hungup[uid(i)] {
			t.Errorf("%s (hung up %d channels ago) forgotten", uid(i), n-1-i)
		}
	}
	if tr.hungup[uid(n-maxHungup-1)] {
		t.Errorf("%s remembered past the limit", uid(n-maxHungup-1))
	}
	tr.Event(ev("VarSet", "Uniqueid", uid(n-1), "Variable", "X", "Value", "late"))
	if live := tr.Channels(); len(live) != 0 {
		t.Errorf("a late event brought back %d channels", len(live))
	}
	tr.Apply(Notification{Kind: NoteGap})
	if len(tr.hungup) != 0 || len(tr.hungupQ) != 0 {
		t.Errorf("after a gap %d/%d remembered, want none", len(tr.hungup), len(tr.hungupQ))
	}
}

// TestTrackerLiveBounded: a server sending events of channels it never
// hangs up (Newchannel, VarSet of made-up Uniqueids) fills the table up to
// maxLive, no further (it grew one channel per event: 1 M made-up
// Uniqueids held 1 M channels); a Hangup makes room again.
func TestTrackerLiveBounded(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	const n = maxLive + 1000
	for i := range n {
		kind := []string{"Newchannel", "VarSet"}[i%2]
		tr.Event(ev(kind, "Uniqueid", fmt.Sprintf("1733580000.%d", i), "Channel", "PJSIP/x", "Variable", "X", "Value", "1"))
	}
	if got := len(tr.Channels()); got != maxLive || tr.Refused() != n-maxLive {
		t.Errorf("%d channels live, %d refused; want %d, %d", got, tr.Refused(), maxLive, n-maxLive)
	}
	tr.Event(ev("Hangup", "Uniqueid", "1733580000.0", "Cause", "16"))
	tr.Event(ev("Newchannel", "Uniqueid", "1733580001.0", "Channel", "PJSIP/y"))
	if _, ok := tr.Channel("1733580001.0"); !ok {
		t.Error("no room for a new channel after a Hangup")
	}
}
