package codec_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/codec"
)

// referees say how ffmpeg (the referee) reads each codec's payloads: the
// file to write and ffmpeg's input options. minSNR is the agreement
// required; where it is below 30 dB the two decoders legitimately differ
// (see TestFFmpegAgreement) and the dominant tone is held instead.
var referees = []struct {
	name   string
	rate   int
	minSNR float64
	input  []string // ffmpeg options before -i
	file   func(payloads [][]byte) []byte
}{
	{codec.G722, 16000, 30, []string{"-f", "g722"}, raw},
	{codec.GSM, 8000, 30, []string{"-f", "gsm"}, raw},
	{codec.G729, 8000, 20, []string{"-f", "g729"}, raw},
	{codec.G726, 8000, 30, []string{"-f", "g726le", "-code_size", "4"}, raw},
	{codec.G726AAL2, 8000, 30, []string{"-f", "g726", "-code_size", "4"}, raw},
	{codec.G723, 8000, 30, []string{"-f", "g723_1"}, raw},
	{codec.ILBC, 8000, 30, []string{"-f", "ilbc"}, ilbcFile(30)},
	{codec.ILBC20, 8000, 30, []string{"-f", "ilbc"}, ilbcFile(20)},
	{codec.Speex, 8000, 30, []string{"-c:a", "speex"}, speexOgg(8000)},
	{codec.SpeexWB, 16000, 20, []string{"-c:a", "speex"}, speexOgg(16000)},
	{codec.SpeexWB, 16000, 30, []string{"-c:a", "libspeex"}, speexOgg(16000)},
	{codec.Opus, 48000, 20, []string{"-c:a", "opus"}, opusOgg},
	{codec.Opus, 48000, 30, []string{"-c:a", "libopus"}, opusOgg},
}

func raw(payloads [][]byte) []byte {
	var b []byte
	for _, p := range payloads {
		b = append(b, p...)
	}
	return b
}

// ilbcFile is RFC 3952's iLBC storage format: "#!iLBC20\n" or "#!iLBC30\n"
// then the frames.
func ilbcFile(mode int) func([][]byte) []byte {
	return func(payloads [][]byte) []byte {
		return append(fmt.Appendf(nil, "#!iLBC%d\n", mode), raw(payloads)...)
	}
}

// oggFile puts the two header packets on their own pages, then one
// payload per page, the granule position advancing by step each.
func oggFile(head, tags []byte, payloads [][]byte, step int64) []byte {
	w := audio.NewOggWriter(0x5042)
	out := w.Page(w.Packet(nil, head, 0), 0)
	out = w.Page(w.Packet(out, tags, 0), 0)
	for i, p := range payloads {
		out = w.Page(w.Packet(out, p, int64(i+1)*step), 0)
	}
	return w.Page(out, audio.OggEOS)
}

// opusOgg is Ogg Opus (RFC 7845): mono, pre-skip 0, 20 ms payloads.
func opusOgg(payloads [][]byte) []byte {
	head := append([]byte("OpusHead"), 1, 1, 0, 0) // version, channels, pre-skip
	head = binary.LittleEndian.AppendUint32(head, 48000)
	head = append(head, 0, 0, 0) // gain, mapping family 0
	tags := append([]byte("OpusTags"), 4, 0, 0, 0, 't', 'e', 's', 't', 0, 0, 0, 0)
	return oggFile(head, tags, payloads, 960)
}

// speexOgg is Ogg Speex (the 80-byte Speex header), one frame per payload,
// narrowband (8000) or wideband (16000).
func speexOgg(rate int) func([][]byte) []byte {
	return func(payloads [][]byte) []byte {
		mode, frame := 0, 160
		if rate == 16000 {
			mode, frame = 1, 320
		}
		head := append([]byte("Speex   "), make([]byte, 20)...) // then the version string
		copy(head[8:], "1.2.1")
		for _, v := range []int32{1, 80, int32(rate), int32(mode), 4, 1, -1, int32(frame), 0, 1, 0, 0, 0} {
			head = binary.LittleEndian.AppendUint32(head, uint32(v))
		}
		tags := []byte{4, 0, 0, 0, 't', 'e', 's', 't', 0, 0, 0, 0}
		return oggFile(head, tags, payloads, int64(frame))
	}
}

// TestFFmpegAgreement: the same payloads decoded by ffmpeg (the referee,
// with its own native decoders; Opus and Speex through an Ogg file) and by
// this package agree to ≥ 30 dB SNR after alignment, and both have the 700
// Hz tone ≥ 30 dB over 1300 Hz. Where the two decoders legitimately differ
// they are held to 20 dB and the same dominant tone: G.729 (ffmpeg decodes
// full G.729, bcg729 is Annex A, a lighter decoder the standard allows),
// wideband Speex and Opus (ffmpeg's own reimplementations, not bit-exact to
// libspeex's and libopus's reference decoders, with another synthesis
// delay). For those two ffmpeg's libspeex/libopus decoders run as well and
// must agree to ≥ 30 dB: the payloads and Ogg files are intact. iLBC and
// G.723.1: this package decodes with libavcodec, so ffmpeg agreeing only
// shows the payloads reach it intact; the tone checks (here and in
// TestRoundTrip, on payloads of independent encoders) show the decoding is
// right.
func TestFFmpegAgreement(t *testing.T) {
	for _, tc := range referees {
		t.Run(tc.name+"/"+tc.input[len(tc.input)-1], func(t *testing.T) {
			codec.Need(t, tc.name)
			payloads := codec.EncodeTone(t, tc.name, 700, 2)
			in := filepath.Join(t.TempDir(), "in")
			if err := os.WriteFile(in, tc.file(payloads), 0o600); err != nil {
				t.Fatal(err)
			}
			ref, _ := tone.FFmpeg(t, in, tc.rate, 1, tc.input...)
			d, err := codec.New(codec.DecName(tc.name), tc.rate)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			got := codec.DecodeAll(t, d, payloads)
			snr, lag := tone.SNR(ref, got, tc.rate/200)
			t.Logf("%s: %d samples, ffmpeg %d; SNR %.1f dB at lag %d", tc.name, len(got), len(ref), snr, lag)
			if snr < tc.minSNR {
				t.Errorf("SNR against ffmpeg %.1f dB, want ≥ %.0f", snr, tc.minSNR)
			}
			for who, pcm := range map[string][]int16{"ffmpeg": ref, "agent": got} {
				if len(pcm) < tc.rate/2 {
					t.Fatalf("%s: only %d samples", who, len(pcm))
				}
				if over := tone.Over(pcm[tc.rate/5:], float64(tc.rate), 700, 1300); over < 30 {
					t.Errorf("%s: 700 Hz only %.1f dB over 1300 Hz", who, over)
				}
			}
		})
	}
}
