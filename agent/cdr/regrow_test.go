package cdr

import (
	"testing"

	"pbx-agent/sniffer/call"
)

// TestRegisterRowStates: each REGISTER state goes to VoIPmonitor's table
// for it (register.cpp saveStateToDb: register_failed for rs_Failed,
// register_state for every other state, its number in `state`), and an
// attempt closed with no answer is a register_failed row with no reason.
func TestRegisterRowStates(t *testing.T) {
	tests := []struct {
		name      string
		state     call.RegisterState
		lastResp  string
		wantTable string
		wantState any // register_state.state; nil for register_failed
		wantReas  any // register_failed.reason
	}{
		{name: "OK", state: call.RegOK, wantTable: "register_state", wantState: int64(1)},
		{name: "ManyRegMessages", state: call.RegManyMsgs, wantTable: "register_state", wantState: int64(4)},
		{name: "Expired", state: call.RegExpired, wantTable: "register_state", wantState: int64(5)},
		{name: "Failed answered 403", state: call.RegFailed, lastResp: "403 Forbidden", wantTable: "register_failed", wantReas: "403 Forbidden"},
		{name: "Failed unanswered", state: call.RegFailed, wantTable: "register_failed", wantReas: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := sampleRegister(1, tt.state)
			g.LastResponse = tt.lastResp
			table, r := registerRow(g, 0, rowOptions{idSensor: 1})
			if table != tt.wantTable {
				t.Fatalf("table %q, want %q", table, tt.wantTable)
			}
			got := map[string]any{}
			for _, c := range r {
				got[c.name] = c.v
			}
			if table == "register_state" {
				if got["state"] != tt.wantState {
					t.Errorf("state %v (%T), want %v", got["state"], got["state"], tt.wantState)
				}
				return
			}
			if got["reason"] != tt.wantReas {
				t.Errorf("reason %v, want %v", got["reason"], tt.wantReas)
			}
			if got["counter"] != int64(2) {
				t.Errorf("counter %v, want 2", got["counter"])
			}
		})
	}
}
