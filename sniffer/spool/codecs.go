package spool

import (
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/sdp"
	"pbx-agent/sniffer/sip"
)

// dynamicPTs are a call's dynamic payload types (96–127) named by its SDP
// rtpmaps (111 → "opus"), kept so that audio started later (a listener's
// Subscribe) decodes them too.
type dynamicPTs [32]string

// noteSDP records the dynamic payload types of m's SDP body on c and hands
// them to c's audio.
func (s *shard) noteSDP(c *callSpool, m *sip.Message) {
	body := sip.SDPBody(m)
	if len(body) == 0 {
		return
	}
	if s.sdp == nil {
		s.sdp = new(sdp.Session)
	}
	ss := s.sdp
	if sdp.Parse(body, ss) != nil {
		return
	}
	for i := 0; i < ss.NMedia; i++ {
		md := &ss.Media[i]
		if !md.Audio() {
			continue
		}
		for j := 0; j < md.NRTPMap; j++ {
			r := &md.RTPMap[j]
			if r.PT < 96 || r.PT > 127 {
				continue
			}
			if name := codec.SDPName(string(r.Encoding), r.ClockRate); c.dynamic[r.PT-96] != name {
				c.dynamic[r.PT-96] = name
				bit := uint32(1) << (r.PT - 96)
				if c.history &^= bit; codec.NeedsHistory(name) {
					c.history |= bit
				}
				if c.audio != nil {
					c.audio.MapPayloadType(r.PT, name)
				}
			}
		}
	}
}

// mapDynamic names c's known dynamic payload types on a.
func (c *callSpool) mapDynamic(a *audio.Call) {
	for i, name := range c.dynamic {
		if name != "" {
			a.MapPayloadType(uint8(96+i), name)
		}
	}
}

// staticHistory marks the static payload types whose codec decodes only
// from a stream's first packet (codec.NeedsHistory), so the packet path
// tests a bit rather than comparing names.
var staticHistory = func() (h [96]bool) {
	for pt := range h {
		h[pt] = codec.NeedsHistory(codec.StaticName(uint8(pt)))
	}
	return h
}()

// needsHistory is codec.NeedsHistory of payload type pt's codec in c.
func (c *callSpool) needsHistory(pt uint8) bool {
	if pt >= 96 {
		return pt <= 127 && c.history&(1<<(pt-96)) != 0
	}
	return staticHistory[pt]
}
