package sniffer

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/hep"
	"pbx-agent/sniffer/simulate"
)

// hepBesideCapture runs f through a sniffer with the given workers, one in
// four RTP datagrams coming as HEP (HandleHEP between the capture's frames,
// as a listener does while the capture is busy). It returns the CDRs, the
// batches handed to the workers and the CPU time of the run.
func hepBesideCapture(t *testing.T, f *frames, workers int) (cdrs []string, stats string, batches uint64, cpu time.Duration) {
	t.Helper()
	ps, _ := ParsePorts("5060")
	sn := New(Config{SIPPorts: ps, Workers: workers, HEP: HEPInput{Enabled: true}, Call: call.Config{IdleTimeout: -1,
		OnCallEnd: func(c *call.CDR) { cdrs = append(cdrs, cdrJSON(t, *c)) }}})
	dec, _ := decode.New(f.link)
	var p decode.Packet
	var buf []byte
	start := cputime.Process()
	if workers > 1 {
		sn.startPipeline(readerDepth(workers))
	}
	for i := range f.data {
		ok, _ := dec.Decode(f.data[i], f.ts[i], &p)
		if ok && i%4 == 0 && p.Transport == decode.UDP && !ps.Has(p.Src.Port()) && !ps.Has(p.Dst.Port()) {
			hp := hep.Packet{Src: p.Src, Dst: p.Dst, IPProto: hep.IPProtoUDP, ProtoType: hep.ProtoRTP, Payload: p.Payload}
			hp.SetTime(f.ts[i])
			buf, _ = hep.AppendMarshal(buf[:0], &hp)
			sn.HandleHEP(buf, f.ts[i])
			continue
		}
		if err := sn.HandleFrame(f.link, f.data[i], f.ts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if sn.pipe != nil {
		for _, w := range sn.pipe.workers {
			batches += w.in.seq
		}
		sn.stopPipeline()
	}
	sn.Flush()
	cpu = cputime.Process() - start
	sn.publish()
	return cdrs, fmt.Sprintf("%+v", sn.Stats()), batches, cpu
}

// TestHEPBesideCaptureBatches: HEP handled while the capture is busy
// leaves the workers' batches filling (a flush per HEP packet handed them
// a batch of a few events each time); outputs are the same with one and
// two workers.
func TestHEPBesideCaptureBatches(t *testing.T) {
	g, err := simulate.New(simulate.Options{Calls: 60, Concurrency: 60, Duration: 20 * time.Second, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	f := loadFrames(t, g.ReadPacketData, g.LinkType())
	want, wantStats, _, cpu1 := hepBesideCapture(t, f, 1)
	got, gotStats, batches, cpu2 := hepBesideCapture(t, f, 2)
	sameLines(t, "CDR", got, want)
	if gotStats != wantStats {
		t.Errorf("stats\n got %s\nwant %s", gotStats, wantStats)
	}
	t.Logf("%d frames, a quarter of the RTP as HEP: %d batches to 2 workers; CPU %v (1 worker %v)", len(f.data), batches, cpu2, cpu1)
	// Full batches but for the last of each worker (it was one per HEP
	// packet: 57,937 batches of about two events here).
	if limit := uint64(len(f.data)/batchEvents + 2); batches > limit {
		t.Errorf("%d batches handed to the workers, want at most %d", batches, limit)
	}
}

// stalledLive is a live source that reads its frames, then has none until
// release is closed (an idle interface), then ends.
type stalledLive struct {
	frameSource
	release chan struct{}
}

func (s *stalledLive) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	if s.i >= s.end {
		<-s.release
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	return s.frameSource.ReadPacket()
}

func (*stalledLive) Stats() (capture.LiveStats, error) { return capture.LiveStats{}, nil }

// TestHEPWhileCaptureIdle: with the capture idle, a lone HEP packet's RTP
// is passed to its call's worker by HandleHEP itself (else it would wait
// for the packet path's next wake-up, up to stealMax).
func TestHEPWhileCaptureIdle(t *testing.T) {
	g, err := simulate.New(simulate.Options{Calls: 1, Duration: 5 * time.Second, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	f := loadFrames(t, g.ReadPacketData, g.LinkType())
	ps, _ := ParsePorts("5060")
	dec, _ := decode.New(f.link)
	var p decode.Packet
	firstRTP := -1
	for i := range f.data { // the call's set-up goes by the capture, its first RTP by HEP
		if ok, _ := dec.Decode(f.data[i], f.ts[i], &p); ok && !ps.Has(p.Src.Port()) && !ps.Has(p.Dst.Port()) {
			firstRTP = i
			break
		}
	}
	if firstRTP < 0 {
		t.Fatal("no RTP in the generated capture")
	}
	hp := hep.Packet{Src: p.Src, Dst: p.Dst, IPProto: hep.IPProtoUDP, ProtoType: hep.ProtoRTP, Payload: p.Payload}
	hp.SetTime(f.ts[firstRTP])
	b, err := hep.AppendMarshal(nil, &hp)
	if err != nil {
		t.Fatal(err)
	}
	sn := New(Config{SIPPorts: ps, Workers: 2, HEP: HEPInput{Enabled: true, Concurrent: true}, Call: call.Config{IdleTimeout: -1}})
	src := &stalledLive{frameSource{f: f, end: firstRTP}, make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- sn.Run(t.Context(), src, RunOptions{}) }()
	defer func() {
		close(src.release)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(sn.Table().Active()) == 0 || !sn.isWaiting() {
		if time.Now().After(deadline) {
			t.Fatal("the capture's call set-up was not handled")
		}
		time.Sleep(time.Millisecond)
	}
	sn.HandleHEP(b, time.Now())
	sn.lock()
	for i, w := range sn.pipe.workers {
		if w.in.cur != nil {
			t.Errorf("worker %d: the HEP packet's batch was left to the packet path's next wake-up", i)
		}
	}
	sn.unlock()
	for {
		if a := sn.ActiveCalls(); len(a) == 1 && len(a[0].Streams) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the HEP packet's RTP never reached its worker")
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *Sniffer) isWaiting() bool {
	s.lock()
	defer s.unlock()
	return s.waiting
}
