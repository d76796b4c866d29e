package webui

import (
	"context"
	"strconv"
	"time"

	"pbx-agent/sniffer/call"
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
	ActiveCalls(ctx context.Context, sensor int) ([]call.Summary, []RemoteSensor, error)
	// Pause pauses (on) or resumes recording of call ref on sensor. Errors
	// wrap ErrNotFound (unknown sensor or call) or ErrUnavailable (sensor
	// offline or not answering).
	Pause(ctx context.Context, sensor int, ref uint64, on bool) error
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
		out = append(out, h.activeCallObj(&c, now))
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
