package webui

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"pbx-agent/internal/callpcap"
	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/codec"
)

// pcapSpool serves one generated call's SIP and RTP pcaps for every CDR,
// and no AUDIO file (saveaudio = no): recordings are rendered from RTP.
type pcapSpool struct{ callpcap.Files }

func (p *pcapSpool) Open(_ context.Context, f SpoolFile) (io.ReadCloser, error) {
	switch f.Kind {
	case KindSIP:
		return os.Open(p.SIP)
	case KindRTP:
		return os.Open(p.RTP)
	}
	return nil, fs.ErrNotExist
}

// getRecording asks getVoiceRecording for CDR 1 as user and writes the
// answer to a file.
func getRecording(t *testing.T, e *testEnv, user, params string) (int, http.Header, string) {
	t.Helper()
	path := "/php/api.php?task=getVoiceRecording&user=" + user + "&password=" + user + "pw&params=" + url.QueryEscape(params)
	st, b, h := e.do(t, "GET", path, "")
	out := filepath.Join(t.TempDir(), "rec")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return st, h, out
}

// TestVoiceRecordingCodecs: with saveaudio off, getVoiceRecording renders
// a G.722, an Opus and a GSM call from their RTP pcaps: WAV at the
// codec's native rate, and Ogg/Opus with the ogg parameter (seed 001),
// each with the caller's 700 Hz left and the callee's 1300 Hz right
// (≥ 30 dB; the Ogg decoded by ffmpeg); a user without can_download_audio
// gets 403 for either.
func TestVoiceRecordingCodecs(t *testing.T) {
	sp := &pcapSpool{}
	e := newEnv(t, func(o *Options) {
		o.Spool = sp
		all := CanCDR | CanPlayAudio | CanDownloadAudio | CanPCAP
		o.Users = []User{{Name: "admin", Secret: "adminpw", Rights: all}, {Name: "noaudio", Secret: "noaudiopw", Rights: all &^ CanDownloadAudio}}
	})
	if !codec.Built {
		// Without libopus: WAV of a G.711 call, a clear 503 for Ogg.
		sp.Files = callpcap.Write(t, t.TempDir(), callpcap.Call{Codec: codec.PCMU, PT: 0, Duration: time.Second})
		st, _, _ := getRecording(t, e, "admin", `{"cdrId":1}`)
		st2, _, path := getRecording(t, e, "admin", `{"cdrId":1,"ogg":true}`)
		b, _ := os.ReadFile(path)
		if st != 200 || st2 != 503 || !strings.Contains(string(b), "libopus") {
			t.Errorf("WAV %d, Ogg %d %s; want 200, 503 naming libopus", st, st2, b)
		}
		return
	}
	for _, c := range []struct {
		name string
		pt   uint8
		rate int
	}{{codec.G722, 9, 16000}, {codec.Opus, 111, 48000}, {codec.GSM, 3, 8000}} {
		t.Run(c.name, func(t *testing.T) {
			sp.Files = callpcap.Write(t, t.TempDir(), callpcap.Call{Codec: c.name, PT: c.pt, Duration: 2 * time.Second})
			for _, ogg := range []bool{false, true} {
				params := fmt.Sprintf(`{"cdrId":1,"ogg":%v}`, ogg)
				if st, _, _ := getRecording(t, e, "noaudio", params); st != 403 {
					t.Errorf("ogg %v without can_download_audio: %d, want 403", ogg, st)
				}
				st, h, path := getRecording(t, e, "admin", params)
				if st != 200 {
					b, _ := os.ReadFile(path)
					t.Fatalf("ogg %v: %d %s", ogg, st, b)
				}
				var pcm []int16
				var rate int
				if ogg {
					if h.Get("Content-Type") != "audio/ogg" {
						t.Errorf("Content-Type %q", h.Get("Content-Type"))
					}
					pcm, _ = tone.FFmpeg(t, path, c.rate, 2)
					rate = c.rate
				} else {
					b, _ := os.ReadFile(path)
					if h.Get("Content-Type") != "audio/x-wav" || len(b) < 44 || h.Get("Content-Length") != fmt.Sprint(len(b)) {
						t.Fatalf("Content-Type %q, Content-Length %q, %d bytes", h.Get("Content-Type"), h.Get("Content-Length"), len(b))
					}
					rate = int(binary.LittleEndian.Uint32(b[24:]))
					for i := 44; i+1 < len(b); i += 2 {
						pcm = append(pcm, int16(binary.LittleEndian.Uint16(b[i:])))
					}
				}
				l, r := tone.Split(pcm)
				left, right := tone.Over(l[rate/5:], float64(rate), 700, 1300), tone.Over(r[rate/5:], float64(rate), 1300, 700)
				t.Logf("%s ogg=%v: %d Hz, %.2f s, left 700 Hz %.1f dB over 1300 Hz, right 1300 Hz %.1f dB over 700 Hz",
					c.name, ogg, rate, float64(len(l))/float64(rate), left, right)
				if rate != c.rate || left < 30 || right < 30 {
					t.Errorf("%d Hz (want %d), separation %.1f / %.1f dB (want ≥ 30)", rate, c.rate, left, right)
				}
			}
		})
	}
}

// TestVoiceRecordingLongCallHeap: a 10-minute G.722 call rendered from
// its RTP pcap through getVoiceRecording, as WAV (38 MB) and as Ogg,
// while the heap stays under 16 MiB: the answer is streamed from the
// decoder, never held.
func TestVoiceRecordingLongCallHeap(t *testing.T) {
	if testing.Short() || !codec.Built {
		t.Skip("long call; needs the G.722 decoder")
	}
	sp := &pcapSpool{}
	e := newEnv(t, func(o *Options) { o.Spool = sp })
	const minutes = 10
	sp.Files = callpcap.Write(t, t.TempDir(), callpcap.Call{Codec: codec.G722, PT: 9, Duration: minutes * time.Minute})
	for _, ogg := range []bool{false, true} {
		runtime.GC()
		r := httptest.NewRequest("GET", "/php/api.php?task=getVoiceRecording&user=admin&password=adminpw&params="+
			url.QueryEscape(fmt.Sprintf(`{"cdrId":1,"ogg":%v}`, ogg)), nil)
		w := &heapResponse{discardResponse: discardResponse{h: http.Header{}}}
		e.h.ServeHTTP(w, r)
		t.Logf("FIGURE ogg=%v: %d bytes of a %d-minute G.722 call, peak heap %.1f MiB", ogg, w.n, minutes, float64(w.peak)/(1<<20))
		if w.status != 200 || (!ogg && w.n != 44+minutes*60*16000*4) || w.n < 1<<20 {
			t.Fatalf("status %d, %d bytes", w.status, w.n)
		}
		if w.peak > 16<<20 {
			t.Errorf("peak heap %.1f MiB while answering, want ≤ 16", float64(w.peak)/(1<<20))
		}
	}
}

// heapResponse samples the heap every 256 writes.
type heapResponse struct {
	discardResponse
	writes int
	peak   uint64
}

func (h *heapResponse) Write(p []byte) (int, error) {
	if h.writes++; h.writes%256 == 1 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
	}
	return h.discardResponse.Write(p)
}
