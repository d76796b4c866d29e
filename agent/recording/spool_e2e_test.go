package recording

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/spool"
)

type edge struct {
	first, last  time.Time
	n, refSilent int
	callerSends  bool
}

// callerPort is the RTP port the caller of each leg sends from (the SDP
// offers of the fixture: 1001's phone; Asterisk for the B leg).
var callerPort = map[string]uint16{callIDA: 20000, callIDB: 10014}

// spoolRun is one replay of the answered call into a real spool.
type spoolRun struct {
	dir                 string
	cdrs                map[string]*call.CDR // by Call-ID
	pausedAt, resumedAt time.Time            // the call table's clock at pause/unpause
}

// replayIntoSpool replays asterisk-call-answered.pcap through the sniffer
// with the spool hooked in as agent/daemon.go does (Media, SIPHook, the
// table's Paused). With pause, the orchestrator (AMI through the fake
// Asterisk) pauses the conversation when the packet clock reaches t1 and
// resumes it at t2.
func replayIntoSpool(t *testing.T, pause bool, t1, t2 time.Time) spoolRun {
	t.Helper()
	run := spoolRun{dir: t.TempDir(), cdrs: map[string]*call.CDR{}}
	var sn *sniffer.Sniffer
	sp, err := spool.New(spool.Config{Dir: run.dir, SaveSIP: true, SaveRTP: spool.RTPFull, SaveRTCP: true,
		SaveAudio: "wav", AudioDelay: 40 * time.Millisecond, Location: time.UTC, WaitForDisk: true})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sp.Run(t.Context()) }() // returns once Close below has written everything out
	sn = sniffer.New(sniffer.Config{Media: sp, SIPHook: sp.SIP, Call: call.Config{IdleTimeout: -1, OnCallEnd: func(c *call.CDR) {
		sp.CallEnded(c)
		run.cdrs[c.CallID] = c
	}}})
	var orch *Orchestrator
	if pause {
		srv := fakeAsterisk(t, true)
		client, _ := startAMI(t, srv, &wire{})
		orch = New(Config{Calls: sn.Table(), AMI: client, Channels: client.Tracker()})
	}
	src, err := capture.OpenFile(fixture.Repo(t, "testdata", "pcap", "asterisk-call-answered.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var last time.Time
	toggle := func(on bool) {
		sn.Tick(last)
		ref, _ := sn.Table().LookupCallID(callIDA)
		if res, err := orch.Pause(context.Background(), ref, on); err != nil {
			t.Fatalf("pause %v: %v (%s)", on, err, res.Summary())
		} else if res.Count("sniffer", "") != 2 {
			t.Fatalf("pause %v: %s", on, res.Summary())
		}
	}
	for data, ci := range fixture.Packets(t, src.ReadPacket) {
		ts := ci.Timestamp
		if pause && run.pausedAt.IsZero() && !ts.Before(t1) {
			toggle(true)
			run.pausedAt = last
		}
		if pause && run.resumedAt.IsZero() && !run.pausedAt.IsZero() && !ts.Before(t2) {
			toggle(false)
			run.resumedAt = last
		}
		if err := sn.HandleFrame(src.LinkType(), data, ts); err != nil {
			t.Fatal(err)
		}
		last = ts
	}
	sn.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sp.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := sp.Stats(); st.DroppedRTP+st.DroppedAudio+st.Errors != 0 {
		t.Fatalf("spool lost data: %+v", st)
	}
	return run
}

// spoolFile finds the one file of a call of that type.
func (r spoolRun) spoolFile(t *testing.T, callID, typ, ext string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(r.dir, "*", "*", "*", typ, spool.FBasename(callID)+"."+ext))
	if err != nil || len(m) != 1 {
		t.Fatalf("%s %s: files %v (%v)", callID, typ, m, err)
	}
	return m[0]
}

// rtpPkt is one stored RTP packet.
type rtpPkt struct {
	t       time.Time
	stream  string // src → dst ssrc
	src     uint16 // source port
	hdr     rtp.Header
	payload []byte
}

// readRTP reads the RTP packets (RTCP and others skipped) of a spool pcap.
func readRTP(t *testing.T, path string) []rtpPkt {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []rtpPkt
	for data, ci := range fixture.Packets(t, src.ReadPacket) {
		pkt := gopacket.NewPacket(data, src.LinkType(), gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip == nil || udp == nil || rtp.LooksLikeRTCP(udp.Payload) || !rtp.LooksLikeRTP(udp.Payload) {
			continue
		}
		p := rtpPkt{t: ci.Timestamp}
		n, err := p.hdr.Unmarshal(udp.Payload)
		if err != nil {
			continue
		}
		p.payload = p.hdr.Payload(udp.Payload, n)
		s, _ := netip.AddrFromSlice(ip.SrcIP.To4())
		d, _ := netip.AddrFromSlice(ip.DstIP.To4())
		p.src = uint16(udp.SrcPort)
		p.stream = fmt.Sprintf("%v → %v ssrc %#x", netip.AddrPortFrom(s, uint16(udp.SrcPort)), netip.AddrPortFrom(d, uint16(udp.DstPort)), p.hdr.SSRC)
		out = append(out, p)
	}
	return out
}

func silent(p []byte) bool {
	for _, b := range p {
		if b != 0xff { // µ-law silence (the call is PCMU only)
			return false
		}
	}
	return len(p) > 0
}

// readWAV returns a stereo WAV's channels (caller, callee).
func readWAV(t *testing.T, path string) (left, right []int16) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[:4]) != "RIFF" || binary.LittleEndian.Uint16(b[22:]) != 2 || binary.LittleEndian.Uint32(b[24:]) != 8000 {
		t.Fatalf("%s: not an 8 kHz stereo WAV", path)
	}
	pcm := b[44:]
	for i := 0; i+3 < len(pcm); i += 4 {
		left = append(left, int16(binary.LittleEndian.Uint16(pcm[i:])))
		right = append(right, int16(binary.LittleEndian.Uint16(pcm[i+2:])))
	}
	return left, right
}

// TestEndToEndSpoolSilence is issue 10's figure: the answered two-leg call
// through Asterisk replayed into the real spool, paused through the
// orchestrator (sniffer + MixMonitorMute + PauseMonitor on the fake AMI) at
// t1 and resumed at t2. For both legs, against a replay without pause:
//   - RTP pcap: every packet stored with the packet clock inside the paused
//     interval has a µ-law silence payload (headers, sequence, timing
//     intact); every packet outside it is byte-identical to the reference;
//   - WAV: both channels are exact zeros over the interval and
//     sample-identical to the reference outside it; the edges of the
//     silenced stretch are within one packet (20 ms) of the interval's.
func TestEndToEndSpoolSilence(t *testing.T) {
	t1 := time.Unix(1795560343, 500_000_000) // answered at ≈340.46, BYE at ≈349.47
	t2 := time.Unix(1795560346, 500_000_000)
	ref := replayIntoSpool(t, false, t1, t2)
	run := replayIntoSpool(t, true, t1, t2)
	const packet = 20 * time.Millisecond

	for _, id := range []string{callIDA, callIDB} {
		c := run.cdrs[id]
		if c == nil || len(c.Paused) != 1 || !c.Paused[0].Start.Equal(run.pausedAt) || !c.Paused[0].End.Equal(run.resumedAt) {
			t.Fatalf("%s: CDR paused intervals %+v, want [%v, %v]", id, c, run.pausedAt, run.resumedAt)
		}
		start, end := run.pausedAt, run.resumedAt

		// RTP pcap, packet by packet against the reference.
		got, want := readRTP(t, run.spoolFile(t, id, spool.TypeRTP, "pcap")), readRTP(t, ref.spoolFile(t, id, spool.TypeRTP, "pcap"))
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%s: %d RTP packets stored, reference %d", id, len(got), len(want))
		}
		streams := map[string]*edge{}
		var order []string
		bad := 0
		for i := range got {
			g, w := got[i], want[i]
			if !g.t.Equal(w.t) || g.stream != w.stream || g.hdr.SequenceNumber != w.hdr.SequenceNumber || g.hdr.Timestamp != w.hdr.Timestamp || len(g.payload) != len(w.payload) {
				t.Fatalf("%s packet %d: %v %s seq %d differs from the reference %v %s seq %d", id, i, g.t, g.stream, g.hdr.SequenceNumber, w.t, w.stream, w.hdr.SequenceNumber)
			}
			inside := g.t.After(start) && !g.t.After(end)
			changed := string(g.payload) != string(w.payload)
			e := streams[g.stream]
			if e == nil {
				e = &edge{callerSends: g.src == callerPort[id]}
				streams[g.stream] = e
				order = append(order, g.stream)
			}
			if silent(g.payload) && (changed || inside) {
				if e.first.IsZero() {
					e.first = g.t
				}
				e.last = g.t
				e.n++
				if silent(w.payload) {
					e.refSilent++
				}
			}
			switch {
			case inside && !silent(g.payload):
				bad++
				t.Errorf("%s %s: packet at %v inside the paused interval is not silence", id, g.stream, g.t)
			case !inside && changed:
				bad++
				t.Errorf("%s %s: packet at %v outside the paused interval was changed", id, g.stream, g.t)
			}
		}
		for _, s := range order {
			e := streams[s]
			if e.n == 0 {
				t.Errorf("%s %s: no silenced packet", id, s)
				continue
			}
			d1, d2 := e.first.Sub(start), end.Sub(e.last)
			if d1 <= 0 || d1 > packet+packet/2 || d2 < 0 || d2 > packet+packet/2 {
				t.Errorf("%s %s: silenced %v..%v, interval (%v, %v]: edges off by %v / %v", id, s, e.first, e.last, start, end, d1, d2)
			}
			t.Logf("%s RTP %s: %d packets silenced (%d were silence already), first %.1f ms after the pause, last %.1f ms before the unpause",
				id, s, e.n, e.refSilent, ms(d1), ms(d2))
		}
		if bad != 0 {
			t.Errorf("%s: %d RTP packets on the wrong side of the interval", id, bad)
		}

		// WAV, sample by sample against the reference; sample 0 is the
		// call's first RTP packet (the decoder's origin).
		t0 := got[0].t
		gl, gr := readWAV(t, run.spoolFile(t, id, spool.TypeAudio, "wav"))
		wl, wr := readWAV(t, ref.spoolFile(t, id, spool.TypeAudio, "wav"))
		pos := func(x time.Time) int { return int(x.Sub(t0) / (time.Second / 8000)) }
		p1, p2 := pos(start), pos(end)
		for ch, pair := range [][2][]int16{{gl, wl}, {gr, wr}} {
			name := []string{"caller", "callee"}[ch]
			g, w := pair[0], pair[1]
			if len(g) != len(w) || len(g) < p2 {
				t.Fatalf("%s %s: WAV %d samples, reference %d, interval ends at %d", id, name, len(g), len(w), p2)
			}
			first, last, energy := -1, -1, 0.0
			for i := range g {
				if g[i] != w[i] {
					if first < 0 {
						first = i
					}
					last = i
				}
			}
			for i := p1; i < p2; i++ {
				energy += float64(w[i]) * float64(w[i])
			}
			if first < 0 || energy == 0 {
				t.Fatalf("%s %s: the pause changed nothing (reference energy %.0f)", id, name, energy)
			}
			for i := first; i <= last; i++ {
				if g[i] != 0 {
					t.Fatalf("%s %s: sample %d inside the changed stretch is %d", id, name, i, g[i])
				}
			}
			// The edges against the interval: the first packet sent after
			// the pause arrives up to one packet later, and the decoder
			// places a packet's audio at its arrival (anchor) time.
			e1, e2 := first-p1, (last+1)-p2
			if e1 < 0 || e1 > 160+40 || e2 < 0 || e2 > 160+40 {
				t.Errorf("%s %s: WAV silenced samples %d..%d, interval %d..%d: edges off by %d / %d samples", id, name, first, last+1, p1, p2, e1, e2)
			}
			// The edges against the silenced packets of that direction on
			// the wire (pcap): within one packet.
			var dir *edge
			for _, e := range streams {
				if e.callerSends == (ch == 0) {
					dir = e
				}
			}
			w1, w2 := first-pos(dir.first), (last+1)-pos(dir.last.Add(packet))
			if w1 < -160 || w1 > 160 || w2 < -160 || w2 > 160 {
				t.Errorf("%s %s: WAV silenced samples %d..%d, silenced packets %v..%v: off by %d / %d samples", id, name, first, last+1, dir.first, dir.last, w1, w2)
			}
			if n, want := last+1-first, p2-p1; n < want-160 || n > want+160 {
				t.Errorf("%s %s: %d samples silenced, interval %d", id, name, n, want)
			}
			t.Logf("%s WAV %s: %.4f s of exact zeros at %.4f..%.4f s of the file; paused interval %.4f..%.4f s: edges %+.1f / %+.1f ms; "+
				"against the silenced packets of that direction %+.1f / %+.1f ms; elsewhere identical to the unpaused replay (%d samples)",
				id, name, float64(last+1-first)/8000, float64(first)/8000, float64(last+1)/8000, float64(p1)/8000, float64(p2)/8000,
				float64(e1)/8, float64(e2)/8, float64(w1)/8, float64(w2)/8, len(g)-(last+1-first))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
