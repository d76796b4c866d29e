package sniffer

import (
	"testing"

	"pbx-agent/internal/testkit"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		has     []uint16
		hasNot  []uint16
		want    string
		wantErr error
	}{
		{name: "single", in: "5060", has: []uint16{5060}, hasNot: []uint16{5061}, want: "5060"},
		{name: "list and range", in: "5060, 5070-5072;8080", has: []uint16{5060, 5070, 5071, 5072, 8080}, hasNot: []uint16{5069, 5073}, want: "5060,5070-5072,8080"},
		{name: "edges", in: "1,65535", has: []uint16{1, 65535}, want: "1,65535"},
		{name: "zero", in: "0", wantErr: ErrPorts},
		{name: "too big", in: "70000", wantErr: ErrPorts},
		{name: "reversed range", in: "5070-5060", wantErr: ErrPorts},
		{name: "junk", in: "sip", wantErr: ErrPorts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := ParsePorts(tt.in)
			if testkit.WantErr(t, err, tt.wantErr) {
				return
			}
			for _, p := range tt.has {
				if !ps.Has(p) {
					t.Errorf("missing %d", p)
				}
			}
			for _, p := range tt.hasNot {
				if ps.Has(p) {
					t.Errorf("unexpected %d", p)
				}
			}
			if got := ps.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
