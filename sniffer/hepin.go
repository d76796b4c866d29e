package sniffer

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/hep"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sip"
)

// HEPInput configures HEP input (VoIPmonitor's hep, hep_bind_port): SIP,
// RTP and RTCP reports that Asterisk (res_hep) or a capture agent sends as
// HEP join the same call table as sniffed packets, with the HEP timestamp
// as their time.
type HEPInput struct {
	Enabled bool
	// Port is the HEP port: UDP datagrams to it found in a capture are
	// decoded as HEP (default 9060).
	Port uint16
	// Password, when set, must equal the packets' auth key chunk.
	Password string
	// UseSystemTime takes the arrival time (capture time in a file) as the
	// packet time instead of the HEP timestamp (VoIPmonitor's
	// hep_use_system_time), for senders with a wrong clock.
	UseSystemTime bool
	// Concurrent says HandleHEP is called from other goroutines (network
	// listeners) than the capture's: the packet path then takes a lock.
	Concurrent bool
}

// HEPOutput receives every SIP message and RTCP report the sniffer sees,
// as a HEP packet to forward (HOMER). Send must not block; the packet and
// its slices are valid only during the call.
type HEPOutput interface {
	Send(p *hep.Packet) bool
}

// HEPStats counts HEP input.
type HEPStats struct {
	Packets    uint64 // HEP packets decoded and accepted
	Errors     uint64 // undecodable HEP (truncated, bad chunk lengths, ...)
	AuthFailed uint64 // wrong or missing capture password
	Duplicates uint64 // SIP messages seen on the wire and by HEP, counted once
	RTCPJSON   uint64 // RTCP reports (JSON) applied
	Ignored    uint64 // payload types not used (logs, other protocols)
	TimeAhead  uint64 // timestamps more than hepMaxAhead past their arrival, replaced by it
}

// hepMaxAhead is how far a HEP timestamp may be ahead of the packet's
// arrival (a sender's clock off by that much). The packet time drives the
// call table's clock, which never goes back: one packet stamped in 2106
// ended every call as idle and stopped the clock there, so no call ever
// timed out again and the table filled to MaxCalls. A later timestamp is
// replaced by the arrival time and counted.
const hepMaxAhead = 10 * time.Second

// HandleHEP runs one HEP packet (a datagram, or one frame of a HEP TCP
// stream) through the packet path; recv is its arrival time, used when the
// packet has no timestamp. Bad HEP is counted and dropped.
func (s *Sniffer) HandleHEP(b []byte, recv time.Time) {
	s.lock()
	defer s.unlock()
	s.handleHEP(b, recv)
	if s.pipe != nil && s.waiting {
		// The capture is idle: nothing would pass this packet's events on.
		// While it is busy they go with its batches, passed on when full or
		// as soon as it waits (a flush per HEP packet handed the workers a
		// batch of a few events each time).
		s.flushWorkers()
	}
}

func (s *Sniffer) handleHEP(b []byte, recv time.Time) {
	hp := &s.hepIn
	if err := hp.Unmarshal(b); err != nil {
		s.stats.HEP.Errors++
		s.log.Debug("bad HEP packet", "err", err)
		return
	}
	if s.cfg.HEP.Password != "" && !bytes.Equal(bytes.TrimRight(hp.AuthKey, "\x00"), s.hepPass) {
		s.stats.HEP.AuthFailed++
		return
	}
	s.stats.HEP.Packets++
	p := &s.hepPkt
	*p = decode.Packet{Time: hp.Time(), Src: hp.Src, Dst: hp.Dst, Transport: decode.UDP, Payload: hp.Payload, VLAN: hp.VLAN}
	switch {
	case hp.TimeSec == 0 || s.cfg.HEP.UseSystemTime:
		p.Time = recv.UTC()
	case p.Time.Sub(recv) > hepMaxAhead:
		s.stats.HEP.TimeAhead++
		p.Time = recv.UTC()
	}
	if hp.IPProto == hep.IPProtoTCP {
		p.Transport = decode.TCP
	}
	if s.ignoredIPv6(p) { // ipv6 = no holds for what HEP carries too
		return
	}
	switch hp.ProtoType {
	case hep.ProtoSIP:
		p.Link = s.synthLink()
		s.synth = appendSynthFrame(s.synth[:0], p.Link, hp.Src, hp.Dst, hp.Payload)
		p.Frame = s.synth
		s.handleSIPBytes(p, hp.Payload, originHEP)
	case hep.ProtoRTP:
		s.handleMedia(p)
	case hep.ProtoRTCPJSON:
		s.handleRTCPJSON(p, hp.CorrelationID)
	default:
		s.stats.HEP.Ignored++
	}
	if p.Time.Sub(s.tick) >= time.Second {
		s.tickLocked(p.Time)
	}
}

// handleRTCPJSON applies an RTCP report res_hep_rtcp sent as JSON to the
// streams of its call (found by its RTCP addresses).
func (s *Sniffer) handleRTCPJSON(p *decode.Packet, _ []byte) {
	var rep hep.RTCPReport
	if err := rep.Parse(p.Payload); err != nil {
		s.stats.HEP.Errors++
		return
	}
	if !s.table.MatchMedia(p.Src, p.Dst, p.Time, &s.md) {
		s.stats.Other++
		return
	}
	s.stats.HEP.RTCPJSON++
	var blocks [8]rtp.ReceptionReport
	n := rep.Blocks(blocks[:])
	if s.pipe != nil {
		s.queueRare(s.md.Ref, evReports, keepReports(blocks[:n], p.Time))
		return
	}
	s.trackerOf(s.md.Ref).applyReports(s.md.Ref, blocks[:n], p.Time)
}

// synthLink is the link type of the synthetic frames of HEP SIP: the
// capture's when it is Ethernet or raw IP, else Ethernet.
func (s *Sniffer) synthLink() layers.LinkType {
	if s.link == layers.LinkTypeRaw { // the capture's (a decoder was made for it)
		return layers.LinkTypeRaw
	}
	return layers.LinkTypeEthernet
}

// appendSynthFrame builds the frame a per-call pcap stores for SIP that came
// by HEP: Ethernet (zero MACs) unless link is raw IP, IPv4 or IPv6, UDP
// (also for SIP Asterisk carried over TCP/TLS: one message per frame, as
// HOMER and VoIPmonitor store them), so Wireshark decodes it as SIP.
func appendSynthFrame(dst []byte, link layers.LinkType, src, dstAP netip.AddrPort, payload []byte) []byte {
	v4 := src.Addr().Unmap().Is4() && dstAP.Addr().Unmap().Is4()
	if link == layers.LinkTypeEthernet {
		dst = append(dst, make12[:]...)
		if v4 {
			dst = append(dst, 0x08, 0x00)
		} else {
			dst = append(dst, 0x86, 0xdd)
		}
	}
	udpLen := 8 + len(payload)
	if v4 {
		ip := len(dst)
		total := min(20+udpLen, 0xffff)
		dst = append(dst, 0x45, 0, byte(total>>8), byte(total), 0, 0, 0x40, 0, 64, 17, 0, 0)
		s, d := src.Addr().Unmap().As4(), dstAP.Addr().Unmap().As4()
		dst = append(dst, s[:]...)
		dst = append(dst, d[:]...)
		binary.BigEndian.PutUint16(dst[ip+10:], ipv4Checksum(dst[ip:ip+20]))
	} else {
		pl := min(udpLen, 0xffff)
		dst = append(dst, 0x60, 0, 0, 0, byte(pl>>8), byte(pl), 17, 64)
		s, d := src.Addr().As16(), dstAP.Addr().As16()
		dst = append(dst, s[:]...)
		dst = append(dst, d[:]...)
	}
	ul := min(udpLen, 0xffff)
	dst = binary.BigEndian.AppendUint16(dst, src.Port())
	dst = binary.BigEndian.AppendUint16(dst, dstAP.Port())
	dst = append(dst, byte(ul>>8), byte(ul), 0, 0) // checksum 0: not computed
	return append(dst, payload...)
}

var make12 [12]byte

func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// origin of a SIP message, for counting a message seen both ways once.
type origin uint8

const (
	originWire origin = iota + 1
	originHEP
)

// dupWindow is how far apart the wire copy and the HEP copy of one message
// may be (HEP timestamps of received messages are cut to milliseconds,
// and Asterisk sends HEP after it handled the message).
const dupWindow = 2 * time.Second

// dupFilter remembers the last SIP messages by a hash of their bytes and
// where they came from: a message from the other origin with the same
// bytes within dupWindow is the same message. Retransmissions stay
// distinct: each copy pairs with at most one from the other origin.
type dupFilter struct {
	ring [512]dupEntry
	next int
}

type dupEntry struct {
	hash   uint64
	t      int64
	origin origin
	paired bool
}

// hashSIP is FNV-1a over b (inline: no allocation).
func hashSIP(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// seen reports whether b is the other origin's copy of a recent message
// (then it pairs them), else records b.
func (f *dupFilter) seen(b []byte, t time.Time, o origin) bool {
	h := hashSIP(bytes.TrimRight(b, "\r\n\x00 "))
	now := t.UnixNano()
	for i := range f.ring {
		e := &f.ring[i]
		if e.hash == h && e.origin != o && e.origin != 0 && !e.paired && abs64(now-e.t) <= int64(dupWindow) {
			e.paired = true
			return true
		}
	}
	f.ring[f.next] = dupEntry{hash: h, t: now, origin: o}
	f.next = (f.next + 1) % len(f.ring)
	return false
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// sendSIPHEP forwards a SIP message to the HEP output.
func (s *Sniffer) sendSIPHEP(p *decode.Packet, b []byte, m *sip.Message, at time.Time) {
	o := &s.hepOut
	*o = hep.Packet{Src: p.Src, Dst: p.Dst, IPProto: hep.IPProtoUDP, ProtoType: hep.ProtoSIP, Payload: b, CorrelationID: m.CallID, VLAN: p.VLAN}
	if p.Transport == decode.TCP {
		o.IPProto = hep.IPProtoTCP
	}
	o.SetTime(at) // a message out of a TCP stream: its first segment's time, as the call table's
	s.cfg.HEPOut.Send(o)
}

// sendRTCPHEP forwards a wire RTCP packet to the HEP output as the JSON
// HOMER expects (protocol type 5), with the call's Call-ID.
func (s *Sniffer) sendRTCPHEP(p *decode.Packet, ref uint64) {
	cid, ok := s.callIDs[ref]
	c := &s.rtcpOut
	if !ok || c.Unmarshal(p.Payload) != nil {
		return
	}
	s.rtcpJSON = hep.AppendRTCPJSON(s.rtcpJSON[:0], c)
	if len(s.rtcpJSON) == 0 {
		return
	}
	o := &s.hepOut
	*o = hep.Packet{Src: p.Src, Dst: p.Dst, IPProto: hep.IPProtoUDP, ProtoType: hep.ProtoRTCPJSON, Payload: s.rtcpJSON}
	o.CorrelationID = append(s.cidBuf[:0], cid...)
	s.cidBuf = o.CorrelationID
	o.SetTime(p.Time)
	s.cfg.HEPOut.Send(o)
}

// sendQoSHEP sends a quality report per RTP stream of a finished call.
func (s *Sniffer) sendQoSHEP(c *call.CDR) {
	for i := range c.Streams {
		st := &c.Streams[i]
		r := hep.NewQoSReport(c.CallID, st)
		o := hep.Packet{Src: st.Src, Dst: st.Dst, IPProto: hep.IPProtoUDP, ProtoType: hep.ProtoQoSReport,
			Payload: r.JSON(), CorrelationID: []byte(c.CallID)}
		o.SetTime(st.LastTime)
		s.cfg.HEPOut.Send(&o)
	}
}
