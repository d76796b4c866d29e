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
}

func (m managerCalls) Active() []call.CDR                 { return m.sn.ActiveCalls() }
func (m managerCalls) Lookup(ref uint64) (call.CDR, bool) { return m.sn.Lookup(ref) }
func (m managerCalls) Registers() []call.Register         { return m.sn.Table().Registers() }

// Pause pauses through the orchestrator, bounded to 10 s of Asterisk work.
func (m managerCalls) Pause(ctx context.Context, ref uint64, on bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := m.rec.Pause(recording.WithRequester(ctx, recording.Requester{Via: "api"}), ref, on)
	return err
}
