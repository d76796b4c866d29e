// Package calltest holds an in-memory call table for the tests of the parts
// that serve a sniffer's calls (the manager API, the sensors front end, the
// web UI). Test support only; nothing in the agent imports it.
package calltest

import (
	"context"
	"sync"

	"pbx-agent/sniffer/call"
)

// Table has fixed active calls and registrations (set Calls and Regs
// before use) and records the pauses asked for.
type Table struct {
	Calls []call.CDR
	Regs  []call.Register
	// PauseErr is what Pause returns for a known call (nil: it pauses).
	PauseErr error

	mu     sync.Mutex
	paused map[uint64]bool
	by     []call.Requester
}

// Active returns a copy of Calls.
func (t *Table) Active() []call.CDR {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]call.CDR(nil), t.Calls...)
}

// Lookup finds the call ref in Calls.
func (t *Table) Lookup(ref uint64) (call.CDR, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.Calls {
		if c.CallRef == ref {
			return c, true
		}
	}
	return call.CDR{}, false
}

// Registers returns a copy of Regs.
func (t *Table) Registers() []call.Register {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]call.Register(nil), t.Regs...)
}

// Pause records that the requester in ctx asked to pause (on) or resume the
// call ref; call.ErrNoCall when ref is not in Calls.
func (t *Table) Pause(ctx context.Context, ref uint64, on bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.by = append(t.by, call.RequesterFrom(ctx))
	for _, c := range t.Calls {
		if c.CallRef == ref {
			if t.PauseErr != nil {
				return t.PauseErr
			}
			if t.paused == nil {
				t.paused = map[uint64]bool{}
			}
			t.paused[ref] = on
			return nil
		}
	}
	return call.ErrNoCall
}

// Paused reports whether the last Pause of the call ref paused it.
func (t *Table) Paused(ref uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.paused[ref]
}

// Requesters returns who asked, one per Pause, in order.
func (t *Table) Requesters() []call.Requester {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]call.Requester(nil), t.by...)
}

// ForgetPauses drops the pauses recorded so far.
func (t *Table) ForgetPauses() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.paused, t.by = nil, nil
}
