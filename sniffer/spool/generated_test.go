package spool_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/spool"
)

// generate returns every frame of a simulation and its truth.
func generate(t testing.TB, o simulate.Options) ([]pkt, *simulate.Truth) {
	t.Helper()
	g, err := simulate.New(o)
	if err != nil {
		t.Fatal(err)
	}
	var out []pkt
	for {
		data, ci, err := g.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out, g.Truth()
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pkt{ci, data})
	}
}

func newGenerator(t testing.TB, o simulate.Options) *simulate.Generator {
	t.Helper()
	g, err := simulate.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGeneratedPause pauses a generated PCMU call (correct UDP checksums)
// for a known 3 s and checks pcap payloads, checksums and WAV.
func TestGeneratedPause(t *testing.T) {
	for _, codec := range []string{simulate.CodecPCMU, simulate.CodecPCMA} {
		t.Run(codec, func(t *testing.T) {
			o := simulate.Options{Calls: 1, Duration: 8 * time.Second, Codec: codec, Seed: 3, Jitter: 3 * time.Millisecond}
			orig, truth := generate(t, o)
			c := truth.Calls[0]
			pause := &pauseAt{callID: c.CallID, from: c.Connect.Add(2 * time.Second), to: c.Connect.Add(5 * time.Second)}
			dir := t.TempDir()
			res := replaySource(t, newGenerator(t, o), "5060", fullConfig(dir), pause)
			if res.paused.IsZero() || res.unpaused.IsZero() {
				t.Fatalf("pause not applied")
			}
			checkPaused(t, dir, c.CallID, res, orig, true)
		})
	}
}

// countRTP counts the RTP packets per SSRC in a pcap.
func countRTP(t *testing.T, path string) map[uint32]int {
	t.Helper()
	_, pkts := readPcap(t, path)
	out := map[uint32]int{}
	for _, p := range pkts {
		u := udpPayload(t, p.data)
		var h rtp.Header
		if rtp.LooksLikeRTP(u) {
			if _, err := h.Unmarshal(u); err == nil {
				out[h.SSRC]++
			}
		}
	}
	return out
}

// TestBoundedOpenFiles runs 40 concurrent calls through a spool allowed 4
// descriptors and 1 KiB buffers: files are evicted and reopened, and every
// file still holds every packet of its call.
func TestBoundedOpenFiles(t *testing.T) {
	o := simulate.Options{Calls: 40, Concurrency: 40, CPS: 100, Duration: 2 * time.Second, Seed: 5, Loss: 1, Busy: 10}
	dir := t.TempDir()
	cfg := fullConfig(dir)
	cfg.MaxOpenFiles, cfg.BufferSize = 4, 1024
	res := replaySource(t, newGenerator(t, o), "5060", cfg, nil)
	_, truth := generate(t, o)
	st := res.stats
	if st.PeakOpenFiles > 4 || st.PeakOpenFiles == 0 {
		t.Errorf("peak open files %d, want 1..4", st.PeakOpenFiles)
	}
	if st.Evictions == 0 || st.Reopens == 0 {
		t.Errorf("no eviction/reopen with 4 descriptors for 40 calls: %+v", st)
	}
	if st.Errors != 0 || st.Calls != 0 || st.OpenFiles != 0 {
		t.Errorf("stats after close: %+v", st)
	}
	calls := map[string]time.Time{}
	for _, c := range truth.Calls {
		calls[c.CallID] = c.Start
		if _, err := os.Stat(spool.Path(dir, c.Start, time.UTC, spool.TypeSIP, spool.FBasename(c.CallID), "pcap")); err != nil {
			t.Errorf("call %s: %v", c.CallID, err)
		}
	}
	got := map[string]map[uint32]int{}
	for _, s := range truth.Streams {
		if got[s.CallID] == nil {
			got[s.CallID] = countRTP(t, spool.Path(dir, calls[s.CallID], time.UTC, spool.TypeRTP, spool.FBasename(s.CallID), "pcap"))
		}
		if n := got[s.CallID][s.SSRC]; n != s.Received() {
			t.Errorf("call %s SSRC %08x: %d packets stored, %d captured", s.CallID, s.SSRC, n, s.Received())
		}
	}
	if len(truth.Streams) < 60 {
		t.Errorf("only %d streams generated", len(truth.Streams))
	}
	var files int
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
			if strings.HasSuffix(p, ".tmp") {
				t.Errorf("temp file left: %s", p)
			}
		}
		return nil
	})
	if uint64(files) != st.Files {
		t.Errorf("%d files on disk, stats say %d", files, st.Files)
	}
}

func TestRTPModes(t *testing.T) {
	o := simulate.Options{Calls: 1, Duration: time.Second, Seed: 9}
	_, truth := generate(t, o)
	c := truth.Calls[0]
	tests := []struct {
		name    string
		mode    spool.RTPMode
		wantRTP bool
		wantCut bool
	}{
		{"full", spool.RTPFull, true, false},
		{"header", spool.RTPHeader, true, true},
		{"off", spool.RTPOff, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := spool.Config{Dir: dir, SaveRTP: tc.mode, Location: time.UTC}
			replaySource(t, newGenerator(t, o), "5060", cfg, nil)
			path := spool.Path(dir, c.Start, time.UTC, spool.TypeRTP, spool.FBasename(c.CallID), "pcap")
			if _, err := os.Stat(spool.Path(dir, c.Start, time.UTC, spool.TypeSIP, spool.FBasename(c.CallID), "pcap")); err == nil {
				t.Errorf("SIP pcap written with savesip off")
			}
			if !tc.wantRTP {
				if _, err := os.Stat(path); err == nil {
					t.Errorf("RTP pcap written with savertp off")
				}
				return
			}
			_, pkts := readPcap(t, path)
			if len(pkts) != 2*50 {
				t.Errorf("%d packets, want 100", len(pkts))
			}
			for _, p := range pkts {
				cut := p.ci.CaptureLength < p.ci.Length
				if cut != tc.wantCut {
					t.Fatalf("packet caplen %d len %d, want cut %v", p.ci.CaptureLength, p.ci.Length, tc.wantCut)
				}
				if tc.wantCut && p.ci.Length-p.ci.CaptureLength != 160 {
					t.Fatalf("cut %d bytes, want the 160-byte payload", p.ci.Length-p.ci.CaptureLength)
				}
			}
		})
	}
}

// TestSpoolModes pins issue 17 item 16: spool directories are 0750 and
// files 0640 (group-readable by the agent's group, nothing for others),
// within the process umask.
func TestSpoolModes(t *testing.T) {
	o := simulate.Options{Calls: 1, Duration: 2 * time.Second, Codec: simulate.CodecPCMU, Seed: 3}
	dir := t.TempDir()
	replaySource(t, newGenerator(t, o), "5060", fullConfig(dir), nil)
	umask := processUmask(t)
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o640)
		if d.IsDir() {
			want = 0o750
		} else {
			files++
		}
		if got := fi.Mode().Perm(); got != want&^fs.FileMode(umask) {
			t.Errorf("%s: mode %v, want %v", path, got, want&^fs.FileMode(umask))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("nothing spooled")
	}
}

// processUmask reads the umask from /proc (syscall.Umask would change it
// under the other tests' feet).
func processUmask(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Skip("no Umask line in /proc/self/status")
	return 0
}
