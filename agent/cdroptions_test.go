package main

import (
	"testing"
	"time"

	"pbx-agent/agent/config"
	"pbx-agent/sniffer/call"
)

// TestRegisterRulesFromConfig: the sip-register-* keys reach the call
// table; sip-register-state-timeout = 0 (never write a state again) is the
// table's negative value, not its zero (the default).
func TestRegisterRulesFromConfig(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want call.RegisterRules
	}{
		{name: "defaults", in: "",
			want: call.RegisterRules{Timeout: 5 * time.Second, MaxRegisters: 4, MaxMessages: 20, StateTimeout: 10 * time.Minute}},
		{name: "set", in: "sip-register-timeout = 9\nsip-register-max-registers = 7\nsip-register-max-messages = 40\n" +
			"sip-register-state-timeout = 0\nsip-register-timeout-disable_save_failed = yes\n",
			want: call.RegisterRules{Timeout: 9 * time.Second, MaxRegisters: 7, MaxMessages: 40, StateTimeout: -1, NoTimeoutFailed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.conf", []byte(tt.in), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := registerRules(cfg); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
