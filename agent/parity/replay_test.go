package parity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"pbx-agent/agent/cdr"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
)

// ReplayOptions say how a capture is replayed into MySQL.
type ReplayOptions struct {
	DSN      string // database to write to (its schema is created)
	QueueDir string // the writer's on-disk queue directory
	SIPPorts string // "5060,5070"
	// IPv6 is VoIPmonitor's ipv6 = yes: the database gets varbinary(16)
	// IP columns and IPv6 packets are read; without it they are ignored.
	IPv6 bool
	// Location is the zone the rows are written in (the agent's utc /
	// timezone); nil = UTC, the zone VoIPmonitor's reference rows were
	// written in (voipmonitor-ref/README.md), so that calldate, callend
	// and created_at compare as the same wall clock (parseTime).
	Location *time.Location
	Logger   *slog.Logger
}

// Replay reads a capture file the way `pbx-agent -r FILE
// --exit-after-replay` does (with the ipv6 setting of o) — calls are not timed out while reading, every
// call still open at the end is closed by the flush — and writes the CDRs
// and REGISTERs with cdr.Writer. It returns once every record is in MySQL.
func Replay(ctx context.Context, capture string, o ReplayOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ports, err := sniffer.ParsePorts(o.SIPPorts)
	if err != nil {
		return fmt.Errorf("parity: sipport %q: %w", o.SIPPorts, err)
	}
	w, err := cdr.New(cdr.Options{
		DSN: o.DSN, IDSensor: 1, QueueDir: o.QueueDir,
		FlushInterval: 50 * time.Millisecond, RetryInterval: 200 * time.Millisecond,
		PartitionCheck: time.Hour, DrainTimeout: 30 * time.Second, IPv6: o.IPv6, Location: o.Location,
	}, log)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()

	var enqErr error
	sn := sniffer.New(sniffer.Config{
		SIPPorts:            ports,
		IgnoreRTPAfterByeOK: true,    // ignore_rtp_after_bye_confirmed's default
		IPv4Only:            !o.IPv6, // as the daemon with ipv6 = no
		Call: call.Config{
			IdleTimeout: -1, // as the daemon with -r: EOF ends every call
			OnCallEnd: func(c *call.CDR) {
				if err := w.Enqueue(c); err != nil && enqErr == nil {
					enqErr = err
				}
			},
			OnRegister: func(g *call.Register) {
				if err := w.EnqueueRegister(g); err != nil && enqErr == nil {
					enqErr = err
				}
			},
		},
		Logger: log,
	})
	rerr := sn.ReplayFile(ctx, capture, sniffer.RunOptions{})
	sn.Flush()
	ferr := w.Flush(ctx)
	stop()
	werr := <-done
	cerr := w.Close()
	if st := w.Stats(); st.Rejected > 0 || st.Lost > 0 {
		ferr = errors.Join(ferr, fmt.Errorf("parity: writer rejected %d and lost %d records", st.Rejected, st.Lost))
	}
	if err := errors.Join(rerr, enqErr, ferr, werr, cerr); err != nil {
		return fmt.Errorf("parity: replay %s: %w", capture, err)
	}
	return nil
}
