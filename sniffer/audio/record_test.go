package audio

import (
	"strconv"
	"testing"

	"pbx-agent/internal/cputime"
	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/codec"
)

// toneFrame is a 20 ms frame at rate: 700 Hz caller, 1300 Hz callee.
func toneFrame(rate int) *Frame {
	n := rate / 50
	return &Frame{Rate: rate, Caller: tone.Sine(n, 0, float64(rate), 700, 8000), Callee: tone.Sine(n, 0, float64(rate), 1300, 8000)}
}

// recorderFormats are the formats this build writes.
func recorderFormats() []Format {
	if codec.Built {
		return []Format{FormatWAV, FormatOgg}
	}
	return []Format{FormatWAV}
}

// TestRecorderNoAllocs: once started, a recorder adds a frame (WAV
// samples, or Ogg/Opus packets and pages) without allocating: it runs
// under the spool's lock for every frame of every recorded call.
func TestRecorderNoAllocs(t *testing.T) {
	for _, f := range recorderFormats() {
		for _, rate := range []int{8000, 16000, 48000} {
			r, err := NewRecorder(RecorderConfig{Format: f})
			if err != nil {
				t.Fatal(err)
			}
			fr := toneFrame(rate)
			buf := make([]byte, 0, 64<<10)
			for range 120 { // past the first pages
				if buf, err = r.Frame(buf[:0], fr); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(200, func() { buf, _ = r.Frame(buf[:0], fr) })
			r.Close()
			if allocs != 0 {
				t.Errorf("%v at %d Hz: %.1f allocations per frame, want 0", f, rate, allocs)
			}
		}
	}
}

// BenchmarkRecorder is the cost of one 20 ms stereo frame in a recording
// (the spool's AUDIO writer, per recorded call): WAV copies, Ogg/Opus
// encodes; cpu-ns/op is the CPU time (what it costs on a busy machine).
// `go test -run '^$' -bench Recorder -benchmem ./sniffer/audio`.
func BenchmarkRecorder(b *testing.B) {
	for _, f := range recorderFormats() {
		for _, rate := range []int{8000, 16000, 48000} {
			b.Run(f.String()+"/"+strconv.Itoa(rate), func(b *testing.B) {
				r, err := NewRecorder(RecorderConfig{Format: f})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				fr := toneFrame(rate)
				buf := make([]byte, 0, 64<<10)
				var out int
				b.ReportAllocs()
				start := cputime.Process()
				for b.Loop() {
					buf, err = r.Frame(buf[:0], fr)
					out += len(buf)
				}
				cputime.PerOp(b, start)
				b.ReportMetric(float64(out)/float64(b.N), "B/frame")
			})
		}
	}
}
