package call

import (
	"net/netip"
	"time"
)

// Summary is one active call as the APIs list it: the web API's
// listActiveCalls (this sensor's calls and, in a multi-sensor site, the
// other sensors' read from their listcalls replies). It is built from a
// CDR snapshot with CDR.Summary, or parsed (agent/sensors.ParseListCalls).
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
		LastSIPResponseNum: c.LastSIPResponseNum,
	}
	if !c.ConnectTime.IsZero() {
		s.Connected = true
		s.ConnectDuration = now.Sub(c.ConnectTime).Truncate(time.Second)
	}
	return s
}
