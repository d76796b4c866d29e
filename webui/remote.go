package webui

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Remote reaches the calls of the other sensors sharing this database
// (agent/sensors): listActiveCalls merges their active calls and
// handleActiveCall sends pausecall to the sensor that owns the call. Their
// spool files come through Spool (SpoolFile.SensorID).
type Remote interface {
	// ActiveCalls returns the active calls of every other reachable sensor
	// (sensor < 0) or of that one sensor, and the status of each sensor
	// asked. An error means none could be asked (an unknown sensor wraps
	// ErrNotFound).
	ActiveCalls(ctx context.Context, sensor int) ([]RemoteCall, []RemoteSensor, error)
	// Pause pauses (on) or resumes recording of call ref on sensor. Errors
	// wrap ErrNotFound (unknown sensor or call) or ErrUnavailable (sensor
	// offline or not answering).
	Pause(ctx context.Context, sensor int, ref uint64, on bool) error
}

// RemoteCall is one active call of another sensor.
type RemoteCall struct {
	Sensor             int
	Ref                uint64
	CallID             string
	CallDate           time.Time
	ConnectDuration    time.Duration
	Connected          bool
	Caller, Called     string
	CallerName         string
	CallerDomain       string
	CalledDomain       string
	CallerUA, CalledUA string
	CallerIP, CalledIP netip.Addr
	LastSIPResponseNum int
}

// RemoteSensor is how one sensor answered: Status is ok, offline, stopped,
// timeout, busy, key, unreachable or error.
type RemoteSensor struct {
	ID     int
	Name   string
	Status string
	Calls  int
	Error  string // "" when ok
	Took   time.Duration
}

// remoteActive adds the other sensors' calls to out and returns the
// "sensors" member of listActiveCalls.
func (h *Handler) remoteActive(ctx context.Context, u *User, sensor int64, out []obj) ([]obj, []obj, error) {
	calls, sensors, err := h.o.Remote.ActiveCalls(ctx, int(sensor))
	if err != nil {
		if sensor >= 0 {
			return out, nil, err
		}
		h.log.Warn("listActiveCalls: other sensors not asked", "err", err)
		return out, []obj{}, nil
	}
	now := h.now()
	for _, c := range calls {
		if !u.SeesSensor(c.Sensor) {
			continue
		}
		var connect any
		if c.Connected {
			connect = strconv.FormatInt(int64(c.ConnectDuration/time.Second), 10)
		}
		var dur int64
		if !c.CallDate.IsZero() {
			dur = int64(max(0, now.Sub(c.CallDate)) / time.Second)
		}
		out = append(out, obj{
			{"callreference", fmt.Sprintf("0x%x", c.Ref)},
			{"callid", c.CallID},
			{"calldate", c.CallDate.In(h.o.Location).Format("2006-01-02 15:04:05")},
			{"duration", strconv.FormatInt(dur, 10)},
			{"connect_duration", connect},
			{"caller", c.Caller}, {"called", c.Called}, {"callername", c.CallerName},
			{"callerdomain", c.CallerDomain}, {"calleddomain", c.CalledDomain},
			{"calleragent", c.CallerUA}, {"calledagent", c.CalledUA},
			{"callerip", addrString(c.CallerIP.String())}, {"calledip", addrString(c.CalledIP.String())},
			{"lastSIPresponseNum", strconv.Itoa(c.LastSIPResponseNum)},
			{"id_sensor", sensorString(c.Sensor)},
		})
	}
	st := []obj{}
	for _, s := range sensors {
		if !u.SeesSensor(s.ID) {
			continue
		}
		o := obj{{"id_sensor", strconv.Itoa(s.ID)}, {"name", s.Name}, {"status", s.Status},
			{"calls", strconv.Itoa(s.Calls)}, {"took_ms", strconv.FormatInt(s.Took.Milliseconds(), 10)}}
		if s.Error != "" {
			o = append(o, kv{"error", s.Error})
		}
		st = append(st, o)
	}
	return out, st, nil
}
