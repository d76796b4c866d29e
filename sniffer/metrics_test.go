package sniffer

import (
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"pbx-agent/sniffer/fixture"
)

// TestRegister: the packet path's figures, the decoder's included (IP
// fragments of a capture with a 400-byte MTU), reach the registry.
func TestRegister(t *testing.T) {
	_, _, sn := replay(t, captureCase{filepath.Join(fixture.Repo(t, "testdata", "pcap"), "gensip-vlan42-frag400.pcap"), "5060"})
	reg := prometheus.NewRegistry()
	if err := sn.Register(reg); err != nil {
		t.Fatal(err)
	}
	st := sn.Stats()
	if st.Decoder.Fragments == 0 || st.Decoder.Reassembled == 0 {
		t.Fatalf("decoder stats %+v: want fragments reassembled", st.Decoder)
	}
	for _, tc := range []struct {
		name string
		want uint64
	}{
		{"pbx_sniffer_frames_total", st.Frames},
		{"pbx_decoder_fragments_total", st.Decoder.Fragments},
		{"pbx_decoder_reassembled_total", st.Decoder.Reassembled},
		{"pbx_calls_started_total", sn.Table().Stats().CallsStarted},
	} {
		if got := counterValue(t, reg, tc.name); got != float64(tc.want) || got == 0 {
			t.Errorf("%s = %v, want %d (> 0)", tc.name, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(reg); n < 15 {
		t.Errorf("%d series registered", n)
	}
}

// counterValue gathers reg and returns the counter name's value (-1 when
// absent).
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
