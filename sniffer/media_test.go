package sniffer

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"
	"unsafe"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/spool"
)

// TestMediaPathNoAlloc: an RTP packet of a known call — decode, the one
// call-table lookup, the header parsed once, stream statistics with the
// three jitter-buffer simulators, the spool's packet side — allocates
// nothing, single-threaded and with media workers (the hand-off to the
// call's worker through its ring included; each measured run hands 256
// packets over and waits until the workers handled them); faxdetect: with
// every G.711 packet through the fax tone detector too. run=…: the
// whole parallel Run of a source read each way (parallel_test.go): copied
// to the workers, read into chunks they pin, or decoded by a reader whose
// batches they point into.
func TestMediaPathNoAlloc(t *testing.T) {
	defer func(a int) { aheadFrom = a }(aheadFrom)
	aheadFrom = 0 // reading ahead too
	for _, workers := range []int{1, 2} {
		for _, graph := range []bool{false, true} { // savegraph: the quality per second too
			t.Run(fmt.Sprintf("workers=%d/savegraph=%v", workers, graph), func(t *testing.T) { mediaPathAllocs(t, workers, pathOpts{graph: graph}) })
		}
		// faxdetect: every G.711 packet through the fax tone detector too
		t.Run(fmt.Sprintf("workers=%d/faxdetect", workers), func(t *testing.T) { mediaPathAllocs(t, workers, pathOpts{faxDetect: true}) })
	}
	for _, how := range []string{fromMemory, fromFile, fromLive} {
		t.Run("workers=2/run="+how, func(t *testing.T) { mediaRunAllocs(t, how) })
	}
}

// mediaPathSniffer returns a sniffer with a spool through the set-up and
// the first seconds of RTP of a generated capture (streams started), the
// capture and the index of its next frame.
func mediaPathSniffer(t *testing.T, calls, workers int, o pathOpts) (*Sniffer, *frames, int) {
	g, err := simulate.New(simulate.Options{Calls: calls, Concurrency: calls, Duration: 30 * time.Second, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	f := loadFrames(t, g.ReadPacketData, g.LinkType())
	sp, err := spool.New(spool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sp.Run(t.Context()) }()
	t.Cleanup(func() { sp.Close(context.Background()) })
	ps, _ := ParsePorts("5060")
	sn := New(Config{SIPPorts: ps, Media: sp, SIPHook: sp.SIP, Workers: workers, SaveGraph: o.graph, FaxDetect: o.faxDetect, Call: call.Config{IdleTimeout: -1, OnCallEnd: sp.CallEnded}})
	i := 0
	for ; i < len(f.data) && f.ts[i].Sub(f.ts[0]) < 5*time.Second; i++ {
		if err := sn.HandleFrame(f.link, f.data[i], f.ts[i]); err != nil {
			t.Fatal(err)
		}
	}
	return sn, f, i
}

// pathOpts are the options of the media path measured.
type pathOpts struct{ graph, faxDetect bool }

func mediaPathAllocs(t *testing.T, workers int, o pathOpts) {
	sn, f, i := mediaPathSniffer(t, 2, workers, o)
	// In batches, as a file replay hands them over (HandleFrames, reading
	// ahead); with workers, batches the size of the workers' hand-off.
	per := 16
	if workers > 1 {
		per = 256
		sn.startPipeline(readerDepth(workers))
		defer sn.stopPipeline()
	}
	batch := make([]Frame, 0, per)
	media := sn.Stats().Media
	// The runtime itself allocates now and then when the hand-off parks a
	// goroutine (a waiter record for a channel or a contended mutex, when
	// its caches ran dry after a collection or a move to another core): a
	// once-in-a-while cost of the scheduler, seen under load in CI (a few
	// in 768 packets, once). An allocation of the packet path shows in every
	// attempt: the best of three counts.
	var tries []float64
	for range 3 {
		allocs := testing.AllocsPerRun(1000/per, func() {
			batch = batch[:0]
			for range per {
				batch = append(batch, Frame{f.data[i], f.ts[i]})
				i++
			}
			_ = sn.HandleFrames(f.link, batch)
			if sn.pipe != nil {
				sn.drainPipeline()
			}
		}) / float64(per)
		if tries = append(tries, allocs); allocs == 0 || workers == 1 {
			break
		}
	}
	sn.Tick(f.ts[i].Add(time.Second))
	if got := sn.Stats().Media - media; got < 900 {
		t.Fatalf("only %d media packets in the measured run", got)
	}
	if slices.Min(tries) != 0 {
		t.Errorf("%v allocations per RTP packet in each attempt, want 0", tries)
	}
}

// mediaRunAllocs: a Run's own set-up (goroutines, rings, batches) is the
// same for a short and a long run of RTP, so the difference of their
// allocations is the packets'. The runtime's waiter records (as above) add
// one or two now and then; an allocation per packet, or per batch of
// packets, adds at least one per batch (batchEvents) in every attempt.
func mediaRunAllocs(t *testing.T, how string) {
	defer func(n int) { chunkBytes = n }(chunkBytes)
	chunkBytes = 16 << 10
	sn, f, i := mediaPathSniffer(t, 12, 2, pathOpts{})
	const short, long = 256, 256 + 4096
	run := func(n int) int64 {
		src := source(t, f, i, i+n, how)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		if err := sn.Run(t.Context(), src, RunOptions{}); err != nil {
			t.Fatal(err)
		}
		i += n
		runtime.ReadMemStats(&ms)
		return int64(ms.Mallocs - before)
	}
	if i+3*short+4*long > len(f.data) {
		t.Fatalf("capture too short: %d frames", len(f.data))
	}
	media := sn.Stats().Media
	// No collection while measuring: one empties the runtime's caches of
	// waiter records, which then allocates a few as goroutines park, until
	// a run as long as the measured one filled them again.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	run(long)
	const most = (long - short) / batchEvents
	var tries []int64
	for range 3 {
		d := run(long) - run(short)
		if tries = append(tries, d); d < most {
			break
		}
	}
	if got := sn.Stats().Media - media; got < 3*long/2 {
		t.Fatalf("only %d media packets in the measured runs", got)
	}
	if slices.Min(tries) >= most {
		t.Errorf("%v more allocations in a Run of %d more RTP packets, in each attempt; want none per packet (< %d)", tries, long-short, most)
	}
}

// TestStreamFootprint pins the per-stream memory behind "≤ 8 KiB per active
// call": a stream with its statistics and the three jitter-buffer
// simulators is one allocation of the runtime's 2,688-byte size class (two
// per call). It is full: the runtime puts an 8-byte header before an
// object of over 512 bytes with pointers, so the struct may take 2,680
// bytes (faxdetect's 28 took it to 2,688 and every stream into the 3,072
// class: +768 bytes a call); faxdetect's state (rtp.FaxTones) is behind a
// pointer, allocated per G.711 stream only when faxdetect is on.
func TestStreamFootprint(t *testing.T) {
	const n = 1000
	keep := make([]*mediaStream, n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range keep {
		keep[i] = new(mediaStream)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 2688 {
		t.Errorf("a mediaStream (%d bytes) takes %d bytes of heap, want ≤ 2,688 (the 2,688-byte size class)", unsafe.Sizeof(mediaStream{}), per)
	}
	runtime.KeepAlive(keep)
}

// TestMediaLockReleased: the packet path holds the call table (and,
// single-threaded, the media tracker) over a batch's media datagrams, and
// never past the batch: while the capture waits for frames half way,
// listcalls, a lookup and a pause get the table at once, and after the
// run nothing is held.
func TestMediaLockReleased(t *testing.T) {
	g, err := simulate.New(simulate.Options{Calls: 10, Concurrency: 10, Duration: 3 * time.Second, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	f := loadFrames(t, g.ReadPacketData, g.LinkType())
	ps, _ := ParsePorts("5060")
	for _, w := range []struct {
		n   int
		how string
	}{{1, fromBatches}, {1, fromMemory}, {2, fromMemory}, {2, fromLive}} {
		t.Run(fmt.Sprintf("workers=%d/%s", w.n, w.how), func(t *testing.T) {
			sn := New(Config{SIPPorts: ps, Workers: w.n, Call: call.Config{IdleTimeout: -1}})
			src := source(t, f, 0, len(f.data), w.how)
			var fs *frameSource
			switch s := src.(type) {
			case *frameSource:
				fs = s
			case *batchSource:
				fs = &s.frameSource
			case *liveFrames:
				fs = &s.frameSource
			}
			waiting, resume := make(chan struct{}), make(chan struct{})
			fs.pauseAt = len(f.data) / 2
			fs.pause = func() { close(waiting); <-resume }
			done := make(chan error, 1)
			go func() { done <- sn.Run(t.Context(), src, RunOptions{}) }()
			select {
			case <-waiting:
			case err := <-done:
				t.Fatalf("the run ended before half way: %v", err)
			}
			// Once the packet path got to the frames before the pause (a
			// pipeline takes a live reader's partly filled batch after a
			// moment), listcalls finds calls, and a pause and a lookup go
			// through.
			readers := make(chan struct{})
			go func() {
				defer close(readers)
				calls := sn.ActiveCalls()
				for ; len(calls) == 0; calls = sn.ActiveCalls() {
					time.Sleep(time.Millisecond)
				}
				if err := sn.Table().SetPaused(calls[0].CallRef, true); err != nil {
					t.Errorf("SetPaused: %v", err)
				}
				if _, ok := sn.Lookup(calls[0].CallRef); !ok {
					t.Error("Lookup: the call half way is not found")
				}
			}()
			select {
			case <-readers:
			case <-time.After(20 * time.Second):
				close(resume)
				t.Fatal("listcalls still waits for the call table while the capture waits for frames")
			}
			close(resume)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if sn.held || sn.heldMedia != nil {
				t.Errorf("after the run: table held %v, tracker held %v", sn.held, sn.heldMedia != nil)
			}
			sn.Flush()
		})
	}
}
