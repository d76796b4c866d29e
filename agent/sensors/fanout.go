package sensors

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"pbx-agent/sniffer/call"
)

// Result is one sensor's part of a fan-out.
type Result struct {
	Sensor Sensor
	Calls  []call.Summary
	// Err is why the sensor has no calls here: ErrOffline (not contacted),
	// context.DeadlineExceeded (did not answer within Timeout), ErrBusy,
	// ErrKeyRejected, a dial error, …; nil when it answered.
	Err  error
	Took time.Duration
}

// Status is a short word for Err: ok, offline, stopped, timeout, busy,
// key, unreachable or error.
func (r Result) Status() string {
	switch {
	case r.Err == nil:
		return "ok"
	case errors.Is(r.Err, ErrOffline):
		if r.Sensor.State == Stopped {
			return "stopped"
		}
		return "offline"
	case errors.Is(r.Err, context.DeadlineExceeded), errors.Is(r.Err, errCooling):
		return "timeout"
	case errors.Is(r.Err, ErrBusy):
		return "busy"
	case errors.Is(r.Err, ErrKeyRejected), errors.Is(r.Err, ErrNeedAES):
		return "key"
	case errors.Is(r.Err, ErrNoAddress):
		return "unreachable"
	}
	return "error"
}

var errCooling = errors.New("sensors: sensor timed out recently; not asked again yet")

// ActiveCalls asks every reachable sensor except this agent (only < 0), or
// sensor only, for its active calls, all at once, each bounded by Timeout
// (and by ctx). Offline and stopped sensors are reported without being
// contacted; a sensor that timed out is reported at once for Cooldown.
// Every goroutine has returned when ActiveCalls does. Results are in
// id_sensor order.
func (c *Client) ActiveCalls(ctx context.Context, only int) ([]Result, error) {
	all, err := c.o.Dir.List(ctx)
	if err != nil {
		return nil, err
	}
	self := c.o.Dir.SelfID()
	var targets []Sensor
	for _, s := range all {
		if (only >= 0 && s.ID != only) || (only < 0 && self >= 0 && s.ID == self) {
			continue
		}
		targets = append(targets, s)
	}
	if only >= 0 && len(targets) == 0 {
		return nil, fmt.Errorf("%w: %d", ErrUnknownSensor, only)
	}
	// Each goroutine owns one element: no lock needed.
	out := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, s := range targets {
		switch {
		case !s.State.Reachable():
			c.skipped.Add(1)
			out[i] = Result{Sensor: s, Err: fmt.Errorf("%w: %v, heartbeat %s ago", ErrOffline, s.State, s.Age)}
		case c.cooling(s.ID):
			c.skipped.Add(1)
			out[i] = Result{Sensor: s, Err: errCooling}
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = c.listCalls(ctx, s)
			}()
		}
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Sensor.ID < out[j].Sensor.ID })
	return out, nil
}

func (c *Client) listCalls(ctx context.Context, s Sensor) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	b, err := c.do(ctx, s, "listcalls", c.o.MaxReply)
	r := Result{Sensor: s, Took: time.Since(start)}
	if err != nil {
		r.Err = err
		if errors.Is(err, context.DeadlineExceeded) && c.o.Cooldown > 0 {
			c.mu.Lock()
			c.coolTil[s.ID] = time.Now().Add(c.o.Cooldown)
			c.mu.Unlock()
			c.log.Warn("sensor did not answer listcalls in time", "id_sensor", s.ID, "addr", s.Addr(), "timeout", c.o.Timeout)
		}
		return r
	}
	r.Calls, r.Err = ParseListCalls(b, s.ID)
	return r
}

func (c *Client) cooling(id int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.coolTil[id]
	if ok && time.Now().After(t) {
		delete(c.coolTil, id)
		return false
	}
	return ok
}
