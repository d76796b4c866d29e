package recording

import (
	"context"
	"encoding/binary"
	"os"
	"testing"

	"pbx-agent/sniffer/fixture"
)

// TestMixMonitorMutedStretch measures what MixMonitorMute does to Asterisk's
// own file: the recorded answered call's MixMonitor WAV (muted with
// Direction both, then unmuted, by the recording client) holds one run of
// exact zeros — silence is written, the timeline is kept.
func TestMixMonitorMutedStretch(t *testing.T) {
	b, err := os.ReadFile(fixture.Shared(t, "asterisk", "mixmonitor-answered.wav"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[:4]) != "RIFF" || binary.LittleEndian.Uint32(b[24:]) != 8000 {
		t.Fatalf("not an 8 kHz WAV")
	}
	pcm := b[44:]
	n := len(pcm) / 2
	var runs [][2]int
	start := -1
	for i := 0; i <= n; i++ {
		zero := i < n && pcm[2*i] == 0 && pcm[2*i+1] == 0
		switch {
		case zero && start < 0:
			start = i
		case !zero && start >= 0:
			if i-start >= 800 { // ≥ 100 ms
				runs = append(runs, [2]int{start, i})
			}
			start = -1
		}
	}
	if len(runs) != 1 {
		t.Fatalf("zero runs %v, want exactly one muted stretch", runs)
	}
	d := float64(runs[0][1]-runs[0][0]) / 8000
	if d < 2.9 || d > 3.1 {
		t.Errorf("muted stretch %.3f s", d)
	}
	t.Logf("file %.2f s; muted stretch %.3f s of exact zeros at %.3f–%.3f s", float64(n)/8000, d,
		float64(runs[0][0])/8000, float64(runs[0][1])/8000)
}

// BenchmarkPauseSnifferOnly is the cost of pausecall when no Asterisk is
// configured: what the manager API's handler waits for.
func BenchmarkPauseSnifferOnly(b *testing.B) {
	o := New(Config{Calls: newCalls("a")})
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := o.Pause(ctx, 0x100, i%2 == 0); err != nil {
			b.Fatal(err)
		}
	}
}
