package sniffer

import (
	"errors"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/simulate"
)

// TestCodecIDOfGeneratedCalls: a generated call in each codec ends with
// both streams numbered as VoIPmonitor numbers them (the id its CDRs and
// listcalls carry): a dynamic payload type by its SDP rtpmap name and
// rate, a static one by itself. Without cgo only G.711 is generated.
func TestCodecIDOfGeneratedCalls(t *testing.T) {
	want := map[string]int{
		simulate.CodecPCMU: rtp.VMPCMU, simulate.CodecPCMA: rtp.VMPCMA, simulate.CodecG722: rtp.VMG722,
		simulate.CodecGSM: rtp.VMGSM, simulate.CodecG729: rtp.VMG729, simulate.CodecOpus: rtp.VMOpus + 5,
		simulate.CodecG726: rtp.VMG72616 + 2, simulate.CodecG723: rtp.VMG723, simulate.CodecSpeex: rtp.VMSpeex,
		simulate.CodecSpeexWB: rtp.VMSpeex, simulate.CodecILBC: rtp.VMILBC,
	}
	for name, id := range want {
		t.Run(name, func(t *testing.T) {
			gen, err := simulate.New(simulate.Options{Calls: 1, Duration: time.Second, Codec: name})
			if errors.Is(err, codec.ErrUnsupported) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			var cdr *call.CDR
			ps, _ := ParsePorts("5060")
			sn := New(Config{SIPPorts: ps, Call: call.Config{IdleTimeout: -1, OnCallEnd: func(c *call.CDR) { cp := *c; cdr = &cp }}})
			feedGenerator(t, sn, gen, nil)
			sn.Flush()
			if cdr == nil || len(cdr.Streams) != 2 {
				t.Fatalf("CDR %+v", cdr)
			}
			for _, s := range cdr.Streams {
				if got := s.CodecID(); got != id {
					t.Errorf("stream pt %d %q/%d: id %d (%s), want %d (%s)", s.Payload, s.Codec, s.ClockRate, got, rtp.VMCodecName(got), id, rtp.VMCodecName(id))
				}
			}
		})
	}
	if len(want) != len(simulate.Codecs)-1 { // all but "mixed"
		t.Errorf("%d codecs checked, the generator has %d", len(want), len(simulate.Codecs)-1)
	}
}
