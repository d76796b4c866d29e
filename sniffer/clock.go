package sniffer

import (
	"sync/atomic"
	"time"
)

// replayClock maps wall time to a capture's time while a file is replayed
// at its recorded pace: first is the first packet's timestamp, fed at start.
type replayClock struct{ first, start time.Time }

// clock is the Sniffer's view of "now" (see Now).
type clock struct{ p atomic.Pointer[replayClock] }

func (c *clock) begin(first, start time.Time) { c.p.Store(&replayClock{first, start}) }
func (c *clock) end()                         { c.p.Store(nil) }

// Now is the time of the packets being read: during a replay at the
// recorded pace it is the capture's clock (the first packet's timestamp
// plus the time since it was fed), otherwise the wall clock. Durations of
// active calls and capture→page latencies use it, so a replayed call shows
// its own duration, not the time since the capture was made. Safe for
// concurrent use.
func (s *Sniffer) Now() time.Time {
	if rc := s.clk.p.Load(); rc != nil {
		return rc.first.Add(time.Since(rc.start))
	}
	return time.Now()
}
