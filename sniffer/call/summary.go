package call

import (
	"net/netip"
	"time"

	"pbx-agent/sniffer/rtp"
)

// Summary is one active call as the APIs list it: the manager's listcalls
// rows, the web API's listActiveCalls (this sensor's calls and, in a
// multi-sensor site, the other sensors' read from their listcalls replies)
// and the dashboard. It is built from a CDR snapshot with CDR.Summary, or
// parsed (agent/sensors.ParseListCalls, which fills no RTP figures).
type Summary struct {
	Sensor             int // id_sensor; -1 = unset
	Ref                uint64
	CallID             string
	CallDate           time.Time
	LastPacket         time.Time
	Duration           time.Duration // whole seconds
	ConnectDuration    time.Duration // whole seconds; valid when Connected
	Connected          bool
	Caller, Called     string
	CallerName         string
	CallerDomain       string
	CalledDomain       string
	CallerUA, CalledUA string
	CallerIP, CalledIP netip.Addr
	LastSIPResponseNum int
	ConnectTime        time.Time // zero = not answered
	VLAN               int       // 0 = none
	Paused             bool      // recording (and so listening) paused now
	// RTP is the main stream of each direction: [SideA] sent by the
	// caller, [SideB] by the callee (CDR.StreamAB).
	RTP [2]StreamFigures
}

// The directions of Summary.RTP.
const (
	SideA = 0 // caller → callee
	SideB = 1 // callee → caller
)

// StreamFigures is one direction's RTP figures in a Summary.
type StreamFigures struct {
	Present  bool // the direction has a stream; the rest is zero otherwise
	Src, Dst netip.AddrPort
	CodecID  int // VoIPmonitor's codec id (rtp.Summary.CodecID)
	// MOS of each simulator (fixed 50 ms, fixed 200 ms, adaptive): the
	// average over the intervals so far, the lowest interval's and the
	// last one's (rtp.Summary).
	MOSF1, MOSF2, MOSAdapt             float64
	MOSF1Min, MOSF2Min, MOSAdaptMin    float64
	MOSF1Last, MOSF2Last, MOSAdaptLast float64
	AvgJitter, MaxJitter               float64 // ms
	Received, Lost                     int
}

func streamFigures(st *rtp.Summary) StreamFigures {
	return StreamFigures{
		Present: true, Src: st.Src, Dst: st.Dst, CodecID: st.CodecID(),
		MOSF1: st.MOSF1, MOSF2: st.MOSF2, MOSAdapt: st.MOSAdapt,
		MOSF1Min: st.MOSF1Min, MOSF2Min: st.MOSF2Min, MOSAdaptMin: st.MOSAdaptMin,
		MOSF1Last: st.MOSF1Last, MOSF2Last: st.MOSF2Last, MOSAdaptLast: st.MOSAdaptLast,
		AvgJitter: st.AvgJitter, MaxJitter: st.MaxJitter, Received: st.Received, Lost: st.Lost,
	}
}

// LossPercent is the share of the expected packets lost, 0 with none counted.
func (f *StreamFigures) LossPercent() float64 {
	if f.Received+f.Lost <= 0 {
		return 0
	}
	return float64(f.Lost) * 100 / float64(f.Received+f.Lost)
}

// Summary is the call's summary at now (the capture's clock in a replay):
// an active call lasts until now.
func (c *CDR) Summary(sensor int, now time.Time) Summary {
	s := Summary{
		Sensor: sensor, Ref: c.CallRef, CallID: c.CallID, CallDate: c.CallDate, LastPacket: c.CallEnd,
		Duration: max(0, now.Sub(c.CallDate)).Truncate(time.Second),
		Caller:   c.Caller, Called: c.Called, CallerName: c.CallerName,
		CallerDomain: c.CallerDomain, CalledDomain: c.CalledDomain,
		CallerUA: c.CallerUA, CalledUA: c.CalledUA, CallerIP: c.CallerIP, CalledIP: c.CalledIP,
		LastSIPResponseNum: c.LastSIPResponseNum, ConnectTime: c.ConnectTime, VLAN: c.VLAN,
		Paused: c.PausedNow(),
	}
	a, b := c.StreamAB()
	for side, i := range [2]int{a, b} {
		if i >= 0 {
			s.RTP[side] = streamFigures(&c.Streams[i])
		}
	}
	if !c.ConnectTime.IsZero() {
		s.Connected = true
		s.ConnectDuration = now.Sub(c.ConnectTime).Truncate(time.Second)
	}
	return s
}

// PausedNow: recording (and so listening) is paused now (an open pause interval).
func (c *CDR) PausedNow() bool {
	n := len(c.Paused)
	return n > 0 && c.Paused[n-1].End.IsZero()
}
