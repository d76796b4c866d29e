package tone

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"strconv"
	"testing"
)

// FFmpeg decodes an audio file with ffmpeg (the referee) into interleaved
// signed 16-bit PCM at rate with channels, and returns the samples and
// what ffprobe says of the file's first audio stream ("codec_name
// sample_rate channels"). input are ffmpeg's options for the input file
// (a raw format: "-f", "g726le"; a decoder: "-c:a", "speex"). The test is
// skipped when ffmpeg is not installed (scripts/deps.sh installs it).
func FFmpeg(tb testing.TB, file string, rate, channels int, input ...string) (pcm []int16, stream string) {
	tb.Helper()
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		tb.Skip("ffmpeg not installed (scripts/deps.sh installs it)")
	}
	var stderr bytes.Buffer
	args := append(append([]string{"-nostdin", "-v", "error"}, input...), "-i", file, "-f", "s16le", "-ar", strconv.Itoa(rate), "-ac", strconv.Itoa(channels), "-")
	cmd := exec.Command(ff, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		tb.Fatalf("ffmpeg %s: %v: %s", file, err, stderr.String())
	}
	pcm = make([]int16, len(out)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(out[2*i:]))
	}
	if fp, err := exec.LookPath("ffprobe"); err == nil {
		probe := append(append([]string{"-v", "error"}, demuxerOptions(input)...), "-select_streams", "a:0", "-show_entries", "stream=codec_name,sample_rate,channels",
			"-of", "default=noprint_wrappers=1:nokey=1", file)
		info, err := exec.Command(fp, probe...).Output()
		if err != nil {
			tb.Fatalf("ffprobe %s: %v", file, err)
		}
		stream = string(bytes.Join(bytes.Fields(info), []byte(" ")))
	}
	return pcm, stream
}

// demuxerOptions are input's options without decoder choices ("-c:a X"),
// which ffprobe does not take.
func demuxerOptions(input []string) []string {
	var out []string
	for i := 0; i < len(input); i++ {
		if input[i] == "-c:a" || input[i] == "-acodec" {
			i++
			continue
		}
		out = append(out, input[i])
	}
	return out
}

// Split returns the left and right channels of interleaved stereo PCM.
func Split(s []int16) (left, right []int16) {
	left, right = make([]int16, 0, len(s)/2), make([]int16, 0, len(s)/2)
	for i := 0; i+1 < len(s); i += 2 {
		left, right = append(left, s[i]), append(right, s[i+1])
	}
	return left, right
}

// Span returns s (one channel at rate) from second from to second to,
// clipped to its length.
func Span(s []int16, rate int, from, to float64) []int16 {
	a := min(max(int(from*float64(rate)), 0), len(s))
	return s[a:min(max(int(to*float64(rate)), a), len(s))]
}

// CheckPaused checks a stereo recording paused from second from to second
// to: that stretch (less 100 ms each side for codec and timeline edges) is
// silent on both channels, the caller's channel carries its tone before it
// and the callee's after it.
func CheckPaused(t testing.TB, what string, pcm []int16, rate int, from, to float64) {
	t.Helper()
	l, r := Split(pcm)
	paused := RMS(Span(l, rate, from+0.1, to-0.1)) + RMS(Span(r, rate, from+0.1, to-0.1))
	before, after := RMS(Span(l, rate, 0.2, from-0.1)), RMS(Span(r, rate, to+0.15, to+0.5))
	t.Logf("%s: RMS paused %.1f, before %.0f (left), after %.0f (right)", what, paused, before, after)
	if paused > 30 || before < 1000 || after < 1000 {
		t.Errorf("%s: paused RMS %.1f (want ≤ 30), before %.0f and after %.0f (want ≥ 1000)", what, paused, before, after)
	}
}
