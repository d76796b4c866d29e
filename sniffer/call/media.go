package call

import (
	"net/netip"
	"time"
	"unsafe"

	"pbx-agent/internal/prefetch"

	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sdp"
)

// MediaKind classifies a datagram of a call's media addresses.
type MediaKind uint8

const (
	MediaOther MediaKind = iota // neither RTP nor RTCP (STUN, keep-alives, …)
	MediaRTP
	MediaRTCP
)

// Media is one datagram of a known call as the packet path hands it down:
// found with one call-table lookup (MatchMedia) and, for RTP, its header
// parsed once (Classify) for every consumer (statistics, spool, audio).
// The packet path reuses one Media for every packet: it is valid only
// during the call that receives it.
type Media struct {
	Packet *decode.Packet
	Ref    uint64
	// Party is the side whose announced address matched; ToParty says the
	// packet was matched on its destination (it flows to Party), else on its
	// source (symmetric RTP behind NAT: Party sent it).
	Party   Party
	ToParty bool
	// Paused: recording of the call is paused (pausecall) at this packet.
	Paused bool
	// AfterByeOK: the packet came after the 2xx to the call's BYE
	// (VoIPmonitor's ignore_rtp_after_bye_confirmed leaves such packets
	// out of the call's RTP statistics).
	AfterByeOK bool
	// State is the call's slot for the media handler's own per-call state:
	// read and written by the packet path only, dropped with the call.
	State *any

	Kind MediaKind
	// HeaderOK: the datagram parsed as an RTP header (RTP, n bytes of
	// header in HeaderLen), even when its payload type says it is not RTP.
	HeaderOK bool
	// Fax: the call is a fax and this is one of its fax packets (UDPTL of
	// a T.38 address, or RTP once fax tones were heard); the media handler
	// sets it for the spool, which stores such packets whole whatever
	// savertp says, as VoIPmonitor does.
	Fax       bool
	RTP       rtp.Header
	HeaderLen int
}

// Shard is the shard (0 … n-1) of a call reference: the sniffer's media
// workers and the spool's locks split the calls the same way, so a worker
// only ever takes its own shard's lock.
func Shard(ref uint64, n int) int {
	if n <= 1 {
		return 0
	}
	return int((ref * 0x9e3779b97f4a7c15 >> 32) % uint64(n))
}

// FromCaller reports whether the packet flows from the caller (A side).
func (m *Media) FromCaller() bool {
	return (m.ToParty && m.Party == PartyCallee) || (!m.ToParty && m.Party == PartyCaller)
}

// Classify parses m.Packet's payload once: RTCP, RTP (header kept) or
// other.
func (m *Media) Classify() {
	b := m.Packet.Payload
	m.HeaderOK, m.HeaderLen = false, 0
	if rtp.LooksLikeRTCP(b) {
		m.Kind = MediaRTCP
		return
	}
	m.Kind = MediaOther
	if len(b) >= rtp.HeaderSize && b[0]>>6 == 2 { // else Unmarshal fails (and allocates its error)
		if n, err := m.RTP.Unmarshal(b); err == nil {
			m.HeaderOK, m.HeaderLen = true, n
			if rtp.LooksLikeRTP(b) {
				m.Kind = MediaRTP
			}
		}
	}
}

// MatchMedia is the packet path's one call-table lookup per RTP/RTCP
// packet: it finds the call that announced dst (the packet flows to that
// party) or, for symmetric RTP behind NAT, src (it comes from that party),
// fills m with the call and whether its recording is paused, and records the
// activity (seen) — under one lock, without a second lookup.
func (t *Table) MatchMedia(src, dst netip.AddrPort, ts time.Time, m *Media) bool {
	t.mu.Lock()
	ok := t.MatchMediaHeld(src, dst, ts, m)
	t.mu.Unlock() // not deferred: this runs for every media packet
	return ok
}

// HoldMedia locks the table for a run of MatchMediaHeld calls, ReleaseMedia
// unlocks it: the packet path takes the lock once for the media datagrams of
// a batch instead of once per datagram (a lock's atomic operations, and
// the writes to the calls they wait for, cost more than the lookup with
// many calls). The holder must release it before any other call into the
// table, and before it waits.
func (t *Table) HoldMedia() { t.mu.Lock() }

// ReleaseMedia ends HoldMedia.
func (t *Table) ReleaseMedia() { t.mu.Unlock() }

// MatchMediaHeld is MatchMedia for the holder of HoldMedia.
func (t *Table) MatchMediaHeld(src, dst netip.AddrPort, ts time.Time, m *Media) bool {
	e, ok := t.media.get(dst)
	m.ToParty = ok
	if !ok {
		if e, ok = t.media.get(src); !ok {
			return false
		}
	}
	c := e.c
	m.Ref, m.Party, m.State, m.Paused = c.cdr.CallRef, e.party, &c.ext, c.paused
	m.AfterByeOK = c.byeOK != 0 && ts.UnixNano() > c.byeOK
	t.seen(c, ts)
	return true
}

// Ahead is one datagram's MatchMedia read ahead in two steps, Probe then
// Find, each a few packets before the next (sniffer/lookahead.go): with
// many calls the lookup is a chain of dependent cache misses (the index
// slot, then the call), and asking for each link early lets the misses of
// different packets overlap with the work on the packets before them.
type Ahead struct {
	key  mediaKey
	home uint64
	src  netip.AddrPort
	// State is what MatchMedia would give as Media.State when Find ran
	// (nil: no call), for the media handler to read its own state ahead.
	State *any
}

// Probe starts reading ahead the call of a datagram from src to dst: it
// asks for the media-index slot of dst. Probe and Find change nothing and
// read only what the goroutine feeding the table writes: they must be
// called from it (as MatchMedia).
func (t *Table) Probe(a *Ahead, src, dst netip.AddrPort) {
	a.State = nil
	if t.media.n == 0 {
		a.home = ^uint64(0)
		return
	}
	a.key, a.src = keyOf(dst), src
	a.home = t.media.home(a.key)
	prefetch.Lines(unsafe.Pointer(&t.media.slots[a.home]), 1)
}

// Find reads the slot Probe asked for (the index may have changed since:
// then it is only slower) and asks for the lines of the call MatchMedia
// reads and writes.
func (t *Table) Find(a *Ahead) {
	x := &t.media
	if a.home == ^uint64(0) || x.n == 0 {
		return
	}
	s := x.find(a.key, a.home&uint64(len(x.slots)-1))
	if s == nil { // symmetric RTP: matched on its source
		k := keyOf(a.src)
		s = x.find(k, x.home(k))
	}
	if s != nil {
		prefetch.Lines(unsafe.Pointer(s.c), callHotLines)
		a.State = &s.c.ext
	}
}

// MediaAddresses is the number of media addresses the table follows (two
// per call with media, usually). Like Probe, from the goroutine feeding
// the table.
func (t *Table) MediaAddresses() int { return t.media.len() }

// callHotLines: the lines of a callState MatchMedia reads and writes.
const callHotLines = int(unsafe.Offsetof(callState{}.cdr)+unsafe.Offsetof(CDR{}.CallEnd)+24+prefetch.LineSize-1) / prefetch.LineSize

// deferred is a callback due once the table's lock is released: the table
// never calls out while holding it, so callbacks may call the table (and
// take their own locks) freely.
type deferred struct {
	cdr   *CDR      // OnCallEnd
	reg   *Register // OnRegister
	ref   uint64    // OnMedia: ref, addr, party, md
	addr  netip.AddrPort
	party Party
	md    *sdp.Media
}

// unlock releases the table's lock, then runs the callbacks queued under it
// in order. Only the goroutine feeding the table queues callbacks.
func (t *Table) unlock() {
	due := t.due
	t.due = t.firing[:0]
	t.mu.Unlock()
	for i := range due {
		d := &due[i]
		switch {
		case d.cdr != nil:
			if t.cfg.OnCallEnd != nil {
				t.cfg.OnCallEnd(d.cdr)
			}
		case d.reg != nil:
			if t.cfg.OnRegister != nil {
				t.cfg.OnRegister(d.reg)
			}
		default:
			if t.cfg.OnMedia != nil {
				t.cfg.OnMedia(d.ref, d.addr, d.party, d.md)
			}
		}
	}
	clear(due)
	t.firing = due
}
