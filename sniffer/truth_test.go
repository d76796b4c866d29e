package sniffer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/simulate"
)

// TestAgainstGeneratorTruth runs generated traffic of every shape the
// generator makes through the whole packet path and checks each call, each
// RTP stream and each REGISTER against the generator's ground truth.
func TestAgainstGeneratorTruth(t *testing.T) {
	base := simulate.Options{Calls: 40, Concurrency: 20, Duration: 2 * time.Second, CPS: 50, Seed: 7,
		Busy: 10, Cancelled: 10, Unanswered: 10, Registers: 12, RegisterAuth: 40, RegisterForbidden: 20,
		Loss: 1, BurstRate: 0.2, Jitter: 3 * time.Millisecond, Codec: simulate.CodecMixed}
	variant := func(f func(o *simulate.Options)) simulate.Options { o := base; f(&o); return o }
	tests := []struct {
		name string
		opts simulate.Options
	}{
		{"udp ipv4", base},
		{"vlan and ipv4 fragments", variant(func(o *simulate.Options) { o.VLAN = 42; o.MTU = 400 })},
		{"tcp", variant(func(o *simulate.Options) { o.Transport = simulate.TransportTCP })},
		{"tcp coalesced and split", variant(func(o *simulate.Options) { o.Transport = simulate.TransportTCP; o.TCPCoalesce = true; o.MTU = 400 })},
		{"ipv6", variant(func(o *simulate.Options) { o.IPv6 = true })},
		{"sctp", variant(func(o *simulate.Options) { o.Transport = simulate.TransportSCTP })},
		{"sctp fragmented", variant(func(o *simulate.Options) { o.Transport = simulate.TransportSCTP; o.MTU = 400 })},
	}
	for _, e := range simulate.Encaps {
		tests = append(tests, struct {
			name string
			opts simulate.Options
		}{e, variant(func(o *simulate.Options) { o.Encap = e })})
	}
	tests = append(tests, struct {
		name string
		opts simulate.Options
	}{"erspan2 over vlan with fragments", variant(func(o *simulate.Options) { o.Encap = simulate.EncapERSPAN2; o.VLAN = 42; o.MTU = 400 })})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen, err := simulate.New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			calls := map[string]call.CDR{}
			regs := map[string]call.Register{}
			ps, _ := ParsePorts("5060")
			sn := New(Config{SIPPorts: ps, Call: call.Config{
				IdleTimeout: -1,
				OnCallEnd:   func(c *call.CDR) { calls[c.CallID] = *c },
				OnRegister:  func(r *call.Register) { regs[r.CallID] = *r },
			}})
			feedGenerator(t, sn, gen, nil)
			sn.Flush()
			truth := gen.Truth()
			if len(calls) != len(truth.Calls) {
				t.Fatalf("%d calls, truth has %d (sniffer stats %+v)", len(calls), len(truth.Calls), sn.Stats())
			}
			for _, c := range calls {
				for _, a := range simulate.TunnelAddrs {
					if c.CallerIP == a || c.CalledIP == a {
						t.Errorf("%s: the tunnel's outer address %v taken for a call party", c.CallID, a)
					}
					for _, st := range c.Streams {
						if st.Src.Addr() == a || st.Dst.Addr() == a {
							t.Errorf("%s: the tunnel's outer address %v in RTP stream %v→%v", c.CallID, a, st.Src, st.Dst)
						}
					}
				}
			}
			for _, w := range truth.Calls {
				g, ok := calls[w.CallID]
				switch {
				case !ok:
					t.Errorf("%s: missing", w.CallID)
				case g.LastSIPResponseNum != w.FinalCode || int(g.Bye) != w.Bye || string(g.WhoHanged) != w.WhoHanged:
					t.Errorf("%s: final %d bye %d whohanged %q; truth %d %d %q", w.CallID, g.LastSIPResponseNum, g.Bye, g.WhoHanged, w.FinalCode, w.Bye, w.WhoHanged)
				case g.Caller != w.Caller || g.Called != w.Called || !g.CallDate.Equal(w.Start) || !g.ConnectTime.Equal(w.Connect):
					t.Errorf("%s: %q→%q at %v (connect %v); truth %q→%q at %v (connect %v)", w.CallID, g.Caller, g.Called, g.CallDate, g.ConnectTime, w.Caller, w.Called, w.Start, w.Connect)
				}
			}
			streams, exact := 0, 0
			for _, w := range truth.Streams {
				streams++
				for _, s := range calls[w.CallID].Streams {
					if s.SSRC != w.SSRC {
						continue
					}
					if s.Received == w.Received() && s.Lost == w.Dropped && s.Payload == int(w.PT) && s.Caller == (w.Direction == 0) {
						exact++
					} else {
						t.Errorf("%s ssrc %08x: received %d lost %d pt %d caller %v; truth %d %d %d dir %d",
							w.CallID, w.SSRC, s.Received, s.Lost, s.Payload, s.Caller, w.Received(), w.Dropped, w.PT, w.Direction)
					}
				}
			}
			if exact != streams {
				t.Errorf("%d of %d streams exact", exact, streams)
			}
			for _, w := range truth.Registers {
				g, ok := regs[w.CallID]
				wantState := call.RegOK
				if w.FinalCode != 200 {
					wantState = call.RegFailed
				}
				if !ok || g.State != wantState || g.ToNum != w.User {
					t.Errorf("REGISTER %s: got %+v ok=%v; truth %+v", w.CallID, g, ok, w)
				}
				// register_failed's reason: the final response's status line.
				if wantReason := map[int]string{200: "200 OK", 403: "403 Forbidden"}[w.FinalCode]; ok && g.LastResponse != wantReason {
					t.Errorf("REGISTER %s: last response %q, want %q", w.CallID, g.LastResponse, wantReason)
				}
			}
			t.Logf("%d calls, %d/%d streams exact (received and lost), %d REGISTERs", len(calls), exact, streams, len(truth.Registers))
		})
	}
}

// TestEncapsulationsAgreeWithTshark writes the 40-call capture in every
// tunnel and mirror shape (and SIP over SCTP) and checks that tshark, the
// referee, decodes each to the generator's calls: Call-ID, final code,
// caller, called.
func TestEncapsulationsAgreeWithTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (make test installs it); skipping the referee comparison")
	}
	base := simulate.Options{Calls: 40, Concurrency: 20, Duration: 2 * time.Second, CPS: 50, Seed: 11,
		Busy: 10, Cancelled: 10, Unanswered: 10}
	shapes := map[string]simulate.Options{}
	for _, e := range simulate.Encaps {
		o := base
		o.Encap = e
		shapes[e] = o
	}
	o := base
	o.Transport, o.MTU = simulate.TransportSCTP, 500
	shapes["sctp"] = o
	for name, opts := range shapes {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name+".pcap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			truth, err := simulate.WritePcap(context.Background(), f, opts)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tsharkCalls(t, captureCase{path: path})
			if len(want) != len(truth.Calls) {
				t.Errorf("tshark finds %d calls, the generator made %d", len(want), len(truth.Calls))
			}
			for _, w := range truth.Calls {
				g := want[w.CallID]
				if g == nil || g.final != w.FinalCode || g.caller != w.Caller || g.called != w.Called {
					t.Errorf("%s: tshark %+v; truth final %d %q→%q", w.CallID, g, w.FinalCode, w.Caller, w.Called)
				}
			}
		})
	}
}

// feedGenerator runs every frame of gen through sn, calling after (when
// set) after each one.
func feedGenerator(t *testing.T, sn *Sniffer, gen *simulate.Generator, after func()) {
	t.Helper()
	for data, ci := range fixture.Packets(t, gen.ZeroCopyReadPacketData) {
		if err := sn.HandleFrame(gen.LinkType(), data, ci.Timestamp); err != nil {
			t.Fatal(err)
		}
		if after != nil {
			after()
		}
	}
}
