package spool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/sip"
	"pbx-agent/sniffer/spool"
)

// onePacket returns a decoded RTP packet of a generated call (in codec,
// "" for PCMU) and the INVITE that starts it.
func onePacket(tb testing.TB, codec string) (invite, media decode.Packet, msg sip.Message) {
	tb.Helper()
	g := newGenerator(tb, simulate.Options{Calls: 1, Duration: time.Second, Codec: codec})
	d, err := decode.New(layers.LinkTypeEthernet)
	if err != nil {
		tb.Fatal(err)
	}
	for invite.Frame == nil || media.Frame == nil {
		data, ci, err := g.ReadPacketData()
		if err != nil {
			tb.Fatal(err)
		}
		var p decode.Packet
		if ok, _ := d.Decode(data, ci.Timestamp, &p); !ok {
			continue
		}
		p.Frame, p.Link = data, layers.LinkTypeEthernet
		if p.Dst.Port() == 5060 && invite.Frame == nil {
			if _, err := sip.Parse(p.Payload, &msg); err != nil {
				tb.Fatal(err)
			}
			invite = p
		} else if p.Src.Port() != 5060 && p.Dst.Port() != 5060 {
			media = p
		}
	}
	return invite, media, msg
}

// spoolPackets drives one spool with a call of n RTP packets per round,
// ending and restarting the call each round (files created, completed,
// renamed), packets 20 ms apart.
type spoolDriver struct {
	sp      *spool.Spool
	invite  decode.Packet
	media   decode.Packet
	msg     sip.Message
	ref     uint64
	perCall int
	n       int
	paused  bool
	md      call.Media
}

// handMedia hands p to sp as the sniffer does: matched to ref on its
// destination (the callee's address), classified once, through md.
func handMedia(sp *spool.Spool, md *call.Media, p *decode.Packet, ref uint64, paused bool) {
	*md = call.Media{Packet: p, Ref: ref, Party: call.PartyCallee, ToParty: true, Paused: paused}
	md.Classify()
	sp.HandleMedia(md)
}

func newDriver(tb testing.TB, cfg spool.Config, paused bool) *spoolDriver {
	return newDriverFS(tb, cfg, paused, nil, "")
}

// newDriverFS is newDriver over a file system of the test's (nil = the
// operating system's) with a call in codec ("" for PCMU).
func newDriverFS(tb testing.TB, cfg spool.Config, paused bool, fsys spool.FS, codec string) *spoolDriver {
	dr := &spoolDriver{perCall: 3000, paused: paused}
	dr.invite, dr.media, dr.msg = onePacket(tb, codec)
	var sp *spool.Spool
	var err error
	if fsys == nil {
		sp, err = spool.New(cfg)
	} else {
		sp, err = spool.NewWithFS(cfg, fsys)
	}
	if err != nil {
		tb.Fatal(err)
	}
	spool.Start(tb, sp)
	dr.sp = sp
	dr.start()
	return dr
}

func (dr *spoolDriver) start() {
	dr.ref++
	dr.sp.SIP(&dr.msg, call.Meta{Time: dr.media.Time}, dr.ref, &dr.invite)
}

func (dr *spoolDriver) packet() {
	dr.media.Time = dr.media.Time.Add(10 * time.Millisecond)
	handMedia(dr.sp, &dr.md, &dr.media, dr.ref, dr.paused)
	dr.n++
	if dr.n%dr.perCall == 0 {
		dr.sp.CallEnded(&call.CDR{CallID: string(dr.msg.CallID), CallRef: dr.ref})
		dr.start()
	}
}

// BenchmarkSpoolPacket is the spool's cost per RTP packet on the packet
// goroutine: pcap record into the call's buffer (handed to the I/O
// goroutine every 16 KiB), WAV decode, a new call every 3,000 packets.
// The queue may hold 1 GiB here, so that no packet is dropped (a drop
// costs less than a copy) although the benchmark outruns the disk.
// "slowfs" runs the same over a disk whose file creations take 50 ms: the
// packet path must not notice.
func BenchmarkSpoolPacket(b *testing.B) {
	for _, tc := range []struct {
		name   string
		cfg    spool.Config
		paused bool
		fs     spool.FS
	}{
		{"rtp", spool.Config{SaveRTP: spool.RTPFull}, false, nil},
		{"rtp+wav", spool.Config{SaveRTP: spool.RTPFull, SaveAudio: "wav"}, false, nil},
		{"rtp+wav/paused", spool.Config{SaveRTP: spool.RTPFull, SaveAudio: "wav"}, true, nil},
		{"header", spool.Config{SaveRTP: spool.RTPHeader}, false, nil},
		{"rtp+wav/slowfs", spool.Config{SaveRTP: spool.RTPFull, SaveAudio: "wav"}, false, &gateFS{sleep: 50 * time.Millisecond}},
		// maxpoolsize of 4 MiB: the cleaner removes a call's minute about
		// every 20 calls.
		{"rtp+wav+pool", spool.Config{SaveRTP: spool.RTPFull, SaveAudio: "wav", Pool: spool.PoolLimits{Size: 4 << 20}}, false, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tc.cfg.Dir, tc.cfg.MaxQueued = b.TempDir(), 1<<30
			dr := newDriverFS(b, tc.cfg, tc.paused, tc.fs, "")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dr.packet()
			}
			b.StopTimer()
			st := dr.sp.Stats()
			if err := dr.sp.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.DroppedRTP+st.DroppedAudio)/float64(b.N), "drops/op")
			if tc.cfg.Pool.Size > 0 {
				b.ReportMetric(float64(st.CleanedFiles), "cleaned-files")
			}
		})
	}
}

// TestSpoolPacketNoAlloc: storing an RTP packet (pcap and WAV, paused or
// not, buffer flushes included) allocates nothing in steady state, nor does
// a G.723.1 packet decoded with nobody listening (saveaudio off: such calls
// are decoded from their first packet, see codec.NeedsHistory).
func TestSpoolPacketNoAlloc(t *testing.T) {
	for _, tc := range []struct {
		codec, saveAudio string
		paused           bool
	}{{"", "wav", false}, {"", "wav", true}, {simulate.CodecG723, "no", false}} {
		if tc.codec != "" && !codec.Built {
			continue
		}
		// With a cleaner (limits far away): its index costs the packet
		// path nothing either.
		dr := newDriverFS(t, spool.Config{Dir: t.TempDir(), SaveRTP: spool.RTPFull, SaveAudio: tc.saveAudio,
			Pool: spool.PoolLimits{Size: 1 << 40}}, tc.paused, nil, tc.codec)
		dr.perCall = 1 << 30
		for i := 0; i < 500; i++ { // files created, buffers allocated
			dr.packet()
		}
		if a := testing.AllocsPerRun(2000, dr.packet); a != 0 {
			t.Errorf("%+v: %v allocations per packet, want 0", tc, a)
		}
		if st, ok := dr.sp.AudioStats(dr.ref); tc.codec != "" && (!ok || st.Packets == 0) {
			t.Errorf("%+v: not decoded before anybody listens (%v, %+v)", tc, ok, st)
		}
		if err := dr.sp.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// benchCalls is the generated load: $PBX_SPOOL_BENCH_SECONDS of media per
// call (default 10; the figure uses 60).
func benchCalls(b *testing.B) (string, simulate.Options) {
	secs := 10
	if s := os.Getenv("PBX_SPOOL_BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		secs = n
	}
	o := simulate.Options{Calls: 1000, Concurrency: 1000, CPS: 1000, Duration: time.Duration(secs) * time.Second, Seed: 1}
	path := filepath.Join(b.TempDir(), "calls.pcap")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := simulate.WritePcap(context.Background(), f, o); err != nil {
		b.Fatal(err)
	}
	return path, o
}

// Benchmark1000Calls replays 1,000 concurrent generated calls through the
// sniffer, with the spool off and on (SIP+RTP pcaps, WAV), and reports
// packets/s, the most descriptors open, disk bytes and the heap held per
// active call (sampled when all 1,000 are up). One op = the whole capture.
func Benchmark1000Calls(b *testing.B) {
	path, o := benchCalls(b)
	for _, tc := range []struct {
		name string
		cfg  *spool.Config
	}{
		{"spool=off", nil},
		{"spool=pcap", &spool.Config{SaveSIP: true, SaveRTP: spool.RTPFull, SaveRTCP: true}},
		// Compressed (pcap_dump_zip: SIP level 6, RTP level 1), as the daemon
		// writes by default, with one I/O goroutine per core.
		{"spool=pcap.gz", &spool.Config{SaveSIP: true, SaveRTP: spool.RTPFull, SaveRTCP: true, ZipSIP: 6, ZipRTP: 1, IOWorkers: 2, WaitForDisk: true}},
		{"spool=pcap/fds=1024", &spool.Config{SaveSIP: true, SaveRTP: spool.RTPFull, SaveRTCP: true, MaxOpenFiles: 1024}},
		{"spool=pcap+wav", &spool.Config{SaveSIP: true, SaveRTP: spool.RTPFull, SaveRTCP: true, SaveAudio: "wav"}},
		// As a capture-file replay should run: waiting for the disk, not dropping.
		{"spool=pcap+wav/wait", &spool.Config{SaveSIP: true, SaveRTP: spool.RTPFull, SaveRTCP: true, SaveAudio: "wav", WaitForDisk: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var packets int
			var st spool.Stats
			var perCall float64
			var lat latencies
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := b.TempDir()
				b.StartTimer()
				n, s, pc := replayBench(b, path, dir, tc.cfg, o, &lat)
				packets += n
				st, perCall = s, pc
			}
			// The machine is shared: CPU time (user+sys) per packet is the
			// steadier figure; packets/s is wall clock.
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(packets), "cpu-ns/packet")
			b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
			b.ReportMetric(float64(st.PeakOpenFiles), "peak-open-files")
			b.ReportMetric(float64(st.Reopens), "reopens")
			b.ReportMetric(float64(st.Bytes)/1e6, "MB-written")
			b.ReportMetric(perCall, "heap-B/active-call")
			lat.report(b)
			b.ReportMetric(float64(st.DroppedSIP+st.DroppedRTP+st.DroppedRTCP+st.DroppedOther), "dropped-packets")
			b.ReportMetric(float64(st.PeakQueued)/(1<<20), "peak-queued-MiB")
		})
	}
}

// latencies records how long the packet goroutine spent on each frame
// (sniffer.HandleFrame, spool hooks included): a disk write or file
// creation on the packet path shows as a stall there.
type latencies struct {
	ns      []int32
	cpu     time.Duration // CPU time (user+sys) of the packet goroutine's thread
	packets int
}

func (l *latencies) report(b *testing.B) {
	if len(l.ns) == 0 {
		return
	}
	slices.Sort(l.ns)
	var sum int64
	for _, v := range l.ns {
		sum += int64(v)
	}
	b.ReportMetric(float64(sum)/float64(len(l.ns)), "path-ns/packet")
	b.ReportMetric(float64(l.ns[len(l.ns)*999/1000])/1e3, "p99.9-path-µs")
	b.ReportMetric(float64(l.ns[len(l.ns)-1])/1e6, "max-path-ms")
	var over int
	for _, v := range l.ns {
		if v > 1e6 {
			over++
		}
	}
	b.ReportMetric(float64(over), "stalls>1ms")
	if l.packets > 0 {
		b.ReportMetric(float64(l.cpu)/float64(l.packets), "path-cpu-ns/packet")
	}
}

func replayBench(b *testing.B, path, dir string, cfg *spool.Config, o simulate.Options, lat *latencies) (int, spool.Stats, float64) {
	if lat.ns == nil {
		lat.ns = make([]int32, 0, 4<<20)
	}
	src, err := capture.OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ps, _ := sniffer.ParsePorts("5060")
	var sn *sniffer.Sniffer
	var sp *spool.Spool
	scfg := sniffer.Config{SIPPorts: ps, Call: call.Config{IdleTimeout: -1}}
	if cfg != nil {
		c := *cfg
		c.Dir = dir
		if sp, err = spool.New(c); err != nil {
			b.Fatal(err)
		}
		spool.Start(b, sp)
		scfg.Media, scfg.SIPHook, scfg.Call.OnCallEnd = sp, sp.SIP, sp.CallEnded
	}
	sn = sniffer.New(scfg)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// All calls are up 1 s after the first INVITE (1,000 calls/s) and talk
	// for the whole Duration: sample the heap half-way.
	var sampleAt time.Time
	var perCall float64
	n := 0
	// The packet goroutine alone on its thread: the thread's CPU time is
	// the packet path's, whatever else runs (I/O goroutines, other
	// processes on a shared machine).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := cputime.Thread()
	for {
		data, ci, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if sampleAt.IsZero() {
			sampleAt = ci.Timestamp.Add(2*time.Second + o.Duration/2)
		} else if perCall == 0 && ci.Timestamp.After(sampleAt) {
			b.StopTimer()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			active := len(sn.Table().Active())
			if active > 0 {
				perCall = (float64(m.HeapAlloc) - float64(before.HeapAlloc)) / float64(active)
			}
			b.StartTimer()
		}
		t0 := time.Now()
		err = sn.HandleFrame(src.LinkType(), data, ci.Timestamp)
		lat.ns = append(lat.ns, int32(min(time.Since(t0), time.Second)))
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	sn.Flush()
	lat.cpu += cputime.Thread() - cpu0
	lat.packets += n
	var st spool.Stats
	if sp != nil {
		if err := sp.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		st = sp.Stats()
		if st.Files == 0 {
			b.Fatal(fmt.Errorf("no file written"))
		}
	}
	return n, st, perCall
}

// BenchmarkSpoolCalls is the spool's packet side as the daemon's media
// workers drive it: RTP of 300 calls at once, handed over in runs of 64
// (HandleMediaBatch), each packet of another call than the one before, so
// each lands in a buffer the packet side has not touched for a while;
// RTP pcaps compressed (64 KiB buffers). cpu-ns/packet is the handing
// goroutine's thread only (the I/O goroutines compress on others): about
// 200 ns here, most of it waiting for the writes into the calls' buffers
// to reach memory (reading the next packets' buffer lines ahead of writing
// them saved about a tenth of that, too little to keep).
func BenchmarkSpoolCalls(b *testing.B) {
	const calls, run = 300, 64
	invite, media, msg := onePacket(b, "")
	// One shard: a media worker takes its own shard's lock once per run.
	sp, err := spool.New(spool.Config{Dir: b.TempDir(), SaveRTP: spool.RTPFull, ZipRTP: 1, IOWorkers: 2, WaitForDisk: true, Shards: 1})
	if err != nil {
		b.Fatal(err)
	}
	spool.Start(b, sp)
	for ref := uint64(1); ref <= calls; ref++ {
		m := msg
		m.CallID = fmt.Appendf(nil, "bench-%d", ref) // a file of its own
		sp.SIP(&m, call.Meta{Time: media.Time}, ref, &invite)
	}
	ms := make([]call.Media, run)
	pkts := make([]decode.Packet, run)
	ref := uint64(0)
	batch := func() {
		for i := range ms {
			media.Time = media.Time.Add(time.Millisecond / 15) // 300 calls × 50 packets/s
			pkts[i] = media
			ref = ref%calls + 1
			ms[i] = call.Media{Packet: &pkts[i], Ref: ref, Party: call.PartyCallee, ToParty: true}
			ms[i].Classify()
		}
		sp.HandleMediaBatch(ms)
	}
	for range 2 * calls * 300 / run { // every call's first buffers
		batch()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := cputime.Thread()
	n := 0
	for b.Loop() {
		batch()
		n += run
	}
	b.ReportMetric(float64(cputime.Thread()-cpu0)/float64(n), "cpu-ns/packet")
	if err := sp.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if st := sp.Stats(); st.DroppedRTP != 0 || st.RTPPackets == 0 {
		b.Fatalf("stats %+v", st)
	}
}
