package render_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"pbx-agent/internal/callpcap"
	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/render"
)

func opener(path string) render.Opener {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

// codecs are the codecs of the generated calls: every one the agent
// decodes, with its RTP payload type and native rate.
var codecs = []struct {
	name string
	pt   uint8
	rate int
}{
	{codec.PCMU, 0, 8000},
	{codec.PCMA, 8, 8000},
	{codec.G722, 9, 16000},
	{codec.GSM, 3, 8000},
	{codec.G729, 18, 8000},
	{codec.Opus, 111, 48000},
	{codec.G726, 112, 8000},
	{codec.Speex, 97, 8000},
	{"speex/16000", 98, 16000},
	{codec.G723, 4, 8000},
}

// render renders a call and reads the whole stream into a file.
func renderFile(t *testing.T, in render.Input, opt render.Options) (string, *render.Stream) {
	t.Helper()
	s, err := render.Render(context.Background(), in, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := filepath.Join(t.TempDir(), "rec."+opt.Format.Ext())
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, s)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s.Size >= 0 && n != s.Size {
		t.Errorf("%d bytes, the stream announced %d", n, s.Size)
	}
	return out, s
}

// wavInfo reads a canonical WAV's rate, channels and samples.
func wavInfo(t *testing.T, path string) (rate, channels int, pcm []int16) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[:4]) != "RIFF" || string(b[36:40]) != "data" {
		t.Fatalf("not a canonical WAV: % x", b[:min(44, len(b))])
	}
	rate, channels = int(binary.LittleEndian.Uint32(b[24:])), int(binary.LittleEndian.Uint16(b[22:]))
	if size := int(binary.LittleEndian.Uint32(b[40:])); size != len(b)-44 {
		t.Errorf("data size %d, file has %d", size, len(b)-44)
	}
	for i := 44; i+1 < len(b); i += 2 {
		pcm = append(pcm, int16(binary.LittleEndian.Uint16(b[i:])))
	}
	return rate, channels, pcm
}

// separation measures the caller's 700 Hz on the left over 1300 Hz and the
// callee's 1300 Hz on the right over 700 Hz, from 200 ms in.
func separation(l, r []int16, rate int) (left, right float64) {
	from := rate / 5
	return tone.Over(l[from:], float64(rate), 700, 1300), tone.Over(r[from:], float64(rate), 1300, 700)
}

// TestRenderCodecs: a generated call in every codec the agent decodes,
// stored as SIP and RTP pcaps, rendered as WAV (its header at the codec's
// native rate) and as Ogg/Opus (decoded by ffmpeg, the referee) with the
// caller's 700 Hz left and the callee's 1300 Hz right, each ≥ 30 dB over
// the other. The callee's stream starts first: sides come from the SDP.
func TestRenderCodecs(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			callpcap.Skip(t, c.name)
			f := callpcap.Write(t, t.TempDir(), callpcap.Call{Codec: c.name, PT: c.pt, Duration: 2 * time.Second, CalleeFirst: true})
			in := render.Input{RTP: opener(f.RTP), SIP: opener(f.SIP)}
			wav, s := renderFile(t, in, render.Options{Format: audio.FormatWAV})
			rate, ch, pcm := wavInfo(t, wav)
			l, r := tone.Split(pcm)
			left, right := separation(l, r, rate)
			t.Logf("%s WAV: %d Hz, %d channels, %.2f s, left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz",
				c.name, rate, ch, float64(len(l))/float64(rate), left, right)
			if rate != c.rate || s.Rate != c.rate || ch != 2 {
				t.Errorf("WAV at %d Hz (stream says %d) with %d channels, want %d Hz stereo", rate, s.Rate, ch, c.rate)
			}
			if d := float64(len(l)) / float64(rate); d < 1.9 || d > 2.2 {
				t.Errorf("WAV of %.2f s, want about 2", d)
			}
			if left < 30 || right < 30 {
				t.Errorf("WAV separation left %.1f dB, right %.1f dB; want ≥ 30", left, right)
			}
			if !codec.Built {
				return
			}
			ogg, _ := renderFile(t, in, render.Options{Format: audio.FormatOgg})
			got, stream := tone.FFmpeg(t, ogg, c.rate, 2)
			l, r = tone.Split(got)
			left, right = separation(l, r, c.rate)
			head := oggHead(t, ogg)
			t.Logf("%s Ogg: ffprobe %q, input rate %d, %.2f s, left %.1f dB, right %.1f dB", c.name, stream, head, float64(len(l))/float64(c.rate), left, right)
			if head != c.rate {
				t.Errorf("OpusHead input rate %d, want %d", head, c.rate)
			}
			if left < 30 || right < 30 {
				t.Errorf("Ogg separation left %.1f dB, right %.1f dB; want ≥ 30", left, right)
			}
		})
	}
}

// oggHead returns the input sample rate of an Ogg/Opus file's OpusHead.
func oggHead(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := audio.NewOggReader(bytes.NewReader(b), 0).Next()
	if err != nil || len(p.Data) < 19 || string(p.Data[:8]) != "OpusHead" {
		t.Fatalf("no OpusHead: %v", err)
	}
	return int(binary.LittleEndian.Uint32(p.Data[12:]))
}

// TestRenderPause: a call paused from 0.6 s to 1.4 s, stored as the spool
// stores paused packets (payload cut after the RTP header; G.711
// silenced), renders that stretch as silence in WAV and Ogg, the audio
// around it as the tones, in G.722 and Opus (and PCMU).
func TestRenderPause(t *testing.T) {
	for _, c := range []struct {
		name string
		pt   uint8
	}{{codec.G722, 9}, {codec.Opus, 111}, {codec.PCMU, 0}} {
		t.Run(c.name, func(t *testing.T) {
			f := callpcap.Write(t, t.TempDir(), callpcap.Call{Codec: c.name, PT: c.pt, Duration: 2 * time.Second,
				PauseFrom: 600 * time.Millisecond, PauseTo: 1400 * time.Millisecond})
			in := render.Input{RTP: opener(f.RTP), SIP: opener(f.SIP)}
			formats := []audio.Format{audio.FormatWAV}
			if codec.Built {
				formats = append(formats, audio.FormatOgg)
			}
			for _, f := range formats {
				path, s := renderFile(t, in, render.Options{Format: f})
				var pcm []int16
				rate := s.Rate
				if f == audio.FormatWAV {
					_, _, pcm = wavInfo(t, path)
				} else {
					pcm, _ = tone.FFmpeg(t, path, rate, 2)
				}
				tone.CheckPaused(t, c.name+" "+f.String(), pcm, rate, 0.6, 1.4)
			}
		})
	}
}

// TestRenderMonoSkipNoSIP: saveaudio_stereo = no mixes one channel; a
// skip (saveaudio_afterconnect) shortens the recording; without the SIP
// pcap the first stream is the caller's and a static codec still decodes.
func TestRenderMonoSkipNoSIP(t *testing.T) {
	f := callpcap.Write(t, t.TempDir(), callpcap.Call{Codec: codec.PCMA, PT: 8, Duration: 3 * time.Second})
	path, _ := renderFile(t, render.Input{RTP: opener(f.RTP)}, render.Options{Format: audio.FormatWAV, Mono: true, Skip: time.Second})
	rate, ch, pcm := wavInfo(t, path)
	if rate != 8000 || ch != 1 {
		t.Fatalf("%d Hz, %d channels; want 8000 mono", rate, ch)
	}
	if d := float64(len(pcm)) / 8000; d < 1.9 || d > 2.1 {
		t.Errorf("%.2f s after skipping 1 s of 3, want 2", d)
	}
	p7, p13 := tone.Power(pcm, 8000, 700), tone.Power(pcm, 8000, 1300)
	if p7 < p13/10 || p13 < p7/10 || tone.RMS(pcm) < 1000 {
		t.Errorf("mono mix lacks a tone: 700 Hz %.3g, 1300 Hz %.3g", p7, p13)
	}
	_, err := render.Render(context.Background(), render.Input{RTP: func() (io.ReadCloser, error) { return nil, fs.ErrNotExist }},
		render.Options{Format: audio.FormatWAV})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no RTP pcap: %v, want fs.ErrNotExist", err)
	}
}

// TestRenderMixedRates: a caller in G.722 (16 kHz) and a callee in PCMU
// (8 kHz) render at the higher rate, the callee resampled, both tones
// kept on their sides (WAV and Ogg).
func TestRenderMixedRates(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo")
	}
	f := callpcap.Write(t, t.TempDir(), callpcap.Call{Codec: codec.G722, PT: 9, CalleeCodec: codec.PCMU, CalleePT: 0, Duration: 2 * time.Second})
	in := render.Input{RTP: opener(f.RTP), SIP: opener(f.SIP)}
	wav, _ := renderFile(t, in, render.Options{Format: audio.FormatWAV})
	rate, _, pcm := wavInfo(t, wav)
	ogg, _ := renderFile(t, in, render.Options{Format: audio.FormatOgg})
	opcm, _ := tone.FFmpeg(t, ogg, 16000, 2)
	for _, c := range []struct {
		what string
		pcm  []int16
		rate int
	}{{"WAV", pcm, rate}, {"Ogg", opcm, oggHead(t, ogg)}} {
		l, r := tone.Split(c.pcm)
		left, right := separation(l, r, 16000)
		t.Logf("%s: %d Hz, left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz (RMS %.0f / %.0f)", c.what, c.rate, left, right, tone.RMS(l), tone.RMS(r))
		if c.rate != 16000 || left < 30 || right < 30 || tone.RMS(r) < 4000 {
			t.Errorf("%s: %d Hz (want 16000), separation %.1f / %.1f dB (want ≥ 30), callee RMS %.0f", c.what, c.rate, left, right, tone.RMS(r))
		}
	}
}

// TestRenderClosedEarly: a reader that stops after the first bytes (a
// client gone) closes the stream; the decoding stops and its goroutine
// ends.
func TestRenderClosedEarly(t *testing.T) {
	f := callpcap.Write(t, t.TempDir(), callpcap.Call{Codec: codec.PCMU, PT: 0, Duration: 20 * time.Second})
	before := runtime.NumGoroutine()
	s, err := render.Render(context.Background(), render.Input{RTP: opener(f.RTP), SIP: opener(f.SIP)}, render.Options{Format: audio.FormatWAV})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	s.Close() // waits until the decoding goroutine is done (it may still be returning)
	after := runtime.NumGoroutine()
	for i := 0; i < 500 && after > before; i++ {
		time.Sleep(10 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before\n%s", after, before, buf[:runtime.Stack(buf, true)])
	}
	if _, err := s.Read(make([]byte, 10)); err == nil {
		t.Error("read after Close succeeded")
	}
}
