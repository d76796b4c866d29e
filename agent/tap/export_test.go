package tap

import "time"

// SetClock replaces the arrival clock the RTP is timed by (before Run): a
// test replaying a stream times it by its own schedule, not by when a
// loaded machine lets the packets through.
func SetClock(t *Tapper, now func() time.Time) { t.now = now }
