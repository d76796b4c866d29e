package sniffer

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/simulate"
)

// replayCDRs replays a capture file through a sniffer with cfg's
// faxdetect and workers and returns its CDRs.
func replayCDRs(t *testing.T, path string, faxDetect bool, workers int) []call.CDR {
	t.Helper()
	var mu sync.Mutex
	var cdrs []call.CDR
	ps, _ := ParsePorts("5060")
	sn := New(Config{SIPPorts: ps, FaxDetect: faxDetect, Workers: workers, Call: call.Config{IdleTimeout: -1,
		OnCallEnd: func(c *call.CDR) { mu.Lock(); cdrs = append(cdrs, *c); mu.Unlock() }}})
	if err := sn.ReplayFile(t.Context(), path, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	sn.Flush()
	mu.Lock()
	defer mu.Unlock()
	return cdrs
}

// TestFaxDetect: with faxdetect, a generated G.711 call whose caller sends
// 1100 Hz (CNG) or whose callee sends 2100 Hz (CED) is marked FaxTones,
// µ-law and A-law, with and without media workers; calls with other tones
// are not, nor any call with faxdetect off. The real Asterisk fax call
// over PCMU (spandsp's CNG and CED) is marked; its T.38 twin counts UDPTL.
func TestFaxDetect(t *testing.T) {
	gen := func(name string, tones [2]float64, codec string) string {
		return fixture.File(t, name+".pcap", func(w io.Writer) error {
			_, err := simulate.WritePcap(context.Background(), w, simulate.Options{Calls: 3, Duration: 4 * time.Second, Tones: tones, Codec: codec, Seed: 3})
			return err
		})
	}
	for _, tc := range []struct {
		name      string
		path      func() string
		faxDetect bool
		want      bool // every call marked
		udptl     bool // every call has UDPTL packets
	}{
		{"CNG pcmu", func() string { return gen("cng", [2]float64{1100, 400}, simulate.CodecPCMU) }, true, true, false},
		{"CED pcma", func() string { return gen("ced", [2]float64{400, 2100}, simulate.CodecPCMA) }, true, true, false},
		{"both off", func() string { return gen("both", [2]float64{1100, 2100}, simulate.CodecMixed) }, false, false, false},
		{"voice tones", func() string { return gen("voice", [2]float64{400, 1000}, simulate.CodecMixed) }, true, false, false},
		{"near misses", func() string { return gen("near", [2]float64{1150, 2050}, simulate.CodecPCMU) }, true, false, false},
		{"asterisk g711", func() string { return fixture.Repo(t, "testdata", "pcap", "asterisk-fax-g711.pcap") }, true, true, false},
		{"asterisk g711 off", func() string { return fixture.Repo(t, "testdata", "pcap", "asterisk-fax-g711.pcap") }, false, false, false},
		{"asterisk t38", func() string { return fixture.Repo(t, "testdata", "pcap", "asterisk-fax-t38.pcap") }, true, false, true},
	} {
		path := tc.path()
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/workers=%d", tc.name, workers), func(t *testing.T) {
				cdrs := replayCDRs(t, path, tc.faxDetect, workers)
				if len(cdrs) == 0 {
					t.Fatal("no CDRs")
				}
				for _, c := range cdrs {
					if c.FaxTones != tc.want || (c.FaxPackets > 0) != tc.udptl {
						t.Errorf("%s: FaxTones %v, %d UDPTL packets; want %v, UDPTL %v", c.CallID, c.FaxTones, c.FaxPackets, tc.want, tc.udptl)
					}
				}
			})
		}
	}
}

// ulaw encodes a 16-bit sample as the µ-law code that decodes nearest.
func ulaw(x float64) byte {
	best, bestD := byte(0), math.Inf(1)
	for b := range 256 {
		if d := math.Abs(float64(rtp.ULawToLinear(byte(b))) - x); d < bestD {
			best, bestD = byte(b), d
		}
	}
	return best
}

// TestFaxTonesTracker: the media tracker's rules around the detector — a
// tone marks the call, a later SDP (any media line, as VoIPmonitor resets
// its fax kind) clears the mark until a tone comes again, a comfort-noise
// packet restarts the stream's detector, a dynamic payload type is G.711
// by its rtpmap, and with faxdetect off no stream has a detector.
func TestFaxTonesTracker(t *testing.T) {
	var tone [160]byte // 20 ms of 2100 Hz at -10 dBm0: 42 whole periods
	for i := range tone {
		tone[i] = ulaw(22700 * math.Pow(10, -0.5) * math.Sin(2*math.Pi*2100*float64(i)/8000))
	}
	src := netip.MustParseAddrPort("10.0.0.1:4000")
	dst := netip.MustParseAddrPort("10.0.0.2:5000")
	const ref = 1
	t0 := time.Unix(1700000000, 0)
	seq := 0
	send := func(t *testing.T, m *mediaTracker, state *any, pt uint8, n int) {
		for range n {
			pkt := make([]byte, 12+len(tone))
			pkt[0], pkt[1] = 0x80, pt
			binary.BigEndian.PutUint16(pkt[2:], uint16(seq))
			binary.BigEndian.PutUint32(pkt[4:], uint32(seq*160))
			binary.BigEndian.PutUint32(pkt[8:], 0x1234)
			copy(pkt[12:], tone[:])
			if pt == rtp.PTCN {
				pkt = pkt[:13]
			}
			p := &decode.Packet{Time: t0.Add(time.Duration(seq) * 20 * time.Millisecond), Src: src, Dst: dst, Transport: decode.UDP, Payload: pkt}
			md := call.Media{Packet: p, Ref: ref, Party: call.PartyCallee, ToParty: true, State: state}
			md.Classify()
			m.HandleMedia(&md)
			seq++
		}
	}
	audio := announced{addr: dst, maps: []rtpMap{{0, rtp.CodecPCMU}, {96, rtp.CodecPCMU}, {13, rtp.CodecCN}}}
	marked := func(m *mediaTracker) bool { return m.calls[ref].faxTones }
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, m *mediaTracker, state *any) bool
		want bool
	}{
		{"CED", func(t *testing.T, m *mediaTracker, state *any) bool { send(t, m, state, 0, 120); return marked(m) }, true},
		{"CED on rtpmap 96", func(t *testing.T, m *mediaTracker, state *any) bool { send(t, m, state, 96, 120); return marked(m) }, true},
		{"SDP after CED", func(t *testing.T, m *mediaTracker, state *any) bool {
			send(t, m, state, 0, 120)
			m.announce(ref, audio) // a re-INVITE
			return marked(m)
		}, false},
		{"CED again after SDP", func(t *testing.T, m *mediaTracker, state *any) bool {
			send(t, m, state, 0, 120)
			m.announce(ref, audio)
			send(t, m, state, 13, 1) // the run ends
			send(t, m, state, 0, 120)
			return marked(m)
		}, true},
		{"comfort noise restarts", func(t *testing.T, m *mediaTracker, state *any) bool {
			send(t, m, state, 0, 100)
			send(t, m, state, 13, 1)
			send(t, m, state, 0, 100)
			return marked(m)
		}, false},
	} {
		for _, on := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/faxdetect=%v", tc.name, on), func(t *testing.T) {
				m := newMediaTracker(nil, streamOptions{faxDetect: on})
				m.announce(ref, audio)
				var state any
				if got := tc.run(t, m, &state); got != (tc.want && on) {
					t.Errorf("marked %v, want %v", got, tc.want && on)
				}
				for _, s := range m.calls[ref].streams {
					if (s.fax != nil) != on {
						t.Errorf("stream of PT %d: detector %v with faxdetect %v", s.pt, s.fax != nil, on)
					}
				}
				if got := m.summaries(ref, true).faxTones; got != (tc.want && on) {
					t.Errorf("summaries: faxTones %v", got)
				}
			})
		}
	}
}
