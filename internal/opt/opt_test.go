package opt

import (
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	tests := []struct {
		name      string
		in, deflt time.Duration
		want      time.Duration
	}{
		{"zero", 0, time.Second, time.Second},
		{"negative", -1, time.Second, time.Second},
		{"set", 2 * time.Second, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		v := tt.in
		Default(&v, tt.deflt)
		if v != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, v, tt.want)
		}
	}
	for in, want := range map[string]string{"": "on", "off": "off"} {
		s := in
		Default(&s, "on")
		if s != want {
			t.Errorf("%q: %q, want %q", in, s, want)
		}
	}
}
