// Package sniffer wires the packet path: capture → decode → SIP (UDP, and
// TCP framed per flow) → call table, and hands RTP/RTCP of known calls to a
// media handler. One Sniffer is fed by one goroutine.
package sniffer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/hep"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sdp"
	"pbx-agent/sniffer/sip"
)

// MediaHandler receives the RTP/RTCP (and other) datagrams of known calls,
// matched in one call-table lookup with their RTP header parsed once
// (call.Media, valid only during the call). With Config.Workers > 1 it is
// called on the call's worker: concurrently for different calls, in capture
// order for one call.
type MediaHandler interface {
	HandleMedia(m *call.Media)
}

// MediaBatchHandler is a MediaHandler that also takes a run of datagrams at
// once, in capture order (a media worker hands over each run of a batch in
// one call, so a handler shared by the workers takes its lock once).
type MediaBatchHandler interface {
	MediaHandler
	HandleMediaBatch(ms []call.Media)
}

// Config configures a Sniffer. The zero value sniffs SIP on port 5060 and
// wherever else a UDP datagram or the start of a TCP stream looks like SIP.
type Config struct {
	SIPPorts PortSet // ports that are always SIP; default 5060
	// SIPByPortOnly turns off finding SIP by its content on other ports
	// (config sip_detect = no): only SIPPorts carry SIP then.
	SIPByPortOnly bool
	// Deduplicate handles a packet captured twice (two interfaces, a
	// mirror and the host, both sides of a router) once (VoIPmonitor's
	// deduplicate).
	Deduplicate bool
	// VXLANPort is the UDP port of VXLAN (udp_port_vxlan); 0 = 4789.
	VXLANPort uint16
	Call      call.Config
	Media     MediaHandler // optional
	// SaveGraph keeps each RTP stream's quality per second (VoIPmonitor's
	// savegraph): the CDR's streams carry it (rtp.Summary.Series).
	SaveGraph bool
	// F1, F2 and Adapt are the jitter-buffer simulators behind every
	// stream's MOS (VoIPmonitor's jitterbuffer_f1, _f2, _adapt and their
	// sizes): zero values take rtp.DefaultF1/F2/Adapt, Size -1 turns one
	// off (its MOS stays 4.5, and the packet path neither runs nor fetches
	// its state).
	F1, F2, Adapt rtp.JBConfig
	// FaxDetect looks for the fax tones CNG (1100 Hz) and CED (2100 Hz)
	// in every G.711 stream (VoIPmonitor's faxdetect): a call with one
	// gets call.CDR.FaxTones. Off, the media path only tests this flag.
	FaxDetect bool
	// IgnoreRTPAfterByeOK leaves the RTP and RTCP a call's parties send
	// after the 2xx to its BYE out of the call's stream statistics (and
	// RFC 2833 digits and fax tones): VoIPmonitor's
	// ignore_rtp_after_bye_confirmed (default yes there). The zero value
	// counts every packet, as tshark's RTP statistics do; the spool and
	// live listeners get the packets either way.
	IgnoreRTPAfterByeOK bool
	// IPv4Only ignores every IPv6 packet, as VoIPmonitor with ipv6 = no
	// (counted in Stats.IPv6Ignored).
	IPv4Only bool
	// SIPHook, when set, sees every SIP message after the call table did
	// (spool, SIP history), with the callreference it was tied to (0 when
	// none) and the packet it came in. Both are valid only during the call.
	// With Workers > 1 a call's messages are seen on its worker, in order
	// with its media (as Media.HandleMedia).
	SIPHook func(m *sip.Message, meta call.Meta, ref uint64, p *decode.Packet)
	// HEP is HEP input; HEPOut, when set, gets every SIP message and RTCP
	// report as HEP (HOMER).
	HEP    HEPInput
	HEPOut HEPOutput
	Logger *slog.Logger
	// Workers is the number of media workers while Run reads a source
	// (VoIPmonitor's rtpthreads): above 1, a reader goroutine copies the
	// frames, the goroutine in Run handles SIP and finds each datagram's
	// call in capture order, and the media of each call (statistics,
	// spool, audio) is handled by the worker its call hashes to
	// (workers.go). Calls, CDRs, REGISTERs and callbacks are exactly as
	// with one. 0 or 1: everything on the goroutine that feeds the
	// sniffer.
	Workers int
}

// Stats counts the packet path's work.
type Stats struct {
	Frames       uint64
	DecodeErrors uint64
	SIP          uint64
	SIPErrors    uint64
	Media        uint64
	Other        uint64
	TCPFlows     int
	TCPDiscarded uint64 // bytes skipped while resyncing SIP over TCP
	KernelDrops  uint64 // frames the kernel dropped (live capture)
	TCPEvicted   uint64 // SIP-over-TCP flows dropped to stay within the flow limit
	WSDropped    uint64 // SIP-over-websocket flows given up over the message size cap
	Duplicates   uint64 // packets dropped as copies of one already handled (Deduplicate)
	SCTPDropped  uint64 // SIP-over-SCTP fragments or messages given up
	// StreamsRefused: RTP packets that would have started a stream past a
	// call's limit (64 streams; a sender cycling SSRCs).
	StreamsRefused uint64
	// DTMFDropped: RFC 2833 digits past a call's limit (call.MaxDTMF).
	DTMFDropped uint64
	// IPv6Ignored: IPv6 packets dropped unread (Config.IPv4Only).
	IPv6Ignored uint64
	HEP         HEPStats
	Decoder     decode.Stats // the link-layer decoders' counters, every source so far
}

// Sniffer is the packet path. HandleFrame, Run, Tick and Flush are called
// from one goroutine (HEP listeners with HEPInput.Concurrent share it under
// a lock); Stats, Table, ActiveCalls, Lookup and Register may be called
// from any goroutine.
type Sniffer struct {
	// warnedIPv6: IPv6 SIP was ignored (IPv4Only) and said so once
	warnedIPv6 bool
	cfg        Config
	log        *slog.Logger
	table      *call.Table
	dec        *decode.Decoder
	decs       decode.Stats   // counters of the decoders of earlier sources
	lent       []decode.Stats // a parallel Run's readers' decoders' counters so far (workers.go)
	link       layers.LinkType
	pkt        decode.Packet
	msg        sip.Message
	md         call.Media // the media packet being handed down (reused)
	meta       call.Meta
	tcp        *tcpFlows
	sctp       *sctpAssoc
	dedup      *deduper      // nil unless Config.Deduplicate
	ra         readAhead     // lookahead.go
	peek       decode.Packet // a frame read ahead
	// shards holds the calls' media state, one tracker per worker (one
	// without workers); a call's is shards[shard(ref)].
	shards []*mediaTracker
	pipe   *pipeline // the running workers (Run with Workers > 1), else nil
	// waiting: the parallel packet path waits for frames (or paces a
	// replay) and passed the workers' batches on (workers.go idle)
	waiting bool
	// the frame the parallel packet path is handling, in its reader's batch
	frame        *decode.Packet
	frameBatch   *batch
	frameSIPLike bool // the frame's reader found its UDP payload begins as SIP
	// batching: the packet path is inside a batch of frames (HandleFrames,
	// a reader's batch), whose end releases the table; held: it holds the
	// table for the batch's media datagrams (holdMedia).
	batching, held bool
	heldMedia      *mediaTracker // single-threaded: the tracker held with the table
	// the callbacks of the caller's call.Config
	onEnd      func(*call.CDR)
	onRegister func(*call.Register)

	stats Stats
	live  []capture.Live // the current sources that are live ones
	clk   clock          // the capture's clock during a paced replay (Now)

	statsMu   sync.Mutex
	published Stats
	tick      time.Time

	// HEP input and output (hepin.go)
	mu       sync.Mutex // the packet path's, when HEP listeners share it
	hepIn    hep.Packet
	hepPkt   decode.Packet
	hepPass  []byte
	synth    []byte
	dups     *dupFilter
	hepOut   hep.Packet
	rtcpOut  rtp.Compound
	rtcpJSON []byte
	cidBuf   []byte
	callIDs  map[uint64]string // Call-ID per call, for RTCP sent as HEP
}

// New returns a sniffer with its own call table.
func New(cfg Config) *Sniffer {
	if cfg.SIPPorts.Empty() {
		cfg.SIPPorts.Add("5060")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HEP.Port == 0 {
		cfg.HEP.Port = 9060
	}
	s := &Sniffer{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "sniffer"),
		tcp:  newTCPFlows(),
		sctp: newSCTP(),
	}
	for range max(cfg.Workers, 1) {
		s.shards = append(s.shards, newMediaTracker(cfg.Media, newStreamOptions(&cfg)))
	}
	if cfg.Deduplicate {
		s.dedup = newDeduper()
	}
	if cfg.HEP.Enabled {
		s.hepPass = []byte(cfg.HEP.Password)
		s.dups = &dupFilter{}
	}
	if cfg.HEPOut != nil {
		s.callIDs = make(map[uint64]string)
	}
	cc := cfg.Call
	onMedia := cc.OnMedia
	s.onEnd, s.onRegister = cc.OnCallEnd, cc.OnRegister
	cc.OnMedia = func(ref uint64, addr netip.AddrPort, party call.Party, md *sdp.Media) {
		if a, ok := announcement(addr, md); ok {
			if s.pipe != nil {
				s.queueRare(ref, evAnnounce, rareEvent{ann: a})
			} else {
				s.trackerOf(ref).announce(ref, a)
			}
		}
		if onMedia != nil {
			onMedia(ref, addr, party, md)
		}
	}
	cc.OnCallEnd = func(c *call.CDR) {
		if s.pipe != nil {
			s.dueEnd(c)
			return
		}
		s.addMedia(c, true)
		s.callFinished(c)
	}
	cc.OnRegister = func(r *call.Register) {
		if s.pipe != nil {
			s.dueRegister(r)
		} else if s.onRegister != nil {
			s.onRegister(r)
		}
	}
	s.table = call.New(cc)
	return s
}

// callFinished hands a finished call, its streams attached, on.
func (s *Sniffer) callFinished(c *call.CDR) {
	if s.callIDs != nil {
		delete(s.callIDs, c.CallRef)
		s.sendQoSHEP(c)
	}
	if s.onEnd != nil {
		s.onEnd(c)
	}
}

// ActiveCalls returns snapshots of the calls in progress with their RTP
// figures so far (listcalls, the web API, the dashboard).
func (s *Sniffer) ActiveCalls() []call.CDR {
	calls := s.table.Active()
	for i := range calls {
		s.addMedia(&calls[i], false)
	}
	return calls
}

// Table is the call table the sniffer feeds.
func (s *Sniffer) Table() *call.Table { return s.table }

// Stats returns the packet path's counters. Safe from any goroutine.
func (s *Sniffer) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.published
}

// publish copies the packet goroutine's counters for other goroutines
// (once a second, from Tick: no lock per packet).
func (s *Sniffer) publish() {
	st := s.stats
	st.TCPFlows = len(s.tcp.flows)
	st.TCPEvicted = s.tcp.evicted
	st.WSDropped = s.tcp.wsDropped
	st.SCTPDropped = s.sctp.dropped
	for _, m := range s.shards {
		m.mu.Lock()
		st.StreamsRefused += m.refused
		st.DTMFDropped += m.dtmfDropped
		m.mu.Unlock()
	}
	st.Decoder = s.decs
	if s.dec != nil {
		st.Decoder = st.Decoder.Add(s.dec.Stats())
	}
	for _, d := range s.lent {
		st.Decoder = st.Decoder.Add(d)
	}
	for _, l := range s.live {
		if ls, err := l.Stats(); err == nil {
			st.KernelDrops += ls.Drops
		}
	}
	s.statsMu.Lock()
	s.published = st
	s.statsMu.Unlock()
}

// RunOptions say how a source is read.
type RunOptions struct {
	// Realtime paces packets from a file at their recorded intervals, so
	// calls are active while the file plays.
	Realtime bool
}

// Run reads src until EOF or ctx ends. It does not flush the call table:
// the caller decides (end of replay vs. more sources to come).
func (s *Sniffer) Run(ctx context.Context, src capture.Source, opts RunOptions) error {
	if s.cfg.Workers > 1 {
		return s.runParallel(ctx, []capture.Source{src}, opts)
	}
	s.lock()
	s.setSources([]capture.Source{src})
	s.unlock()
	defer func() {
		s.lock()
		s.publish()
		s.unlock()
		s.clk.end()
	}()
	if b, ok := src.(capture.Batcher); ok && !opts.Realtime {
		return s.runBatches(ctx, b)
	}
	var first, start time.Time
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, ci, err := src.ReadPacket()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, capture.ErrTimeout):
			s.Tick(time.Now())
			continue
		case err != nil:
			return err
		}
		if opts.Realtime {
			if first.IsZero() {
				first, start = ci.Timestamp, time.Now()
				s.clk.begin(first, start)
			}
			if err := s.pace(ctx, ci.Timestamp.Sub(first)-time.Since(start)); err != nil {
				return err
			}
		}
		if err := s.HandleFrame(src.LinkType(), data, ci.Timestamp); err != nil {
			return err
		}
	}
}

// HandleFrame runs one frame through the whole path. Only an unsupported
// link type is an error; malformed packets are counted and skipped.
func (s *Sniffer) HandleFrame(link layers.LinkType, data []byte, ts time.Time) error {
	s.lock()
	defer s.unlock()
	return s.handleFrame(link, data, ts)
}

func (s *Sniffer) handleFrame(link layers.LinkType, data []byte, ts time.Time) error {
	if s.dec == nil || link != s.link {
		d, err := s.newDecoder(link)
		if err != nil {
			return err
		}
		if s.dec != nil {
			s.decs = s.decs.Add(s.dec.Stats())
		}
		s.dec, s.link = d, link
	}
	ok, err := s.dec.Decode(data, ts.UTC(), &s.pkt)
	s.pkt.Frame, s.pkt.Link = data, link
	s.frameDecoded(&s.pkt, ok, err != nil)
	return nil
}

// newDecoder returns a decoder of link frames as the configuration asks.
func (s *Sniffer) newDecoder(link layers.LinkType) (*decode.Decoder, error) {
	d, err := decode.New(link)
	if err != nil {
		return nil, err
	}
	if s.cfg.VXLANPort != 0 {
		d.SetVXLANPort(s.cfg.VXLANPort)
	}
	return d, nil
}

// frameDecoded is the path of a frame after its decoding (ok: to p; bad:
// the decoder found it malformed).
func (s *Sniffer) frameDecoded(p *decode.Packet, ok, bad bool) {
	s.stats.Frames++
	if bad {
		s.stats.DecodeErrors++
	}
	if ok && s.dedup != nil && s.dedup.seen(p) {
		s.stats.Duplicates++
		ok = false
	}
	if ok {
		s.HandlePacket(p)
	}
	if p.Time.Sub(s.tick) >= time.Second {
		s.tickLocked(p.Time)
	}
}

// lock and unlock guard the packet path when HEP listeners feed it from
// other goroutines (HEPInput.Concurrent); otherwise they cost nothing.
func (s *Sniffer) lock() {
	if s.cfg.HEP.Concurrent {
		s.mu.Lock()
	}
}

func (s *Sniffer) unlock() {
	if s.cfg.HEP.Concurrent {
		s.releaseMedia() // a HEP listener may take the table next
		s.mu.Unlock()
	}
}

// holdMedia: inside a batch, the packet path takes the call table's lock
// at the batch's first media datagram and keeps it over the datagrams
// after it, releasing it before anything else reaches the table (SIP, a
// tick), before it waits, and at the batch's end (releaseMedia): one lock
// for a run of media instead of one per datagram, and no other goroutine
// (listcalls, a pause) waits for more than a batch.
func (s *Sniffer) holdMedia() {
	if !s.held {
		s.table.HoldMedia()
		s.held = true
	}
}

func (s *Sniffer) releaseMedia() {
	if s.held {
		s.held = false
		s.table.ReleaseMedia()
	}
	if s.heldMedia != nil {
		s.heldMedia.mu.Unlock()
		s.heldMedia = nil
	}
}

// holdTracker is holdMedia for the media tracker of the single-threaded
// path: held with the table, released with it.
func (s *Sniffer) holdTracker(m *mediaTracker) {
	if s.heldMedia != m {
		if s.heldMedia != nil {
			s.heldMedia.mu.Unlock()
		}
		m.mu.Lock()
		s.heldMedia = m
	}
}

// endBatch ends a batch of frames: the table is released.
func (s *Sniffer) endBatch() {
	s.releaseMedia()
	s.batching = false
}

// ignoredIPv6 tells whether p is left unread as IPv6 with IPv4Only
// (counted; the first SIP of them is said once in the log).
func (s *Sniffer) ignoredIPv6(p *decode.Packet) bool {
	if !s.cfg.IPv4Only || !p.Src.Addr().Unmap().Is6() {
		return false
	}
	s.stats.IPv6Ignored++
	if !s.warnedIPv6 && (s.cfg.SIPPorts.Has(p.Src.Port()) || s.cfg.SIPPorts.Has(p.Dst.Port()) || sip.LooksLikeMessage(p.Payload)) {
		s.warnedIPv6 = true // once: the metric counts them
		s.log.Warn("IPv6 SIP ignored: ipv6 = no (the default, as VoIPmonitor's); set ipv6 = yes to follow IPv6 calls",
			"src", p.Src, "dst", p.Dst)
	}
	return true
}

// HandlePacket routes one decoded packet: SIP ports, and datagrams or TCP
// streams that begin like SIP, to the SIP parser; other UDP to the media
// lookup.
func (s *Sniffer) HandlePacket(p *decode.Packet) {
	if s.ignoredIPv6(p) {
		return
	}
	if s.dups != nil && p.Transport == decode.UDP && p.Dst.Port() == s.cfg.HEP.Port && hep.IsHEP(p.Payload) {
		s.releaseMedia()
		s.handleHEP(p.Payload, p.Time)
		return
	}
	sipPort := s.cfg.SIPPorts.Has(p.Src.Port()) || s.cfg.SIPPorts.Has(p.Dst.Port())
	switch p.Transport {
	case decode.UDP:
		// RTP fails LooksLikeMessage on its first byte: media pays one compare.
		if sipPort || !s.cfg.SIPByPortOnly && s.looksSIP(p) {
			s.releaseMedia()
			s.handleSIPDatagram(p)
			return
		}
		s.handleMedia(p)
	case decode.TCP:
		s.releaseMedia()
		switch {
		case sipPort:
			s.tcp.handle(p, s.handleStreamSIP, &s.stats.TCPDiscarded)
		case s.cfg.SIPByPortOnly || !s.tcp.follow(p, startsSIP, s.handleStreamSIP, &s.stats.TCPDiscarded):
			s.stats.Other++
		}
	case decode.SCTP:
		s.releaseMedia()
		s.sctp.handle(p, func(p *decode.Packet, msg []byte) {
			if sipPort || !s.cfg.SIPByPortOnly && sip.LooksLikeMessage(msg) {
				s.handleWireSIP(p, msg)
			}
		})
	default:
		s.stats.Other++
	}
}

// looksSIP reports whether p's UDP payload begins as a SIP message: as its
// reader found when p is the frame of a reader's batch, else by looking.
func (s *Sniffer) looksSIP(p *decode.Packet) bool {
	if p == s.frame {
		return s.frameSIPLike
	}
	return sip.LooksLikeMessage(p.Payload)
}

func (s *Sniffer) handleSIPDatagram(p *decode.Packet) {
	b := p.Payload
	if len(b) < 8 || isKeepAlive(b) {
		return
	}
	// One message per datagram (RFC 3261 18.3); trailing octets are ignored
	// (RFC 4475 3.1.1.8).
	s.handleSIPBytes(p, b, originWire)
}

func (s *Sniffer) handleWireSIP(p *decode.Packet, b []byte) { s.handleSIPBytes(p, b, originWire) }

// handleStreamSIP takes a message out of a TCP stream: at is the time of the
// segment that carried its first byte.
func (s *Sniffer) handleStreamSIP(p *decode.Packet, b []byte, at time.Time) {
	s.handleSIPAt(p, b, originWire, at)
}

func (s *Sniffer) handleSIPBytes(p *decode.Packet, b []byte, o origin) {
	s.handleSIPAt(p, b, o, p.Time)
}

// handleSIPAt hands a SIP message of packet p, seen at time at, to the call
// table and the SIP hook.
func (s *Sniffer) handleSIPAt(p *decode.Packet, b []byte, o origin, at time.Time) {
	if s.dups != nil && s.dups.seen(b, at, o) {
		s.stats.HEP.Duplicates++
		return
	}
	if _, err := sip.Parse(b, &s.msg); err != nil {
		s.stats.SIPErrors++
		s.log.Debug("bad SIP message", "src", p.Src, "dst", p.Dst, "err", err)
		return
	}
	s.stats.SIP++
	s.meta = call.Meta{Time: at, Src: p.Src, Dst: p.Dst, VLAN: p.VLAN, TCP: p.Transport == decode.TCP}
	ref := s.table.HandleSIP(&s.msg, s.meta)
	if s.cfg.HEPOut != nil {
		if _, ok := s.callIDs[ref]; ref != 0 && !ok {
			s.callIDs[ref] = string(s.msg.CallID)
		}
		s.sendSIPHEP(p, b, &s.msg, at)
	}
	switch {
	case s.cfg.SIPHook == nil:
	case s.pipe != nil && ref != 0:
		s.queueSIP(ref, b, s.meta, p) // in order with the call's media
	default:
		s.cfg.SIPHook(&s.msg, s.meta, ref, p)
	}
}

func (s *Sniffer) handleMedia(p *decode.Packet) {
	m := &s.md
	var ok bool
	if s.batching {
		s.holdMedia()
		ok = s.table.MatchMediaHeld(p.Src, p.Dst, p.Time, m)
	} else {
		ok = s.table.MatchMedia(p.Src, p.Dst, p.Time, m)
	}
	if !ok {
		s.stats.Other++
		return
	}
	s.stats.Media++
	m.Packet = p
	if s.pipe != nil {
		s.queueMedia(m)
		if s.cfg.HEPOut != nil && rtp.LooksLikeRTCP(p.Payload) {
			s.sendRTCPHEP(p, m.Ref)
		}
		return
	}
	m.Classify()
	if mt := s.trackerOf(m.Ref); s.held {
		s.holdTracker(mt)
		mt.handleHeld(m)
	} else {
		mt.HandleMedia(m)
	}
	if s.cfg.HEPOut != nil && m.Kind == call.MediaRTCP {
		s.sendRTCPHEP(p, m.Ref)
	}
}

// Tick advances timeouts to now (packet time in replay).
func (s *Sniffer) Tick(now time.Time) {
	s.lock()
	defer s.unlock()
	s.tickLocked(now)
}

func (s *Sniffer) tickLocked(now time.Time) {
	s.releaseMedia()
	s.tick = now
	s.publish()
	s.table.Tick(now)
	s.tcp.expire(now)
	s.sctp.expire(now)
}

// Flush ends every open call (end of capture or shutdown).
func (s *Sniffer) Flush() {
	s.lock()
	defer s.unlock()
	s.table.Flush()
	if s.pipe != nil {
		s.drainPipeline()
	}
}

func isKeepAlive(b []byte) bool {
	for _, c := range b {
		if c != '\r' && c != '\n' && c != 0 && c != ' ' {
			return false
		}
	}
	return true
}

// RunSources reads several sources at once, as Run reads one: the fanout
// sockets of one interface, each read by its own goroutine (frames of one
// flow come from one socket, in order; the packet path takes the sockets'
// batches as they come). The media workers run whatever Config.Workers.
func (s *Sniffer) RunSources(ctx context.Context, srcs []capture.Source, opts RunOptions) error {
	if len(srcs) == 1 {
		return s.Run(ctx, srcs[0], opts)
	}
	return s.runParallel(ctx, srcs, opts)
}

// setSources keeps the live ones among the sources (kernel drop counters).
func (s *Sniffer) setSources(srcs []capture.Source) {
	s.live = s.live[:0]
	for _, src := range srcs {
		if l, ok := src.(capture.Live); ok {
			s.live = append(s.live, l)
		}
	}
}

// ReplayFile runs one capture file through the sniffer.
func (s *Sniffer) ReplayFile(ctx context.Context, path string, opts RunOptions) error {
	src, err := capture.OpenFile(path)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := s.Run(ctx, src, opts); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Lookup returns a snapshot of one active call with its RTP figures so far.
func (s *Sniffer) Lookup(ref uint64) (call.CDR, bool) {
	c, ok := s.table.Lookup(ref)
	if ok {
		s.addMedia(&c, false)
	}
	return c, ok
}
