package ari

import (
	"fmt"
	"testing"
)

// TestTablesBounded: recordings that never finish and bridges never
// destroyed (a restarted server never sends their end; a hostile one
// invents names) stay within MaxChannels, as channels did; a bridge whose
// last member left no longer keeps an entry. They grew one entry per
// event: 1,000 recordings, 1,000 bridges here.
func TestTablesBounded(t *testing.T) {
	const max, n = 16, 1000
	c := New(Config{UpdateQueue: 1, MaxChannels: max})
	for i := range n {
		for _, ev := range []string{
			fmt.Sprintf(`{"type":"RecordingStarted","application":"a","recording":{"name":"rec-%d","format":"wav","state":"recording","target_uri":"channel:c%d"}}`, i, i),
			fmt.Sprintf(`{"type":"ChannelEnteredBridge","application":"a","bridge":{"id":"b-%d"},"channel":{"id":"c%d","name":"PJSIP/x-%d"}}`, i, i, i),
			fmt.Sprintf(`{"type":"ChannelEnteredBridge","application":"a","bridge":{"id":"big"},"channel":{"id":"m%d","name":"PJSIP/m-%d"}}`, i, i),
		} {
			if err := c.HandleEvent([]byte(ev)); err != nil {
				t.Fatalf("%s: %v", ev, err)
			}
		}
	}
	c.mu.Lock()
	got := [4]int{len(c.recs), len(c.bridges), len(c.bridges["big"]), len(c.chans)}
	c.mu.Unlock()
	for _, w := range got {
		if w > max {
			t.Errorf("recordings, bridges, members of one, channels = %v; want each at most %d", got, max)
			break
		}
	}
	if ev := c.Stats().Evicted; ev == 0 {
		t.Error("nothing counted as evicted")
	}
	c.mu.Lock()
	members := make([]string, 0, len(c.bridges["big"]))
	for m := range c.bridges["big"] {
		members = append(members, m)
	}
	c.mu.Unlock()
	for _, m := range members {
		if err := c.HandleEvent([]byte(fmt.Sprintf(`{"type":"ChannelLeftBridge","application":"a","bridge":{"id":"big"},"channel":{"id":%q}}`, m))); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	_, kept := c.bridges["big"]
	c.mu.Unlock()
	if kept {
		t.Error("a bridge all members left still has an entry")
	}
}
