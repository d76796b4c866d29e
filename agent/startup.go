package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"pbx-agent/agent/health"
	"pbx-agent/agent/portowner"
)

// errBind is wrapped by every start-up listener failure.
var errBind = errors.New("cannot listen")

// listeners are the sockets bound before the daemon reports READY: when
// any of them cannot be bound, the daemon exits non-zero before READY and
// nothing was started.
type listeners struct {
	http, metrics net.Listener // nil when off
}

// bind binds every listener the config enables (manager TCP and unix
// socket, HTTP, metrics). On failure the ones already bound are closed and
// the error names the address, the process holding it when it can be
// seen, and the config key to change.
func (d *daemon) bind(ctx context.Context) (*listeners, error) {
	ls := &listeners{}
	fail := func(key, addr string, err error) (*listeners, error) {
		if ls.http != nil {
			ls.http.Close()
		}
		if ls.metrics != nil {
			ls.metrics.Close()
		}
		return nil, bindError(ctx, key, addr, d.cfg.Path, err)
	}
	if d.manager != nil {
		if err := d.manager.Bind(ctx); err != nil {
			key, addr := "managerport", net.JoinHostPort(d.cfg.ManagerIP, strconv.Itoa(d.cfg.ManagerPort))
			var op *net.OpError
			if errors.As(err, &op) && op.Net == "unix" || d.cfg.ManagerPort == 0 {
				key, addr = "managersocket", d.cfg.ManagerSocket
			}
			return fail(key, addr, err)
		}
	}
	var lc net.ListenConfig
	if d.http != nil {
		ln, err := lc.Listen(ctx, "tcp", d.cfg.HTTPBind)
		if err != nil {
			d.closeManager()
			return fail("http_bind", d.cfg.HTTPBind, err)
		}
		ls.http = ln
	}
	if d.cfg.MetricsBind != "" {
		ln, err := lc.Listen(ctx, "tcp", d.cfg.MetricsBind)
		if err != nil {
			d.closeManager()
			return fail("metrics_bind", d.cfg.MetricsBind, err)
		}
		ls.metrics = ln
	}
	return ls, nil
}

func (d *daemon) closeManager() {
	if d.manager != nil {
		_ = d.manager.Close()
	}
}

// bindError is the operator's sentence: what could not be bound, who holds
// it, which key to change.
func bindError(ctx context.Context, key, addr, cfgPath string, err error) error {
	if cfgPath == "" {
		cfgPath = "the config"
	}
	cause := err
	var op *net.OpError
	if errors.As(err, &op) {
		cause = op.Err
	}
	holder := ""
	if errors.Is(err, syscall.EADDRINUSE) {
		holder = "; the port is taken"
		if _, p, perr := net.SplitHostPort(addr); perr == nil {
			if port, perr := strconv.Atoi(p); perr == nil {
				if o, ferr := portowner.Find(ctx, port); ferr == nil {
					holder = "; the port is held by " + o.String()
				}
			}
		}
	}
	return fmt.Errorf("%w on %s (%s): %v%s; change %s in %s (or -set %s=…), or stop what holds it", errBind, addr, key, cause, holder, key, cfgPath, key)
}

// captureState is what /readyz says of the packet source.
type captureState struct{ v atomic.Value }

func (c *captureState) set(s string) { c.v.Store(s) }
func (c *captureState) get() string {
	if s, ok := c.v.Load().(string); ok {
		return s
	}
	return health.CaptureStarting
}

// healthProbe is the daemon's state for /healthz and /readyz.
func (d *daemon) healthProbe() health.Probe {
	p := health.Probe{Version: version, Started: time.Now(), Capture: d.capState.get}
	switch {
	case d.writer != nil:
		// The writer owns the CDR connection; down means queueing to disk.
		p.Database = func(context.Context) string {
			if d.writer.Stats().DBUp {
				return health.DBReachable
			}
			return health.DBQueueing
		}
	case d.db != nil: // a front end: the web APIs' own connection
		p.Database = func(ctx context.Context) string {
			if d.db.PingContext(ctx) != nil {
				return health.DBQueueing
			}
			return health.DBReachable
		}
	}
	p.AMI = func() string {
		switch {
		case d.ami != nil && d.ami.Up():
			return health.AMIConnected
		case d.ami != nil:
			return health.AMIConnecting
		case d.replayed.Load() != nil:
			return health.AMIRecorded
		}
		return health.AMIOff
	}
	return p
}

// statusEvery is the period of the INFO status line.
var statusEvery = time.Minute // a var for tests only

// testPart, when set (tests only), runs beside the servers as every part of
// the daemon does: a test makes it fail after READY.
var testPart func(context.Context) error

// logStatus prints one INFO line per period, like VoIPmonitor's: calls,
// packets/s, drops, SQL queue, heap. The per-request access log is Debug.
func (d *daemon) logStatus(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev, prevAt := d.sn.Stats().Frames, time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := d.sn.Stats()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			pps := float64(st.Frames-prev) / now.Sub(prevAt).Seconds()
			prev, prevAt = st.Frames, now
			attrs := []any{"calls", len(d.sn.ActiveCalls()), "calls_total", d.sn.Table().Stats().CallsStarted,
				"packets_per_s", int(pps), "drops", st.KernelDrops, "heap_mb", ms.HeapAlloc >> 20}
			if d.writer != nil {
				ws := d.writer.Stats()
				attrs = append(attrs, "sql_queue", ws.MemoryQueue+ws.DiskQueue, "db_up", ws.DBUp)
			}
			d.log.Info("status", attrs...)
		}
	}
}
