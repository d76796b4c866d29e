package rtp

import "time"

// RTCPStats is what the peer reported about a stream in RTCP: receiver
// reports whose block SSRC is the stream's, and XR VoIP metrics.
// VoIPmonitor stores these as a_rtcp_* (spec §4).
type RTCPStats struct {
	Reports         int
	Lost            int     // cumulative lost from the latest report
	MaxFraction     int     // largest fraction lost, 0..255
	AvgFraction     float64 // mean fraction lost, 0..255
	MaxJitter       float64 // ms, converted with the codec clock rate
	AvgJitter       float64
	RTTCount        int // reports that carried LSR/DLSR
	MaxRTT, AvgRTT  float64
	XRReports       int
	XRMOSLQ, XRMOSM float64 // latest and minimum MOS-LQ from XR (0 = none)

	sumFraction, sumJitter, sumRTT float64
}

// ntpMiddle returns the middle 32 bits of the NTP time of t (RFC 3550 §4).
func ntpMiddle(t time.Time) uint32 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	sec := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return uint32(sec<<16 | frac>>16)
}

// Update accounts one report block about this stream, received at arrival.
// clockRate converts the jitter to ms (8000 when 0).
func (r *RTCPStats) Update(rr *ReceptionReport, arrival time.Time, clockRate int) {
	if clockRate <= 0 {
		clockRate = 8000
	}
	r.Reports++
	r.Lost = int(rr.TotalLost)
	r.MaxFraction = max(r.MaxFraction, int(rr.FractionLost))
	r.sumFraction += float64(rr.FractionLost)
	r.AvgFraction = r.sumFraction / float64(r.Reports)
	j := float64(rr.Jitter) * 1000 / float64(clockRate)
	r.MaxJitter = max(r.MaxJitter, j)
	r.sumJitter += j
	r.AvgJitter = r.sumJitter / float64(r.Reports)
	if rr.LSR != 0 {
		// RTT = A - LSR - DLSR in 1/65536 s, with A the arrival (RFC 3550 §6.4.1)
		rtt := int32(ntpMiddle(arrival) - rr.LSR - rr.DLSR)
		if rtt >= 0 {
			ms := float64(rtt) * 1000 / 65536
			r.RTTCount++
			r.MaxRTT = max(r.MaxRTT, ms)
			r.sumRTT += ms
			r.AvgRTT = r.sumRTT / float64(r.RTTCount)
		}
	}
}

// UpdateXR accounts an XR VoIP metrics block about this stream.
func (r *RTCPStats) UpdateXR(m *VoIPMetrics) {
	r.XRReports++
	if m.MOSLQ == 0 || m.MOSLQ == 127 {
		return
	}
	v := float64(m.MOSLQ) / 10
	r.XRMOSLQ = v
	if r.XRMOSM == 0 || v < r.XRMOSM {
		r.XRMOSM = v
	}
}

// UpdateRTCP accounts a reception report block whose SSRC is this stream's.
func (s *Stream) UpdateRTCP(rr *ReceptionReport, arrival time.Time) {
	s.rtcp.Update(rr, arrival, s.codec.ClockRate)
}

// UpdateXR accounts an XR VoIP metrics block about this stream.
func (s *Stream) UpdateXR(m *VoIPMetrics) { s.rtcp.UpdateXR(m) }
