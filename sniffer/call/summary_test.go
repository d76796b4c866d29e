package call

import (
	"testing"
	"time"
)

func TestSummary(t *testing.T) {
	t0 := time.Date(2026, 4, 14, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		cdr           CDR
		now           time.Time
		wantDur       time.Duration
		wantConnected bool
		wantConnect   time.Duration
	}{
		{"ringing", CDR{CallRef: 1, CallDate: t0}, t0.Add(2500 * time.Millisecond), 2 * time.Second, false, 0},
		{"answered", CDR{CallRef: 2, CallDate: t0, ConnectTime: t0.Add(3 * time.Second)}, t0.Add(10900 * time.Millisecond), 10 * time.Second, true, 7 * time.Second},
		{"clock behind the call", CDR{CallRef: 3, CallDate: t0}, t0.Add(-time.Second), 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.cdr.Summary(7, tc.now)
			if s.Ref != tc.cdr.CallRef || s.Sensor != 7 || s.Duration != tc.wantDur || s.Connected != tc.wantConnected || s.ConnectDuration != tc.wantConnect {
				t.Errorf("Summary = %+v, want duration %v connected %v (%v)", s, tc.wantDur, tc.wantConnected, tc.wantConnect)
			}
		})
	}
}
