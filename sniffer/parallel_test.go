package sniffer

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/spool"
)

// replayOutput is everything a replay produces that must not depend on the
// number of workers.
type replayOutput struct {
	cdrs, regs, active []string // JSON, call references zeroed (they are random)
	stats              string
	spoolStats         string
	files              map[string][]byte // spool files by path
}

func cdrJSON(t *testing.T, c call.CDR) string {
	c.CallRef = 0
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// How a test replay reads the capture: each takes another way through the
// parallel path.
const (
	fromMemory = "memory" // a plain Source: Run on the caller's goroutine, datagrams copied to the workers
	fromFile   = "file"   // a pcap stream (capture.Chunked): read into chunks the workers' batches pin
	fromLive   = "live"   // a live Source: a reader goroutine decodes, workers point into its batches
	// a Source handing out frames in batches of 7 to 56 (capture.Batcher):
	// one worker reads their calls ahead (HandleFrames)
	fromBatches = "batches"
)

// liveFrames is frames read as a live source.
type liveFrames struct{ frameSource }

func (*liveFrames) Stats() (capture.LiveStats, error) { return capture.LiveStats{}, nil }

// source returns frames i to end of f, read as how says.
func source(t *testing.T, f *frames, i, end int, how string) capture.Source {
	t.Helper()
	switch how {
	case fromLive:
		return &liveFrames{frameSource{f: f, i: i, end: end}}
	case fromBatches:
		return &batchSource{frameSource{f: f, i: i, end: end}}
	case fromFile:
		var buf bytes.Buffer
		w := pcapgo.NewWriterNanos(&buf)
		if err := w.WriteFileHeader(1<<18, f.link); err != nil {
			t.Fatal(err)
		}
		for j := i; j < end; j++ {
			ci := gopacket.CaptureInfo{Timestamp: f.ts[j], CaptureLength: len(f.data[j]), Length: len(f.data[j])}
			if err := w.WritePacket(ci, f.data[j]); err != nil {
				t.Fatal(err)
			}
		}
		src, err := capture.NewReader(iotest.OneByteReader(&buf)) // the reader's first buffer holds no frames: all go to chunks
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	return &frameSource{f: f, i: i, end: end}
}

// replayWith replays f with n workers into a spool (SIP and RTP pcaps, the
// RTP ones compressed, WAVs), taking listcalls half way.
func replayWith(t *testing.T, f *frames, ports string, workers int, how string) replayOutput {
	t.Helper()
	ps, err := ParsePorts(ports)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sp, err := spool.New(spool.Config{Dir: dir, SaveSIP: true, SaveRTP: spool.RTPFull, SaveRTCP: true, SaveAudio: "wav",
		ZipRTP: 1, WaitForDisk: true, Location: time.UTC, IOWorkers: 2})
	if err != nil {
		t.Fatal(err)
	}
	go sp.Run(t.Context())
	var out replayOutput
	sn := New(Config{SIPPorts: ps, Media: sp, SIPHook: sp.SIP, Workers: workers, Call: call.Config{
		IdleTimeout: -1,
		OnCallEnd: func(c *call.CDR) {
			out.cdrs = append(out.cdrs, cdrJSON(t, *c))
			sp.CallEnded(c)
		},
		OnRegister: func(r *call.Register) {
			b, _ := json.Marshal(r)
			out.regs = append(out.regs, string(b))
		},
	}})
	half := len(f.data) / 2
	ctx := t.Context()
	if err := sn.Run(ctx, source(t, f, 0, half, how), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range sn.ActiveCalls() {
		out.active = append(out.active, cdrJSON(t, c))
	}
	if err := sn.Run(ctx, source(t, f, half, len(f.data), how), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	sn.Flush()
	if err := sp.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := sn.Stats()
	out.stats = fmt.Sprintf("%+v", st)
	ss := sp.Stats()
	out.spoolStats = fmt.Sprintf("%d %d %d %d %d", ss.SIPPackets, ss.RTPPackets, ss.RTCPPackets, ss.OtherPackets, ss.UnknownCall)
	out.files = map[string][]byte{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out.files[strings.TrimPrefix(p, dir)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if g, w := got[i], want[i]; g != w {
			at := 0
			for at < min(len(g), len(w)) && g[at] == w[at] {
				at++
			}
			lo := max(at-60, 0)
			t.Errorf("%s %d differs at byte %d:\n got …%s\nwant …%s", what, i, at, g[lo:min(at+60, len(g))], w[lo:min(at+60, len(w))])
			return
		}
	}
}

// checkWorkers replays f with 1, 2 and 4 workers, read each way (one
// worker reads a pcap stream or batches ahead, HandleFrames), and compares
// with one worker handling frame by frame every output byte: CDRs with their RTP statistics, REGISTERs,
// listcalls half way, the packet path's counters and every spool file.
// Chunks are small here, so a capture fills many and the workers' batches
// run out of them.
func checkWorkers(t *testing.T, f *frames, ports string) {
	defer func(n, a int) { chunkBytes, aheadFrom = n, a }(chunkBytes, aheadFrom)
	chunkBytes, aheadFrom = 4<<10, 0 // read ahead whatever the number of calls
	want := replayWith(t, f, ports, 1, fromMemory)
	if len(want.cdrs)+len(want.regs) == 0 {
		t.Fatal("the capture gave neither calls nor REGISTERs")
	}
	for _, w := range []struct {
		n   int
		how string
	}{{1, fromFile}, {1, fromBatches}, {2, fromMemory}, {2, fromFile}, {2, fromLive}, {4, fromFile}, {4, fromLive}} {
		n := fmt.Sprintf("%d workers, %s", w.n, w.how)
		got := replayWith(t, f, ports, w.n, w.how)
		sameLines(t, n+": CDR", got.cdrs, want.cdrs)
		sameLines(t, n+": REGISTER", got.regs, want.regs)
		sameLines(t, n+": listcalls", got.active, want.active)
		if got.stats != want.stats {
			t.Errorf("%s: stats\n got %s\nwant %s", n, got.stats, want.stats)
		}
		if got.spoolStats != want.spoolStats {
			t.Errorf("%s: spool stats %s, want %s", n, got.spoolStats, want.spoolStats)
		}
		if len(got.files) != len(want.files) {
			t.Errorf("%s: %d spool files, want %d", n, len(got.files), len(want.files))
		}
		for name, b := range want.files {
			if !bytes.Equal(got.files[name], b) {
				t.Errorf("%s: spool file %s differs (%d bytes, want %d)", n, name, len(got.files[name]), len(b))
			}
		}
	}
}

// TestWorkersSameOutput: replayed with 2 or 4 media workers, or with one
// reading ahead, every capture gives byte for byte what it gives
// single-threaded one frame at a time.
func TestWorkersSameOutput(t *testing.T) {
	for _, c := range repoCaptures(t) {
		t.Run(filepath.Base(c.path), func(t *testing.T) { checkWorkers(t, fileFrames(t, c.path), c.ports) })
	}
	generated := []simulate.Options{
		{Calls: 40, Concurrency: 30, Duration: 6 * time.Second, CPS: 20, Codec: simulate.CodecMixed, Loss: 1, Jitter: 5 * time.Millisecond, Seed: 3},
		{Calls: 12, Concurrency: 12, Duration: 4 * time.Second, Transport: simulate.TransportTCP, MTU: 600, Seed: 4},
	}
	for _, o := range generated {
		t.Run(fmt.Sprintf("generated-%d-calls-%s", o.Calls, cmp.Or(o.Transport, "udp")), func(t *testing.T) {
			g, err := simulate.New(o)
			if err != nil {
				t.Fatal(err)
			}
			checkWorkers(t, loadFrames(t, g.ReadPacketData, g.LinkType()), "5060")
		})
	}
	// SIP found by its content only (no SIP port configured): the readers
	// tell the packet path which datagrams begin as SIP.
	t.Run("generated-sip-by-content", func(t *testing.T) {
		g, err := simulate.New(generated[0])
		if err != nil {
			t.Fatal(err)
		}
		checkWorkers(t, loadFrames(t, g.ReadPacketData, g.LinkType()), "5999")
	})
	t.Run("shared", func(t *testing.T) {
		for _, c := range sharedCaptures(t) {
			t.Run(filepath.Base(c.path), func(t *testing.T) { checkWorkers(t, fileFrames(t, c.path), c.ports) })
		}
	})
}
