package sniffer

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/simulate"
)

// TestDeduplicate feeds every generated frame twice — once as sent, once as
// a mirror session delivers it (ERSPAN II, another TTL) 200 µs later — and
// checks that with Deduplicate the calls and RTP figures are the truth's,
// and that without it every RTP packet counts twice.
func TestDeduplicate(t *testing.T) {
	opts := simulate.Options{Calls: 20, Duration: 2 * time.Second, CPS: 50, Seed: 5, Busy: 10, Loss: 1}
	mirror := opts
	mirror.Encap = simulate.EncapERSPAN2
	for _, dedup := range []bool{true, false} {
		gen, err := simulate.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		mgen, err := simulate.New(mirror)
		if err != nil {
			t.Fatal(err)
		}
		calls := map[string]call.CDR{}
		sn := New(Config{Deduplicate: dedup, Call: call.Config{IdleTimeout: -1, OnCallEnd: func(c *call.CDR) { calls[c.CallID] = *c }}})
		feedGenerator(t, sn, gen, func() {
			mdata, mci, err := mgen.ZeroCopyReadPacketData()
			if err != nil {
				t.Fatal(err)
			}
			if err := sn.HandleFrame(mgen.LinkType(), mdata, mci.Timestamp.Add(200*time.Microsecond)); err != nil {
				t.Fatal(err)
			}
		})
		sn.Flush()
		truth := gen.Truth()
		if len(calls) != len(truth.Calls) {
			t.Fatalf("dedup %v: %d calls, truth %d", dedup, len(calls), len(truth.Calls))
		}
		exact := 0
		for _, w := range truth.Streams {
			for _, s := range calls[w.CallID].Streams {
				if s.SSRC == w.SSRC && s.Received == w.Received() && s.Lost == w.Dropped {
					exact++
				}
			}
		}
		st := sn.Stats()
		if dedup {
			reg := prometheus.NewRegistry()
			if err := sn.Register(reg); err != nil {
				t.Fatal(err)
			}
			if got := counterValue(t, reg, "pbx_sniffer_duplicates_total"); got != float64(st.Duplicates) {
				t.Errorf("pbx_sniffer_duplicates_total = %v, want %d", got, st.Duplicates)
			}
		}
		if dedup && (exact != len(truth.Streams) || st.Duplicates == 0 || st.Duplicates*2 < st.Frames-2) {
			t.Errorf("deduplicated: %d/%d streams exact, %d of %d frames dropped as copies", exact, len(truth.Streams), st.Duplicates, st.Frames)
		}
		if !dedup && (exact != 0 || st.Duplicates != 0) {
			t.Errorf("not deduplicated: %d streams exact (want 0: every packet twice), %d copies dropped", exact, st.Duplicates)
		}
		t.Logf("deduplicate=%v: %d calls, %d/%d streams exact, %d of %d frames dropped as copies", dedup, len(calls), exact, len(truth.Streams), st.Duplicates, st.Frames)
	}
}

func TestDeduplicateNoAllocs(t *testing.T) {
	gen, err := simulate.New(simulate.Options{Calls: 1, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sn := New(Config{Deduplicate: true})
	var frames [][]byte
	var stamps []time.Time
	for len(frames) < 40 {
		data, ci, err := gen.ZeroCopyReadPacketData()
		if err != nil {
			t.Fatal(err)
		}
		frames, stamps = append(frames, append([]byte(nil), data...)), append(stamps, ci.Timestamp)
	}
	for i := range frames[:20] { // the call is set up; RTP flows
		_ = sn.HandleFrame(gen.LinkType(), frames[i], stamps[i])
	}
	i := 20
	n := testing.AllocsPerRun(100, func() {
		_ = sn.HandleFrame(gen.LinkType(), frames[i%40], stamps[i%40].Add(time.Duration(i)*time.Second))
		i++
	})
	if n != 0 {
		t.Errorf("HandleFrame with Deduplicate allocates %.1f times per packet, want 0", n)
	}
}
