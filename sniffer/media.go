package sniffer

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sdp"
)

// mediaTracker keeps per-call RTP stream statistics: streams keyed by
// (source, destination, SSRC), so an SSRC change starts a new stream. Codecs
// come from the SDP of the side that receives (its payload type numbering).
// Packet-path methods run on the sniffer goroutine; snapshots may be taken
// from others, hence the mutex.
type mediaTracker struct {
	mu    sync.Mutex
	calls map[uint64]*mediaCall
	rtcp  rtp.Compound
	// next, when set, also sees every media packet (spool, live audio).
	next MediaHandler
	// opts is what every stream of its calls starts with.
	opts  streamOptions
	ahead readAhead // handleRun's
	// refused counts RTP packets that would have started a stream past
	// maxStreams in their call (read under mu).
	refused uint64
	// dtmfDropped counts RFC 2833 digits past call.MaxDTMF in their call
	// (read under mu).
	dtmfDropped uint64
}

// maxStreams bounds a call's RTP streams (VoIPmonitor's MAX_SSRC_PER_CALL
// is 40): a sender cycling SSRCs would otherwise make one 2.7 kB stream
// (and its quality series) per packet, and every packet would scan them
// all. Past it, packets of new streams are counted and not analysed; the
// spool still stores them.
const maxStreams = 64

type mediaCall struct {
	// keys of the first streams, beside the slice: a packet finds its
	// stream without touching the other streams' memory (each is 2.7 kB
	// elsewhere in the heap: a cache miss per stream looked at)
	keys [inlineKeys]streamKey
	// first backs streams up to inlineKeys streams: no separate array to
	// load between the call and its stream
	first      [inlineKeys]*mediaStream
	streams    []*mediaStream
	sdp        []announced
	dtmf       []call.DTMF
	faxPackets int            // UDPTL packets of T.38 (m=image) addresses
	opts       *streamOptions // its tracker's
	// faxTones: a stream's audio held a fax tone since the call's last
	// SDP (faxdetect; CDR payload 1001)
	faxTones bool
}

// streamOptions is what every stream starts with (from Config).
type streamOptions struct {
	series        bool // quality per second (Config.SaveGraph)
	faxDetect     bool // G.711 streams look for fax tones (Config.FaxDetect)
	f1, f2, adapt rtp.JBConfig
	sims          bool // a jitter-buffer simulator runs (rtp.Stream.Prefetch)
	afterByeOK    bool // media after the 2xx to a BYE is left out (Config.IgnoreRTPAfterByeOK)
}

// newStreamOptions are the options of cfg's streams.
func newStreamOptions(cfg *Config) streamOptions {
	on := func(c rtp.JBConfig) bool { return c.Size >= 0 }
	return streamOptions{series: cfg.SaveGraph, faxDetect: cfg.FaxDetect, f1: cfg.F1, f2: cfg.F2, adapt: cfg.Adapt,
		sims: on(cfg.F1) || on(cfg.F2) || on(cfg.Adapt), afterByeOK: cfg.IgnoreRTPAfterByeOK}
}

// announced is what one side put in its SDP for one address.
type announced struct {
	addr    netip.AddrPort
	eventPT uint8
	maps    []rtpMap
	fax     bool // m=image (T.38 over UDPTL)
}

type rtpMap struct {
	pt    uint8
	codec rtp.Codec
}

// streamKey is what the stream lookup compares first.
type streamKey struct {
	ssrc uint32
	pt   uint8
}

const inlineKeys = 4

type mediaStream struct {
	stats rtp.Stream
	// recent report blocks about this stream: the wire RTCP and the HEP
	// copy of one report (res_hep_rtcp) count once
	reports [4]uint32 // folded keys: only 4 recent ones are compared
	dtmf    rtp.DTMFDetector
	ssrc    uint32 // the addresses are in stats (Stream.Flows)
	nextRR  uint8
	pt      uint8 // the payload type it started with
	caller  bool
	// fax looks for fax tones in its G.711 audio: nil unless faxdetect
	// is on and the stream is G.711 (mediaStream fills its size class)
	fax *rtp.FaxTones
}

// newReport tells whether rr was not applied to s yet, and remembers it.
func (s *mediaStream) newReport(rr *rtp.ReceptionReport) bool {
	k64 := uint64(rr.LastSeq)<<32 ^ uint64(rr.LSR) ^ uint64(rr.DLSR)<<16 ^ uint64(rr.Jitter)<<48
	k := uint32(k64) ^ uint32(k64>>32)
	for _, v := range s.reports {
		if v == k {
			return false
		}
	}
	s.reports[s.nextRR] = k
	s.nextRR = (s.nextRR + 1) % uint8(len(s.reports))
	return true
}

// applyReports applies reception report blocks (from RTCP JSON received
// by HEP) to the call's streams they are about.
func (m *mediaTracker) applyReports(ref uint64, blocks []rtp.ReceptionReport, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc := m.calls[ref]
	if mc == nil {
		return
	}
	for i := range blocks {
		mc.applyReport(&blocks[i], t)
	}
}

func (mc *mediaCall) applyReport(rr *rtp.ReceptionReport, t time.Time) {
	for _, s := range mc.streams {
		if s.ssrc == rr.SSRC && s.newReport(rr) {
			s.stats.UpdateRTCP(rr, t)
		}
	}
}

func newMediaTracker(next MediaHandler, opts streamOptions) *mediaTracker {
	return &mediaTracker{calls: make(map[uint64]*mediaCall), next: next, opts: opts}
}

func (m *mediaTracker) call(ref uint64) *mediaCall {
	mc := m.calls[ref]
	if mc == nil {
		mc = &mediaCall{opts: &m.opts}
		mc.streams = mc.first[:0]
		m.calls[ref] = mc
	}
	return mc
}

// announcement is what an SDP media description announces for addr; false
// for the RTCP address of the m= line (RTCP starts no stream).
func announcement(addr netip.AddrPort, md *sdp.Media) (announced, bool) {
	if addr.Port() != md.Port {
		return announced{}, false
	}
	a := announced{addr: addr, fax: sdp.IsFax(md)}
	for i := 0; i < md.NRTPMap; i++ {
		rm := &md.RTPMap[i]
		name := strings.ToUpper(string(rm.Encoding))
		if name == "TELEPHONE-EVENT" {
			a.eventPT = rm.PT
			continue
		}
		a.maps = append(a.maps, rtpMap{pt: rm.PT, codec: rtp.CodecByName(name, rm.ClockRate)})
	}
	return a, true
}

// announce records what a call's SDP announced for one address.
func (m *mediaTracker) announce(ref uint64, a announced) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc := m.call(ref)
	// VoIPmonitor sets the call's fax kind from every SDP media line it
	// takes (T.38 for m=image, none otherwise): a tone found before the
	// call's last SDP does not make it a T.30 fax.
	mc.faxTones = false
	for i, old := range mc.sdp {
		if old.addr == a.addr {
			mc.sdp[i] = a // a re-INVITE replaces the offer for that address
			return
		}
	}
	if len(mc.sdp) >= call.MaxMediaAddrs { // as the call table, the oldest goes
		mc.sdp = mc.sdp[:copy(mc.sdp, mc.sdp[1:])]
	}
	mc.sdp = append(mc.sdp, a)
}

// isVoicePT reports whether pt would be a codec change on stream s: not
// its RFC 4733 events and not comfort noise (13, and 19 of old).
func isVoicePT(s *rtp.Stream, pt uint8) bool {
	return !s.IsEvent(pt) && pt != 13 && pt != 19
}

// faxAddr reports whether either address was announced for T.38 (m=image).
func (mc *mediaCall) faxAddr(src, dst netip.AddrPort) bool {
	for i := range mc.sdp {
		if mc.sdp[i].fax && (mc.sdp[i].addr == src || mc.sdp[i].addr == dst) {
			return true
		}
	}
	return false
}

func (mc *mediaCall) lookupSDP(addr netip.AddrPort) *announced {
	for i := range mc.sdp {
		if mc.sdp[i].addr == addr {
			return &mc.sdp[i]
		}
	}
	return nil
}

// HandleMedia implements MediaHandler: RTCP updates the streams it reports
// on, RTP updates (or starts) its stream.
func (m *mediaTracker) HandleMedia(md *call.Media) {
	m.mu.Lock()
	m.handle(md)
	m.mu.Unlock()
	if m.next != nil {
		m.next.HandleMedia(md)
	}
}

// handleHeld is HandleMedia for the holder of m.mu (the single-threaded
// packet path over a batch: Sniffer.holdTracker).
func (m *mediaTracker) handleHeld(md *call.Media) {
	m.handle(md)
	if m.next != nil {
		m.next.HandleMedia(md)
	}
}

// callOf returns the call's state through its slot in the call table (a
// map lookup only on the call's first packet).
func (m *mediaTracker) callOf(md *call.Media) *mediaCall {
	if mc, ok := (*md.State).(*mediaCall); ok {
		return mc
	}
	mc := m.call(md.Ref)
	*md.State = mc
	return mc
}

func (m *mediaTracker) handle(md *call.Media) {
	if md.AfterByeOK && m.opts.afterByeOK {
		return // the call's media ended with its BYE's 2xx (VoIPmonitor's rule)
	}
	p := md.Packet
	mc := m.callOf(md)
	md.Fax = false
	if md.Kind == call.MediaRTCP {
		if m.rtcp.Unmarshal(p.Payload) != nil {
			return
		}
		for i := 0; i < m.rtcp.NReports; i++ {
			mc.applyReport(&m.rtcp.Reports[i], p.Time)
		}
		for i := 0; i < m.rtcp.NXR; i++ {
			xr := &m.rtcp.XR[i]
			for _, s := range mc.streams {
				if s.ssrc == xr.SSRC {
					s.stats.UpdateXR(xr)
				}
			}
		}
		return
	}
	if !md.HeaderOK {
		if mc.faxAddr(p.Src, p.Dst) {
			mc.faxPackets++ // UDPTL (its first octet is rarely RTP's version 2)
			md.Fax = true
		}
		return
	}
	hdr := &md.RTP
	s := mc.stream(p, hdr)
	if s == nil {
		if mc.faxAddr(p.Src, p.Dst) {
			mc.faxPackets++ // UDPTL of a T.38 fax: not an RTP stream
			md.Fax = true
			return
		}
		if len(mc.streams) >= maxStreams {
			m.refused++
			return
		}
		s = mc.newStream(p, hdr, md.FromCaller())
	}
	payload := hdr.Payload(p.Payload, md.HeaderLen)
	if m.opts.faxDetect && s.fax != nil {
		// G.711 voice only, as VoIPmonitor: any other packet of the
		// stream (an event, comfort noise, an empty one) restarts it.
		if hdr.PayloadType != s.pt || len(payload) == 0 {
			s.fax.Reset()
		} else if s.fax.Feed(payload) != rtp.NoFaxTone {
			mc.faxTones = true
		}
	}
	md.Fax = mc.faxTones
	if s.stats.IsEvent(hdr.PayloadType) {
		if d, ok := s.dtmf.Feed(hdr, payload, p.Time); ok {
			if len(mc.dtmf) < call.MaxDTMF {
				mc.dtmf = append(mc.dtmf, call.DTMF{Time: d.Time, Digit: d.Digit, Source: "rfc2833", Src: p.Src, Dst: p.Dst})
			} else {
				m.dtmfDropped++
			}
		}
	}
	s.stats.Update(hdr, len(payload), p.Time)
}

// stream returns the last of the call's streams the packet belongs to: its
// SSRC and flow, and its payload type or one that is not a codec change.
// The same SSRC with another voice payload type (a re-INVITE to another
// codec) is a new stream, never merged into the old one.
func (mc *mediaCall) stream(p *decode.Packet, hdr *rtp.Header) *mediaStream {
	var s *mediaStream
	match := func(c *mediaStream, k streamKey) {
		if k.ssrc == hdr.SSRC && (k.pt == hdr.PayloadType || !isVoicePT(&c.stats, hdr.PayloadType)) && c.stats.Flows(p.Src, p.Dst) {
			s = c
		}
	}
	for i, k := range mc.keys[:min(len(mc.streams), inlineKeys)] {
		if k.ssrc == hdr.SSRC { // else the stream's memory is not touched
			match(mc.streams[i], k)
		}
	}
	for _, c := range mc.streams[min(len(mc.streams), inlineKeys):] {
		match(c, streamKey{c.ssrc, c.pt})
	}
	return s
}

// newStream starts a stream; caller: it flows from the caller (matched on
// the destination, the other side sent it; on the source, party did). A
// G.711 stream looks for fax tones with Config.FaxDetect.
func (mc *mediaCall) newStream(p *decode.Packet, hdr *rtp.Header, caller bool) *mediaStream {
	o := mc.opts
	cfg := rtp.StreamConfig{Src: p.Src, Dst: p.Dst, Caller: caller, Series: o.series, F1: o.f1, F2: o.f2, Adapt: o.adapt}
	a := mc.lookupSDP(p.Dst)
	if a == nil {
		a = mc.lookupSDP(p.Src)
	}
	if a != nil {
		cfg.EventPT = a.eventPT
		for _, rm := range a.maps {
			if rm.pt == hdr.PayloadType {
				cfg.Codec = rm.codec
			}
		}
	}
	s := &mediaStream{ssrc: hdr.SSRC, pt: hdr.PayloadType, caller: caller}
	s.stats.Reset(cfg)
	if o.faxDetect {
		s.fax = newFaxTones(hdr.PayloadType, cfg.Codec)
	}
	if n := len(mc.streams); n < inlineKeys {
		mc.keys[n] = streamKey{s.ssrc, s.pt}
	}
	mc.streams = append(mc.streams, s)
	return s
}

// callMedia is what the media tracker knew of a call.
type callMedia struct {
	streams    []rtp.Summary // in the order they started
	dtmf       []call.DTMF   // RFC 2833 digits
	faxPackets int           // UDPTL packets
	faxTones   bool          // a fax tone in G.711 audio since the last SDP
}

// summaries returns the figures of a call's streams and its RFC 2833
// digits; take also forgets the call.
func (m *mediaTracker) summaries(ref uint64, take bool) callMedia {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc := m.calls[ref]
	if mc == nil {
		return callMedia{}
	}
	if take {
		delete(m.calls, ref)
	}
	out := make([]rtp.Summary, 0, len(mc.streams))
	for _, s := range mc.streams {
		if s.stats.Received() == 0 {
			continue
		}
		sum := s.stats.Summary()
		if take {
			sum.Series = s.stats.Series()
		}
		out = append(out, sum)
	}
	return callMedia{streams: out, dtmf: slices.Clone(mc.dtmf), faxPackets: mc.faxPackets, faxTones: mc.faxTones}
}

// newFaxTones returns a fax tone detector for a stream that starts with
// payload type pt, or nil when pt is not G.711: 0 and 8 by their number,
// a dynamic type by its rtpmap (VoIPmonitor's codec of a packet).
func newFaxTones(pt uint8, rtpmap rtp.Codec) *rtp.FaxTones {
	var name string
	switch {
	case pt == rtp.PTPCMU, pt == rtp.PTPCMA:
		return &rtp.FaxTones{ALaw: pt == rtp.PTPCMA}
	case pt >= 96 && pt <= 127:
		name = rtpmap.Name
	}
	switch name {
	case rtp.CodecPCMU.Name, rtp.CodecPCMA.Name:
		return &rtp.FaxTones{ALaw: name == rtp.CodecPCMA.Name}
	}
	return nil
}
