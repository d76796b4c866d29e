package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/codec"
)

// stereoTones is secs seconds of interleaved stereo at rate: 700 Hz left
// (the caller), 1300 Hz right (the callee).
func stereoTones(rate int, secs float64) []int16 {
	n := int(float64(rate) * secs)
	l, r := tone.Sine(n, 0, float64(rate), 700, 8000), tone.Sine(n, 0, float64(rate), 1300, 8000)
	out := make([]int16, 0, 2*n)
	for i := range l {
		out = append(out, l[i], r[i])
	}
	return out
}

// writeOggOpus encodes pcm in chunks of chunk samples per channel.
func writeOggOpus(t testing.TB, pcm []int16, rate, channels, chunk int) []byte {
	t.Helper()
	w, out, err := NewOggOpusWriter(nil, rate, channels, 0x1234)
	if err != nil {
		t.Fatal(err)
	}
	for len(pcm) > 0 {
		n := min(chunk*channels, len(pcm))
		if out, err = w.Append(out, pcm[:n]); err != nil {
			t.Fatal(err)
		}
		pcm = pcm[n:]
	}
	if out, err = w.Finish(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// oggPackets reads every packet of an Ogg stream.
func oggPackets(t testing.TB, data []byte) []OggPacket {
	t.Helper()
	r := NewOggReader(bytes.NewReader(data), 0)
	var out []OggPacket
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p.Data = bytes.Clone(p.Data)
		out = append(out, p)
	}
}

// TestOggOpusTones: stereo tones at each native rate written as Ogg/Opus
// and decoded by ffmpeg (the referee) keep 700 Hz left and 1300 Hz right,
// each ≥ 30 dB over the other, with the stream's rate in OpusHead, the
// length trimmed by the last granule position, and valid pages (our
// reader checks every checksum and sequence number).
func TestOggOpusTones(t *testing.T) {
	if !codec.Built {
		t.Skip("built without libopus")
	}
	for _, rate := range []int{8000, 16000, 48000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			const secs = 3.01 // not a whole number of 20 ms frames: the end is trimmed
			pcm := stereoTones(rate, secs)
			data := writeOggOpus(t, pcm, rate, 2, 333)
			pk := oggPackets(t, data)
			if len(pk) < 3 || string(pk[0].Data[:8]) != "OpusHead" || string(pk[1].Data[:8]) != "OpusTags" || !pk[0].BOS || !pk[len(pk)-1].EOS {
				t.Fatalf("%d packets, first %q, EOS %v", len(pk), pk[0].Data[:8], pk[len(pk)-1].EOS)
			}
			head := pk[0].Data
			preskip, inRate := int64(binary.LittleEndian.Uint16(head[10:])), int(binary.LittleEndian.Uint32(head[12:]))
			last := pk[len(pk)-1].Granule
			wantSamples := int64(len(pcm) / 2)
			if head[9] != 2 || inRate != rate || last != preskip+wantSamples*48000/int64(rate) {
				t.Fatalf("OpusHead channels %d rate %d, last granule %d; want 2, %d, %d", head[9], inRate, last, rate, preskip+wantSamples*48000/int64(rate))
			}
			file := filepath.Join(t.TempDir(), "t.ogg")
			if err := os.WriteFile(file, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, stream := tone.FFmpeg(t, file, rate, 2)
			l, r := tone.Split(got)
			left, right := tone.Over(l[rate/10:], float64(rate), 700, 1300), tone.Over(r[rate/10:], float64(rate), 1300, 700)
			t.Logf("%d Hz: %d bytes for %.2f s (%.1f kbit/s), ffprobe %q, %d samples (want %d), left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz",
				rate, len(data), secs, float64(len(data))*8/secs/1000, stream, len(l), wantSamples, left, right)
			if stream != "opus 48000 2" {
				t.Errorf("ffprobe: %q, want opus 48000 2", stream)
			}
			if int64(len(l)) < wantSamples-int64(rate)/100 || int64(len(l)) > wantSamples+int64(rate)/100 {
				t.Errorf("ffmpeg decoded %d samples per channel, want %d (± 10 ms)", len(l), wantSamples)
			}
			if left < 30 || right < 30 {
				t.Errorf("separation left %.1f dB, right %.1f dB; want ≥ 30", left, right)
			}
		})
	}
}

// TestOggWriterReader: packets of every size class (empty, 255-multiple,
// longer than a page) come back whole, in order, with their granule
// positions, and a flipped byte fails the checksum.
func TestOggWriterReader(t *testing.T) {
	sizes := []int{0, 1, 254, 255, 256, 510, 70000, 3, 255 * 255, 17}
	w := NewOggWriter(7)
	var data []byte
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte(i + 1)}, n)
		data = w.Packet(data, p, int64(i*100))
		if i%3 == 2 {
			data = w.Page(data, 0)
		}
	}
	data = w.Page(data, OggEOS)
	pk := oggPackets(t, data)
	if len(pk) != len(sizes) {
		t.Fatalf("%d packets, want %d", len(pk), len(sizes))
	}
	for i, p := range pk {
		if len(p.Data) != sizes[i] || (len(p.Data) > 0 && p.Data[0] != byte(i+1)) || p.Serial != 7 {
			t.Errorf("packet %d: %d bytes serial %d, want %d bytes serial 7", i, len(p.Data), p.Serial, sizes[i])
		}
		if p.Granule != -1 && p.Granule != int64(i*100) {
			t.Errorf("packet %d: granule %d", i, p.Granule)
		}
	}
	if !pk[0].BOS || !pk[len(pk)-1].EOS || pk[len(pk)-1].Granule != int64((len(sizes)-1)*100) {
		t.Errorf("BOS %v EOS %v last granule %d", pk[0].BOS, pk[len(pk)-1].EOS, pk[len(pk)-1].Granule)
	}
	bad := bytes.Clone(data)
	bad[40] ^= 1
	r := NewOggReader(bytes.NewReader(bad), 0)
	var err error
	for err == nil {
		_, err = r.Next()
	}
	if !errors.Is(err, ErrOgg) {
		t.Errorf("flipped byte: %v, want ErrOgg", err)
	}
	r = NewOggReader(bytes.NewReader(data), 1000)
	for err = nil; err == nil; _, err = r.Next() {
	}
	if !errors.Is(err, ErrOgg) {
		t.Errorf("packet over the limit: %v, want ErrOgg", err)
	}
}

// FuzzOggReader: any input ends in packets and then io.EOF or an error
// wrapping ErrOgg, never a panic, with no packet over the limit.
func FuzzOggReader(f *testing.F) {
	w := NewOggWriter(1)
	var seed []byte
	seed = w.Packet(seed, []byte("OpusHead\x01\x02\x38\x01\x40\x1f\x00\x00\x00\x00\x00"), 0)
	seed = w.Page(seed, 0)
	seed = w.Packet(seed, bytes.Repeat([]byte{9}, 600), 960)
	seed = w.Page(seed, OggEOS)
	f.Add(seed)
	f.Add(seed[:50])
	f.Add([]byte("OggS"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewOggReader(bytes.NewReader(data), 4096)
		for range 10000 {
			p, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrOgg) {
					t.Fatalf("error %v does not wrap ErrOgg", err)
				}
				return
			}
			if len(p.Data) > 4096 {
				t.Fatalf("packet of %d bytes over the limit", len(p.Data))
			}
		}
	})
}

// TestCutOggOpus: a stored Ogg/Opus recording cut after 2 s
// (saveaudio_afterconnect) plays, per ffmpeg, for the 1.5 s left with
// only what came after the cut (1000 Hz, the 500 Hz before it ≥ 30 dB
// down), its pages valid.
func TestCutOggOpus(t *testing.T) {
	if !codec.Built {
		t.Skip("built without libopus")
	}
	const rate = 16000
	pcm := append(tone.Sine(2*rate, 0, rate, 500, 8000), tone.Sine(3*rate/2, 0, rate, 1000, 8000)...)
	src := writeOggOpus(t, pcm, rate, 1, 160)
	for _, tc := range []struct {
		skip      time.Duration
		wantSecs  float64
		want, not float64
	}{
		{2 * time.Second, 1.5, 1000, 500},
		{0, 3.5, 0, 0},
		{10 * time.Second, 0, 0, 0},
	} {
		var out bytes.Buffer
		if err := CutOggOpus(&out, bytes.NewReader(src), tc.skip); err != nil {
			t.Fatal(err)
		}
		pk := oggPackets(t, out.Bytes()) // every page checked
		if tc.wantSecs == 0 {
			// Nothing after the cut: the headers and an empty last page
			// (ffmpeg reads no stream out of that).
			if len(pk) != 2 || string(pk[0].Data[:8]) != "OpusHead" {
				t.Errorf("cut %v: %d packets, want the 2 headers", tc.skip, len(pk))
			}
			continue
		}
		file := filepath.Join(t.TempDir(), "cut.ogg")
		if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		got, _ := tone.FFmpeg(t, file, rate, 1)
		secs := float64(len(got)) / rate
		over := 0.0
		if tc.want > 0 {
			over = tone.Over(got[rate/20:], rate, tc.want, tc.not)
		}
		t.Logf("cut %v: %d bytes, %.3f s, %v Hz %.1f dB over %v Hz", tc.skip, out.Len(), secs, tc.want, over, tc.not)
		if secs < tc.wantSecs-0.03 || secs > tc.wantSecs+0.03 {
			t.Errorf("cut %v: %.3f s, want %.2f", tc.skip, secs, tc.wantSecs)
		}
		if tc.want > 0 && over < 30 {
			t.Errorf("cut %v: %v Hz only %.1f dB over %v Hz", tc.skip, tc.want, over, tc.not)
		}
	}
	if err := CutOggOpus(io.Discard, bytes.NewReader([]byte("RIFF....WAVE")), time.Second); !errors.Is(err, ErrOgg) {
		t.Errorf("not Ogg: %v, want ErrOgg", err)
	}
}

// FuzzCutOggOpus: any input cut at any point gives an error wrapping
// ErrOgg, or an output whose every page reads back (checksums, sequence,
// packets), never a panic.
func FuzzCutOggOpus(f *testing.F) {
	w, seed, err := NewOggOpusWriter(nil, 8000, 1, 3)
	if err == nil {
		seed, _ = w.Append(seed, make([]int16, 8000))
		seed, _ = w.Finish(seed)
	} else {
		ow := NewOggWriter(3)
		seed = ow.Packet(seed, []byte("OpusHead\x01\x01\x38\x01\x40\x1f\x00\x00\x00\x00\x00"), 0)
		seed = ow.Page(seed, 0)
		seed = ow.Packet(seed, []byte("OpusTags\x00\x00\x00\x00\x00\x00\x00\x00"), 0)
		seed = ow.Page(seed, 0)
		seed = ow.Packet(seed, []byte{0xf8, 1, 2}, 48312)
		seed = ow.Page(seed, OggEOS)
	}
	f.Add(seed, int64(500))
	f.Add(seed, int64(0))
	f.Add(seed[:100], int64(20))
	f.Fuzz(func(t *testing.T, data []byte, skipMS int64) {
		var out bytes.Buffer
		err := CutOggOpus(&out, bytes.NewReader(data), time.Duration(skipMS%100000)*time.Millisecond)
		if err != nil {
			if !errors.Is(err, ErrOgg) {
				t.Fatalf("error %v does not wrap ErrOgg", err)
			}
			return
		}
		r := NewOggReader(bytes.NewReader(out.Bytes()), 0)
		for {
			if _, err := r.Next(); errors.Is(err, io.EOF) {
				return
			} else if err != nil {
				t.Fatalf("output does not read back: %v", err)
			}
		}
	})
}
