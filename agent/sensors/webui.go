package sensors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/webui"
)

// WebRemote lets the web APIs reach the other sensors (webui.Remote).
type WebRemote struct{ Client *Client }

var _ webui.Remote = WebRemote{}

// ActiveCalls implements webui.Remote.
func (w WebRemote) ActiveCalls(ctx context.Context, sensor int) ([]call.Summary, []webui.RemoteSensor, error) {
	res, err := w.Client.ActiveCalls(ctx, sensor)
	if err != nil {
		return nil, nil, webError(sensor, err)
	}
	n := 0
	for _, r := range res {
		n += len(r.Calls)
	}
	calls := make([]call.Summary, 0, n)
	sensors := make([]webui.RemoteSensor, 0, len(res))
	for _, r := range res {
		st := webui.RemoteSensor{ID: r.Sensor.ID, Name: r.Sensor.Name, Status: r.Status(), Calls: len(r.Calls), Took: r.Took}
		if r.Err != nil {
			st.Error = shortError(r)
			w.Client.log.Debug("sensor left out of listActiveCalls", "id_sensor", r.Sensor.ID, "err", r.Err)
		}
		sensors = append(sensors, st)
		calls = append(calls, r.Calls...)
	}
	return calls, sensors, nil
}

// shortError is what a web client is told about a sensor (details go to the log).
func shortError(r Result) string {
	switch r.Status() {
	case "offline", "stopped":
		return fmt.Sprintf("sensor is %s (last heartbeat %s ago)", r.Status(), r.Sensor.Age)
	case "timeout":
		return "sensor did not answer in time"
	case "busy":
		return "too many requests to the sensor in flight"
	case "key":
		return "manager AES key mismatch"
	case "unreachable":
		return "sensor has no manager address in the sensors table"
	}
	return "sensor request failed"
}

// Pause implements webui.Remote.
func (w WebRemote) Pause(ctx context.Context, sensor int, ref uint64, on bool) error {
	if err := w.Client.Pause(ctx, sensor, ref, on); err != nil {
		w.Client.log.Info("remote pausecall failed", "id_sensor", sensor, "callref", fmt.Sprintf("0x%x", ref), "err", err)
		return webError(sensor, err)
	}
	return nil
}

// webError maps a sensors error to the webui sentinel its status needs.
func webError(sensor int, err error) error {
	switch {
	case errors.Is(err, ErrUnknownSensor):
		return fmt.Errorf("%w: no sensor %d in the sensors table", webui.ErrNotFound, sensor)
	case errors.Is(err, call.ErrNoCall):
		return fmt.Errorf("%w: the call is not active on sensor %d", webui.ErrNotFound, sensor)
	case errors.Is(err, fs.ErrNotExist):
		return err
	case errors.Is(err, ErrOffline):
		return fmt.Errorf("%w: sensor %d is offline", webui.ErrUnavailable, sensor)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: sensor %d did not answer in time", webui.ErrUnavailable, sensor)
	case errors.Is(err, ErrBusy):
		return fmt.Errorf("%w: too many requests to sensor %d in flight", webui.ErrUnavailable, sensor)
	case errors.Is(err, ErrKeyRejected), errors.Is(err, ErrNeedAES):
		return fmt.Errorf("%w: manager AES key mismatch with sensor %d", webui.ErrUnavailable, sensor)
	case errors.Is(err, context.Canceled):
		return err
	}
	return fmt.Errorf("%w: sensor %d: request failed", webui.ErrUnavailable, sensor)
}

// Spool opens spool files wherever they live: this agent's (and those of
// CDRs without a known sensor) through Local, another sensor's through its
// manager API's getfile. Remote sensors' spools are laid out in Location
// (nil = UTC, as pbx-agent writes them).
type Spool struct {
	Local    webui.Spool // nil = no local spool
	Client   *Client
	Location *time.Location
}

var _ webui.Spool = Spool{}

// Open implements webui.Spool.
func (s Spool) Open(ctx context.Context, f webui.SpoolFile) (io.ReadCloser, error) {
	self := -1
	if s.Client != nil {
		self = s.Client.SelfID()
	}
	if s.Client == nil || f.SensorID < 0 || f.SensorID == self {
		return s.local(ctx, f)
	}
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	rel, err := webui.DirSpool{Location: loc}.Path(f)
	if err != nil {
		return nil, err
	}
	b, err := s.Client.GetFile(ctx, f.SensorID, rel)
	if errors.Is(err, ErrUnknownSensor) {
		return s.local(ctx, f) // a CDR of a sensor no longer listed: maybe a shared spool
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s file of the call is not on sensor %d", fs.ErrNotExist, f.Kind, f.SensorID)
		}
		s.Client.log.Info("remote getfile failed", "id_sensor", f.SensorID, "path", rel, "err", err)
		return nil, webError(f.SensorID, err)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s Spool) local(ctx context.Context, f webui.SpoolFile) (io.ReadCloser, error) {
	if s.Local == nil {
		return nil, fmt.Errorf("%w: no local spool", fs.ErrNotExist)
	}
	return s.Local.Open(ctx, f)
}
