// Package every runs a periodic job (a janitor, a keepalive, a status
// line) until its context ends: the ticker loop each of them would write.
package every

import (
	"context"
	"time"
)

// Tick calls f with each tick's time, every d, until ctx ends or f
// returns false. The first call is d after Tick starts.
func Tick(ctx context.Context, d time.Duration, f func(now time.Time) bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if !f(now) {
				return
			}
		}
	}
}
