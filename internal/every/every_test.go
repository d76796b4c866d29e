package every

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestTick: f runs once a period until it returns false, or until ctx
// ends (in a synctest bubble: the clock is the bubble's).
func TestTick(t *testing.T) {
	tests := []struct {
		name   string
		stopAt int           // f returns false on this call (0: never)
		cancel time.Duration // ctx ends after this
		want   int
	}{
		{"f stops", 3, time.Hour, 3},
		{"ctx ends", 0, 5*time.Second + time.Millisecond, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), tt.cancel)
				defer cancel()
				start := time.Now()
				n := 0
				Tick(ctx, time.Second, func(now time.Time) bool {
					n++
					if got := now.Sub(start); got != time.Duration(n)*time.Second {
						t.Errorf("call %d at %v", n, got)
					}
					return n != tt.stopAt
				})
				if n != tt.want {
					t.Errorf("%d calls, want %d", n, tt.want)
				}
			})
		})
	}
}
