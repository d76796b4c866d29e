package call

import (
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/rtp"
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

// TestSummaryFigures: the summary carries each direction's main stream
// (the one with most packets), the VLAN and whether recording is paused.
func TestSummaryFigures(t *testing.T) {
	t0 := time.Date(2026, 4, 14, 10, 0, 0, 0, time.UTC)
	ap := netip.MustParseAddrPort
	c := CDR{CallRef: 9, CallDate: t0, VLAN: 12, Paused: []Interval{{Start: t0.Add(time.Second)}}, Streams: []rtp.Summary{
		{Src: ap("10.0.0.1:4000"), Dst: ap("10.0.0.2:5000"), Caller: true, Received: 10, Payload: 0, Codec: "PCMU", ClockRate: 8000},
		{Src: ap("10.0.0.1:4002"), Dst: ap("10.0.0.2:5002"), Caller: true, Received: 90, Lost: 10, AvgJitter: 1.5, MaxJitter: 4, MOSAdapt: 4.2, Payload: 8, Codec: "PCMA", ClockRate: 8000},
	}}
	s := c.Summary(1, t0.Add(5*time.Second))
	a, b := s.RTP[SideA], s.RTP[SideB]
	if !a.Present || a.Src != c.Streams[1].Src || a.Received != 90 || a.Lost != 10 || a.MOSAdapt != 4.2 || a.MaxJitter != 4 || a.CodecID != 8 {
		t.Errorf("side A = %+v, want the second stream's figures", a)
	}
	if got := a.LossPercent(); got != 10 {
		t.Errorf("side A loss = %v%%, want 10%%", got)
	}
	if b.Present || b.LossPercent() != 0 {
		t.Errorf("side B = %+v, want no stream", b)
	}
	if !s.Paused || s.VLAN != 12 || s.Connected {
		t.Errorf("Summary = %+v, want paused, VLAN 12, not connected", s)
	}
	c.Paused[0].End = t0.Add(2 * time.Second)
	if c.Summary(1, t0).Paused {
		t.Error("a closed pause interval still reads as paused")
	}
}
