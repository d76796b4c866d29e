package spool_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbx-agent/internal/callpcap"
	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/render"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/spool"
)

// TestLiveRecordings: generated calls in every codec the agent decodes,
// replayed through the sniffer and the spool with saveaudio = wav and
// saveaudio = ogg and a pause from 1 s to 2 s, give an AUDIO file at the
// codec's native rate (WAV header; OpusHead's input rate, decoded by
// ffmpeg) with the caller's 700 Hz left and the callee's 1300 Hz right
// (≥ 30 dB each) and silence while paused; the RTP pcap the spool stored
// (paused packets cut or silenced) rendered on demand is silent there too.
// A call whose two sides use codecs of different rates is written at the
// higher.
func TestLiveRecordings(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		name   string
		pt     uint8
		rate   int
		callee string // the callee's codec when it is another (PCMU)
	}{
		{codec.PCMU, 0, 8000, ""}, {codec.G722, 9, 16000, ""}, {codec.GSM, 3, 8000, ""}, {codec.G729, 18, 8000, ""}, {codec.Opus, 111, 48000, ""},
		{codec.G726, 112, 8000, ""}, {codec.Speex, 97, 8000, ""}, {"speex/16000", 98, 16000, ""}, {codec.G723, 4, 8000, ""},
		{codec.G722, 9, 16000, codec.PCMU}, // two rates: the callee's 8 kHz resampled to 16
	} {
		t.Run(c.name+c.callee, func(t *testing.T) {
			callpcap.Skip(t, c.name)
			call := callpcap.Call{Codec: c.name, PT: c.pt, Duration: 3 * time.Second, Start: start}
			if c.callee != "" {
				call.CalleeCodec, call.CalleePT = c.callee, 0
			}
			files := callpcap.Write(t, t.TempDir(), call)
			pause := &pauseAt{callID: callpcap.CallID, from: start.Add(time.Second), to: start.Add(2 * time.Second)}
			formats := []audio.Format{audio.FormatWAV}
			if codec.Built {
				formats = append(formats, audio.FormatOgg)
			}
			for _, f := range formats {
				dir := t.TempDir()
				cfg := fullConfig(dir)
				cfg.SaveAudio = f.Ext()
				res := replay(t, files.Both, cfg, pause)
				cdr := res.cdrs[callpcap.CallID]
				if cdr == nil || res.paused.IsZero() || res.unpaused.IsZero() {
					t.Fatalf("CDR %v, paused at %v, unpaused at %v", cdr != nil, res.paused, res.unpaused)
				}
				path := func(typ, ext string) string {
					return spool.Path(dir, cdr.CallDate, time.UTC, typ, spool.FBasename(callpcap.CallID), ext)
				}
				// The timeline starts with the first RTP packet, at start.
				from, to := res.paused.Sub(start).Seconds(), res.unpaused.Sub(start).Seconds()
				pcm, rate := audioFile(t, path(spool.TypeAudio, f.Ext()))
				l, r := tone.Split(pcm)
				left := tone.Over(tone.Span(l, rate, 0.2, from-0.1), float64(rate), 700, 1300)
				right := tone.Over(tone.Span(r, rate, to+0.15, 2.9), float64(rate), 1300, 700)
				t.Logf("%s %s: %d Hz, %.2f s, left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz",
					c.name, f, rate, float64(len(l))/float64(rate), left, right)
				if rate != c.rate || left < 30 || right < 30 {
					t.Errorf("%s: %d Hz (want %d), separation %.1f / %.1f dB (want ≥ 30)", f, rate, c.rate, left, right)
				}
				tone.CheckPaused(t, c.name+" "+f.String()+" file", pcm, rate, from, to)
				if f != audio.FormatWAV {
					continue
				}
				// The stored RTP pcap, rendered on demand.
				w := renderSpooled(t, path)
				if w.rate != c.rate {
					t.Errorf("rendered from the RTP pcap at %d Hz, want %d", w.rate, c.rate)
				}
				tone.CheckPaused(t, c.name+" rendered from the spool's RTP pcap", w.samples, w.rate, from, to)
			}
		})
	}
}

// audioFile reads a spool AUDIO file as interleaved stereo at its rate:
// a WAV directly, an Ogg/Opus through ffmpeg (the referee) at the rate its
// OpusHead gives.
func audioFile(t *testing.T, path string) (pcm []int16, rate int) {
	t.Helper()
	if filepath.Ext(path) == ".wav" {
		w := readWAV(t, path)
		return w.samples, w.rate
	}
	rate = oggRate(t, path)
	pcm, stream := tone.FFmpeg(t, path, rate, 2)
	if stream != "opus 48000 2" {
		t.Errorf("%s: ffprobe says %q, want opus 48000 2", path, stream)
	}
	return pcm, rate
}

// renderSpooled renders a call's spooled RTP pcap (named by its SIP pcap)
// as a WAV; path gives a file of the call by type and extension.
func renderSpooled(t *testing.T, path func(typ, ext string) string) wav {
	t.Helper()
	open := func(p string) render.Opener {
		return func() (io.ReadCloser, error) { return spool.OpenPcap(openRoot(t, filepath.Dir(p)), filepath.Base(p)) }
	}
	s, err := render.Render(context.Background(), render.Input{RTP: open(path(spool.TypeRTP, "pcap")), SIP: open(path(spool.TypeSIP, "pcap"))},
		render.Options{Format: audio.FormatWAV})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	w, err := parseWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// oggRate is the input sample rate in an Ogg/Opus file's OpusHead.
func oggRate(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := audio.NewOggReader(f, 0).Next()
	if err != nil || len(p.Data) < 19 || string(p.Data[:8]) != "OpusHead" {
		t.Fatalf("%s: no OpusHead: %v", path, err)
	}
	return int(uint32(p.Data[12]) | uint32(p.Data[13])<<8 | uint32(p.Data[14])<<16 | uint32(p.Data[15])<<24)
}

// TestGeneratedRecordings: calls of the generator (pbx-agent gen -codec …)
// in each codec the agent decodes, with jitter and a pause from 1 s to
// 2.5 s after the connect, make AUDIO files (WAV and Ogg) at the codec's
// native rate with the caller's tone left, the callee's right, silence
// paused. A codec this build cannot decode (no cgo, no libavcodec) is
// skipped.
func TestGeneratedRecordings(t *testing.T) {
	for _, c := range []struct {
		codec string
		rate  int
		lib   string // the decoder this build must have (codec.New)
	}{{simulate.CodecPCMA, 8000, codec.PCMA}, {simulate.CodecG722, 16000, codec.G722}, {simulate.CodecG729, 8000, codec.G729},
		{simulate.CodecOpus, 48000, codec.Opus}, {simulate.CodecGSM, 8000, codec.GSM}, {simulate.CodecG726, 8000, codec.G726},
		{simulate.CodecG723, 8000, codec.G723}, {simulate.CodecILBC, 8000, codec.ILBC},
		{simulate.CodecSpeex, 8000, codec.Speex}, {simulate.CodecSpeexWB, 16000, codec.Speex}} {
		t.Run(c.codec, func(t *testing.T) {
			d, err := codec.New(c.lib, 0)
			if err != nil {
				t.Skip("not in this build:", err)
			}
			d.Close()
			o := simulate.Options{Calls: 1, Duration: 5 * time.Second, Codec: c.codec, Seed: 5, Jitter: 3 * time.Millisecond, Tones: [2]float64{700, 1300}}
			_, truth := generate(t, o)
			tc := truth.Calls[0]
			for _, f := range recordFormats() {
				dir := t.TempDir()
				cfg := fullConfig(dir)
				cfg.SaveAudio = f.Ext()
				pause := &pauseAt{callID: tc.CallID, from: tc.Connect.Add(time.Second), to: tc.Connect.Add(2500 * time.Millisecond)}
				res := replaySource(t, newGenerator(t, o), "5060", cfg, pause)
				cdr := res.cdrs[tc.CallID]
				if cdr == nil || res.paused.IsZero() || res.unpaused.IsZero() {
					t.Fatalf("CDR %v, paused at %v, unpaused at %v", cdr != nil, res.paused, res.unpaused)
				}
				path := func(typ, ext string) string {
					return spool.Path(dir, cdr.CallDate, time.UTC, typ, spool.FBasename(tc.CallID), ext)
				}
				_, rtpPkts := readPcap(t, path(spool.TypeRTP, "pcap"))
				first := rtpPkts[0].ci.Timestamp
				pcm, rate := audioFile(t, path(spool.TypeAudio, f.Ext()))
				from, to := res.paused.Sub(first).Seconds(), res.unpaused.Sub(first).Seconds()
				l, r := tone.Split(pcm)
				checkTones(t, c.codec+" "+f.String(), interleave(tone.Span(l, rate, 0.2, from-0.1), tone.Span(r, rate, 0.2, from-0.1)), rate, c.rate)
				tone.CheckPaused(t, c.codec+" "+f.String(), pcm, rate, from, to)
			}
		})
	}
}

// recordFormats are the AUDIO formats this build writes.
func recordFormats() []audio.Format {
	if codec.Built {
		return []audio.Format{audio.FormatWAV, audio.FormatOgg}
	}
	return []audio.Format{audio.FormatWAV}
}

// interleave makes stereo of two channels.
func interleave(l, r []int16) []int16 {
	out := make([]int16, 0, 2*len(l))
	for i := range min(len(l), len(r)) {
		out = append(out, l[i], r[i])
	}
	return out
}

// TestOggWithoutLibopus: a build without libopus (nocodecs, or
// CGO_ENABLED=0) asked for saveaudio = ogg writes WAV and says so once,
// at start. `go test -tags nocodecs -run TestOggWithoutLibopus ./sniffer/spool`.
func TestOggWithoutLibopus(t *testing.T) {
	if codec.Built {
		t.Skip("this build has libopus")
	}
	var logs syncBuffer
	dir := t.TempDir()
	cfg := fullConfig(dir)
	cfg.SaveAudio = "ogg"
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	files := callpcap.Write(t, t.TempDir(), callpcap.Call{Codec: codec.PCMU, PT: 0, Duration: time.Second})
	res := replay(t, files.Both, cfg, nil)
	cdr := res.cdrs[callpcap.CallID]
	if cdr == nil {
		t.Fatal("no CDR")
	}
	w := readWAV(t, spool.Path(dir, cdr.CallDate, time.UTC, spool.TypeAudio, spool.FBasename(callpcap.CallID), "wav"))
	if n := strings.Count(logs.String(), "needs libopus"); n != 1 || w.rate != 8000 {
		t.Errorf("%d log lines naming libopus (want 1), WAV at %d Hz\n%s", n, w.rate, logs.String())
	}
}
