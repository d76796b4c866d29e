package player_test

import (
	"errors"
	"testing"
	"time"

	"pbx-agent/sniffer/audio"
	"pbx-agent/webui/player"
)

// frameAt returns a frame at rate with index 7.
func frameAt(rate int) *audio.Frame {
	f := &audio.Frame{Index: 7, Time: time.Now()}
	f.Reset(rate)
	return f
}

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rate    int
		layout  byte
		flags   byte
		wantLen int
	}{
		{"stereo", 8000, player.LayoutStereo, 0, player.FrameHeaderSize + 640},
		{"mono dropped", 8000, player.LayoutMono, player.FlagDropped, player.FrameHeaderSize + 320},
		{"G.722 stereo", 16000, player.LayoutStereo, 0, player.FrameHeaderSize + 1280},
		{"Opus stereo", 48000, player.LayoutStereo, 0, player.FrameHeaderSize + 3840},
		{"Opus mono", 48000, player.LayoutMono, 0, player.FrameHeaderSize + 1920},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := frameAt(tc.rate)
			f.Index, f.Time = 1234, time.Date(2026, 4, 14, 10, 0, 1, 250_125_000, time.UTC)
			for i := range f.Caller {
				f.Caller[i], f.Callee[i] = int16(i*100), int16(-i*50)
			}
			b := player.AppendFrame(nil, f, tc.layout, tc.flags)
			if len(b) != tc.wantLen {
				t.Fatalf("%d bytes, want %d", len(b), tc.wantLen)
			}
			h, pcm, err := player.ParseFrame(b)
			if err != nil {
				t.Fatal(err)
			}
			want := player.FrameHeader{Version: 1, Layout: tc.layout, Codec: player.CodecPCM16LE, Flags: tc.flags,
				SampleRate: uint16(tc.rate), Samples: uint16(tc.rate / 50), Seq: 1234, Capture: f.Time}
			if !h.Capture.Equal(want.Capture) {
				t.Errorf("capture %v, want %v", h.Capture, want.Capture)
			}
			h.Capture = want.Capture
			if h != want {
				t.Errorf("header %+v, want %+v", h, want)
			}
			if tc.layout == player.LayoutStereo && (pcm[4] != byte(100) || int16(uint16(pcm[6])|uint16(pcm[7])<<8) != -50) {
				t.Errorf("stereo samples % x", pcm[:8])
			}
		})
	}
}

func TestParseFrameErrors(t *testing.T) {
	good := player.AppendFrame(nil, frameAt(16000), player.LayoutStereo, 0)
	badRate := append([]byte(nil), good...)
	badRate[4]++ // 16000 → 16001 Hz with 320 samples
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short header", good[:10]},
		{"short pcm", good[:len(good)-2]},
		{"bad version", append([]byte{9}, good[1:]...)},
		{"bad layout", append([]byte{1, 3}, good[2:]...)},
		{"samples not rate/50", badRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := player.ParseFrame(tc.in); !errors.Is(err, player.ErrBadRequest) {
				t.Errorf("err %v, want ErrBadRequest", err)
			}
		})
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add(player.AppendFrame(nil, frameAt(8000), player.LayoutStereo, 0))
	f.Add(player.AppendFrame(nil, frameAt(48000), player.LayoutMono, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, pcm, err := player.ParseFrame(b)
		if err == nil && len(pcm) != int(h.Samples)*int(h.Layout)*2 {
			t.Fatalf("accepted %d PCM bytes for %+v", len(pcm), h)
		}
	})
}

func BenchmarkAppendFrame(b *testing.B) {
	f := frameAt(8000)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = player.AppendFrame(buf[:0], f, player.LayoutStereo, 0)
	}
}

func TestAppendFrameNoAlloc(t *testing.T) {
	f := frameAt(48000)
	buf := make([]byte, 0, player.FrameHeaderSize+4*audio.MaxFrameSamples)
	if n := testing.AllocsPerRun(100, func() { buf = player.AppendFrame(buf[:0], f, player.LayoutStereo, 0) }); n != 0 {
		t.Errorf("%v allocations per frame, want 0", n)
	}
}
