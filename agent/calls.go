package main

import (
	"context"
	"time"

	"pbx-agent/agent/recording"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
)

// managerCalls adapts the sniffer to the manager and web APIs' view of calls;
// pausing goes through the recording orchestrator, so Asterisk's own
// recordings of the conversation pause with the sniffer's. An unknown call
// is an error wrapping call.ErrNoCall, from whichever layer found it.
type managerCalls struct {
	sn  *sniffer.Sniffer
	rec *recording.Orchestrator
	// audit records a pause in the audit table (the manager API's; api.php
	// audits its own requests).
	audit func(ctx context.Context, rq call.Requester, ref uint64, on bool, err error)
}

func (m managerCalls) Active() []call.CDR                 { return m.sn.ActiveCalls() }
func (m managerCalls) Lookup(ref uint64) (call.CDR, bool) { return m.sn.Lookup(ref) }
func (m managerCalls) Registers() []call.Register         { return m.sn.Table().Registers() }

// Pause pauses through the orchestrator, bounded to 10 s of Asterisk work.
// Who asked (user, address, interface) travels in ctx (call.WithRequester,
// set by api.php and the manager API) to the orchestrator's log lines and
// the audit table.
func (m managerCalls) Pause(ctx context.Context, ref uint64, on bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := m.rec.Pause(ctx, ref, on)
	if m.audit != nil {
		m.audit(ctx, call.RequesterFrom(ctx), ref, on, err)
	}
	return err
}

// auditPause writes a manager API pause into the web API's audit table
// (when there is a database).
func (d *daemon) auditPause(ctx context.Context, rq call.Requester, ref uint64, on bool, err error) {
	if d.web != nil && d.db != nil {
		d.web.AuditPause(context.WithoutCancel(ctx), rq, ref, on, err)
	}
}
