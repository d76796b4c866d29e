// Package call is the call table: it follows INVITE dialogs (keyed by
// Call-ID) and REGISTER transactions from parsed SIP messages, learns the RTP
// addresses each side announces in SDP, and emits a CDR when a call ends. It
// is the single owner of call state; other goroutines read snapshots.
package call

import (
	"bytes"
	"cmp"
	crand "crypto/rand"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"pbx-agent/internal/opt"
	"pbx-agent/sniffer/sdp"
	"pbx-agent/sniffer/sip"
)

// Meta says where and when a SIP message was seen.
type Meta struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	VLAN     uint16
	TCP      bool
}

// Config tunes the table. The zero value is usable.
type Config struct {
	// IdleTimeout ends a call whose media was seen once it had no SIP or
	// RTP for this long (VoIPmonitor's rtptimeout; default 300 s).
	// Negative disables every timeout, as VoIPmonitor does when reading a
	// file: a capture's clock may jump, and EOF ends every call.
	IdleTimeout time.Duration
	// CallerID says which headers give the caller's number, domain and
	// name before From (VoIPmonitor's passertedidentity, ppreferredidentity,
	// remotepartyid, remotepartypriority).
	CallerID CallerID
	// CalledFromURI takes the called number and domain from the INVITE's
	// Request-URI instead of its To header (VoIPmonitor's
	// destination_number_mode = 2; default 1, To). A Request-URI with no
	// user part leaves To's number.
	CalledFromURI bool
	// LastDestNumber takes the called number from every INVITE of the
	// caller's side, not only the first (VoIPmonitor's last_dest_number:
	// overlap dialling, a forking proxy re-sending the INVITE to another
	// number). A re-INVITE from the callee's side changes nothing.
	LastDestNumber bool
	// NoSIPOverlap keeps the called number of the first INVITE when a
	// later one comes from the caller's IP with another To (VoIPmonitor's
	// sipoverlap = no). By default, as VoIPmonitor's sipoverlap = yes, the
	// called number follows each INVITE from the caller's IP: overlap
	// dialling (RFC 3578) sends the digits in INVITE after INVITE.
	NoSIPOverlap bool
	// UpdateDstnumOnAnswer takes the called number of the INVITE branch
	// the 2xx answers when the call's INVITEs went out on several Via
	// branches (a hunt group forking to several numbers; VoIPmonitor's
	// update_dstnum_onanswer).
	UpdateDstnumOnAnswer bool
	// NATAliases maps an address an SDP may announce to the one the
	// sniffer sees its media on (VoIPmonitor's natalias: a PBX behind NAT
	// announces its public address, its RTP is captured on its private
	// one): the call's media is also looked for at the alias, same port.
	NATAliases map[netip.Addr]netip.Addr
	// SIPOnlyTimeout ends a call none of whose media was seen this long
	// after its first packet (VoIPmonitor's sipwithoutrtptimeout; default
	// 1 h): a call whose RTP goes elsewhere (direct media, another
	// interface) lasts as long as its signalling says, not IdleTimeout.
	SIPOnlyTimeout time.Duration
	// OneWayTimeout ends a call still one-way (no SIP message from the
	// other side yet) this long after its last packet, bye 105
	// (VoIPmonitor's onewaytimeout; default 15 s).
	OneWayTimeout time.Duration
	// MaxDuration force-ends a call this long after it started (VoIPmonitor's
	// absolute_timeout; default 4 h).
	MaxDuration time.Duration
	// EndGrace keeps a finished call this long so retransmitted final
	// messages and trailing RTP still land on it (default 5 s).
	EndGrace time.Duration
	// AuthGrace is EndGrace after a 401/407 challenge to the INVITE: the
	// caller's retry with credentials (a person may be typing a password)
	// continues the same call, as VoIPmonitor counts it (default 60 s).
	AuthGrace time.Duration
	// MaxCalls bounds the calls followed at once (VoIPmonitor's callslimit;
	// default 200,000): past it, new INVITEs are counted and ignored, so an
	// INVITE flood cannot exhaust memory.
	MaxCalls int
	// Register holds VoIPmonitor's sip-register-* rules (register.go).
	Register RegisterRules
	// OnCallEnd receives every finished call. It runs on the goroutine that
	// feeds the table and must not block. Callbacks (OnCallEnd, OnRegister,
	// OnMedia) run after the table's lock is released, in the order the
	// events happened, before the call that caused them returns.
	OnCallEnd func(*CDR)
	// OnRegister receives every REGISTER state change.
	OnRegister func(*Register)
	// OnMedia, when set, is told of every RTP address a call announces
	// (party is the side that will receive on addr).
	OnMedia func(ref uint64, addr netip.AddrPort, party Party, m *sdp.Media)
}

func (c *Config) defaults() {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 300 * time.Second
	}
	opt.Default(&c.SIPOnlyTimeout, time.Hour)
	opt.Default(&c.MaxDuration, 4*time.Hour)
	opt.Default(&c.OneWayTimeout, 15*time.Second)
	opt.Default(&c.EndGrace, 5*time.Second)
	opt.Default(&c.MaxCalls, 200000)
	opt.Default(&c.AuthGrace, 60*time.Second)
	c.Register.defaults()
}

// Party is one side of a call.
type Party uint8

const (
	PartyCaller Party = iota
	PartyCallee
)

// Stats are the table's counters.
type Stats struct {
	SIPMessages      uint64
	Retransmissions  uint64
	CallsStarted     uint64
	CallsEnded       uint64
	Registers        uint64
	Orphans          uint64 // in-dialog messages for calls we never saw start
	CallsRefused     uint64 // INVITEs ignored because MaxCalls calls were open
	RegistersRefused uint64 // new REGISTER bindings or attempts ignored past MaxCalls of them
	// RegisterAttemptsEvicted counts REGISTER attempts closed early because
	// their binding had registerMaxAttempts open (Call-IDs rotated faster
	// than sip-register-timeout closes them).
	RegisterAttemptsEvicted uint64
	// RegistersUnanswered counts REGISTER attempts closed with no answer
	// (each written as a register_failed row, or folded into one).
	RegistersUnanswered uint64
	// MediaEvicted counts media addresses a call forgot for newer ones past
	// MaxMediaAddrs (re-INVITEs moving its media again and again).
	MediaEvicted uint64
	// EntriesDropped counts what a call's CDR did not keep past its lists'
	// bounds (MaxResponses, MaxDTMF, MaxHolds) and the INVITE transactions
	// it did not time past MaxInviteTx.
	EntriesDropped uint64
}

// Bounds on what one call keeps from in-dialog messages, which a call's
// peers may send for as long as it lasts (MaxDuration): without them a
// storm of re-INVITEs, responses or INFOs on one call grew its lists, and
// the media index, by every message (and scanned them for each).
const (
	// MaxMediaAddrs is the media addresses a call maps (16 per SDP at most:
	// 8 m= lines, RTP and RTCP); past it the oldest is forgotten.
	MaxMediaAddrs = 64
	// MaxResponses is the distinct responses (code and reason) a CDR keeps.
	MaxResponses = 64
	// MaxDTMF is the SIP INFO digits a CDR keeps (RFC 2833 digits are
	// bounded alike by the media handler).
	MaxDTMF = 512
	// MaxHolds is the times a CDR keeps a call going on hold.
	MaxHolds = 256
	// MaxInviteTx is the INVITE transactions (path and CSeq number) a call
	// times responses for.
	MaxInviteTx = 32
)

// Table follows calls and registrations. HandleSIP, MatchMedia and Tick
// must be called from one goroutine (the packet path); Active, Lookup and
// the other readers may be called from any goroutine.
type Table struct {
	cfg Config

	mu      sync.Mutex
	calls   map[string]*callState
	byRef   map[uint64]*callState
	media   mediaIndex
	regs    map[string]*regState
	regCall map[string][]*regAttempt // Call-ID → the open REGISTER attempts using it
	regOpen int                      // open REGISTER attempts (bounded by MaxCalls)
	regSeq  uint64                   // counts REGISTER requests (regAttempt.lastReq)
	refs    *rand.ChaCha8            // call references: unguessable, seeded from crypto/rand
	seq     uint64                   // calls created so far (callState.seq)
	stats   Stats
	seed    maphash.Seed
	now     time.Time
	lastGC  time.Time
	sdp     sdp.Session
	// Callbacks queued under mu, run by unlock (due), and the slice they
	// were last run from (reused).
	due, firing []deferred
}

type mediaEntry struct {
	c     *callState
	party Party // the side that receives on this address
}

// New returns an empty table.
func New(cfg Config) *Table {
	cfg.defaults()
	return &Table{
		cfg:     cfg,
		calls:   make(map[string]*callState),
		byRef:   make(map[uint64]*callState),
		media:   newMediaIndex(),
		regs:    make(map[string]*regState),
		regCall: make(map[string][]*regAttempt),
		refs:    newRefSource(),
		seed:    maphash.MakeSeed(),
	}
}

// retransWindow is how many recent message hashes a call remembers to spot
// retransmissions (identical bytes, same direction).
const retransWindow = 16

type callState struct {
	// The media handler's per-call state (Media.State): read for every
	// packet by the call's media worker, on another core than the packet
	// path that writes the lines below for every packet, so a line apart
	// from them (else each packet moves that line between the cores).
	ext any
	_   [64]byte
	// What MatchMedia reads and writes for every media packet comes first,
	// with the CDR's CallRef and CallEnd: two adjacent cache lines of the
	// call (it was six, spread over 900 bytes).
	last    time.Time // last SIP or RTP packet
	ended   bool      // final state reached; emitted after EndGrace
	byeSeen bool
	paused  bool // the CDR's last pause interval is open (SetPaused)
	heard   bool // a datagram of its media addresses was seen (timeouts)
	// byeOK is when the first 2xx to a BYE was seen, ns since the epoch
	// (VoIPmonitor's seenbye_and_ok_time_usec); 0 before. Media after it
	// is marked Media.AfterByeOK.
	byeOK int64

	cdr        CDR
	seq        uint64 // creation order (references are random)
	fromTag    string // caller's tag: tells who sent a BYE
	inviteCSeq uint32
	firstCSeq  uint32 // the first INVITE's
	txs        []inviteTx
	challenged bool // ended by a 401/407: waits AuthGrace for the retry
	endedAt    time.Time
	hashes     [retransWindow]uint64
	nh         int
	media      []netip.AddrPort
	canceled   bool
	final      bool // a final response to the INVITE was seen
	onHold     bool
	// legs holds the address pairs of the call's INVITEs while it is
	// one-way (replied false): a message on one of them is a forwarded
	// leg, not a reply.
	legs    [][2]netip.AddrPort
	replied bool
	// branches: the called number of each INVITE by its Via branch
	// (UpdateDstnumOnAnswer only); dstnumSet once a 2xx chose one.
	branches  []inviteBranch
	dstnumSet bool
}

// inviteBranch is one INVITE's called number and domain from To and from
// its Request-URI, by its top Via branch.
type inviteBranch struct {
	branch                       string
	to, toDomain, uri, uriDomain string
}

// maxInviteBranches bounds the branches a call keeps for
// UpdateDstnumOnAnswer.
const maxInviteBranches = 16

// HandleSIP updates the table with one parsed message and returns the
// callreference of the call it belongs to (0 for REGISTERs and strays). The
// message's bytes are not retained: everything kept is copied.
func (t *Table) HandleSIP(m *sip.Message, meta Meta) uint64 {
	t.mu.Lock()
	defer t.unlock()
	t.stats.SIPMessages++
	t.advance(meta.Time)
	if string(m.CSeqMethod) == "REGISTER" {
		t.handleRegister(m, meta)
		return 0
	}
	c := t.calls[string(m.CallID)]
	if c == nil {
		if !m.Request || string(m.Method) != "INVITE" || len(m.ToTag) > 0 {
			if string(m.CSeqMethod) == "INVITE" || string(m.Method) == "BYE" {
				t.stats.Orphans++
			}
			return 0 // only a dialog-creating INVITE starts a call
		}
		if len(t.calls) >= t.cfg.MaxCalls {
			t.stats.CallsRefused++
			return 0
		}
		c = t.newCall(m, meta)
	}
	ref := c.cdr.CallRef
	if !c.replied {
		c.checkOneWay(m, meta)
	}
	if meta.Time.After(c.cdr.LastSIP) {
		c.cdr.LastSIP = meta.Time
	}
	if c.retransmission(t.seed, m, meta) {
		t.stats.Retransmissions++
		c.touch(meta.Time)
		t.putOffEnd(c, meta.Time)
		return ref
	}
	c.touch(meta.Time)
	t.putOffEnd(c, meta.Time)
	t.timeResponses(c, m, meta)
	if c.ended && !(m.Request && string(m.Method) == "INVITE") {
		// Late messages of a finished call (ACK for the 487, 200 for BYE).
		t.handleLate(c, m, meta)
		return ref
	}
	if m.Request {
		t.handleRequest(c, m, meta)
	} else {
		t.handleResponse(c, m, meta)
	}
	return ref
}

// SetPaused pauses or resumes recording of an active call (VoIPmonitor's
// pausecall/unpausecall): the spool writes codec silence and live listeners
// hear silence while paused. The intervals end up in the CDR.
func (t *Table) SetPaused(ref uint64, paused bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byRef[ref]
	if c == nil || c.ended {
		return ErrNoCall
	}
	d := &c.cdr
	now := t.now
	if len(d.Paused) > 0 && d.Paused[len(d.Paused)-1].End.IsZero() {
		if !paused {
			d.Paused[len(d.Paused)-1].End = now
			c.paused = false
		}
		return nil
	}
	if paused {
		d.Paused = append(d.Paused, Interval{Start: now})
		c.paused = true
	}
	return nil
}

// Paused reports whether recording of the call is paused now. It is read on
// the packet path for every RTP packet of the call.
func (t *Table) Paused(ref uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byRef[ref]
	if c == nil {
		return false
	}
	p := c.cdr.Paused
	return len(p) > 0 && p[len(p)-1].End.IsZero()
}

// newRefSource seeds the call-reference generator from the system's
// CSPRNG: a reference grants pausecall/listen, so it must not be guessable
// from another one (they were sequential).
func newRefSource() *rand.ChaCha8 {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

// refMask keeps VoIPmonitor's shape: 0x7f + 40 random bits, which reads as
// the 48-bit heap address VoIPmonitor prints (0x7f3a5c012340).
const (
	refPrefix = uint64(0x7f) << 40
	refMask   = uint64(1)<<40 - 1
)

// newRef draws a call reference no live call has.
func (t *Table) newRef() uint64 {
	for {
		ref := refPrefix | t.refs.Uint64()&refMask
		if _, taken := t.byRef[ref]; !taken && ref != refPrefix {
			return ref
		}
	}
}

func (t *Table) newCall(m *sip.Message, meta Meta) *callState {
	t.seq++
	c := &callState{
		seq:        t.seq,
		fromTag:    string(m.FromTag),
		inviteCSeq: m.CSeq,
		firstCSeq:  m.CSeq,
		last:       meta.Time,
	}
	d := &c.cdr
	d.CallID = string(m.CallID)
	d.CallRef = t.newRef()
	d.CallDate = meta.Time
	d.CallEnd = meta.Time
	d.Active = true
	d.VLAN = int(meta.VLAN)
	d.CallerIP, d.CallerPort = meta.Src.Addr(), meta.Src.Port()
	d.CalledIP, d.CalledPort = meta.Dst.Addr(), meta.Dst.Port()
	if disp, uri, _, err := sip.ParseNameAddr(m.From); err == nil {
		d.CallerName = unquote(disp)
		d.Caller, d.CallerDomain = userHost(uri)
		// A number ends at a ';' (sniff.cpp:1780-1789). From without a user
		// part keeps no number whatever callernum_numberonly says (parity
		// DIFFERENCES.md D4).
		d.Caller, _, _ = strings.Cut(d.Caller, ";")
	}
	t.cfg.CallerID.apply(m, d)
	if _, uri, _, err := sip.ParseNameAddr(m.To); err == nil {
		d.Called, d.CalledDomain = userHost(uri)
	}
	if t.cfg.CalledFromURI {
		// sniff.cpp s_detect_callerd::called() and called_domain(): the
		// URI's number when it has one, To's otherwise; the domain alike.
		user, host := userHost(m.RequestURI)
		d.Called = cmp.Or(user, d.Called)
		d.CalledDomain = cmp.Or(host, d.CalledDomain)
	}
	d.PAssertedIdentity = string(m.Header("P-Asserted-Identity"))
	d.RemotePartyID = string(m.Header("Remote-Party-ID"))
	d.CallerUA = string(m.UserAgent())
	t.calls[d.CallID] = c
	t.byRef[d.CallRef] = c
	t.stats.CallsStarted++
	return c
}

// lastDestNumber takes the called number and domain of a later INVITE
// from the caller's side (last_dest_number; sniff.cpp:5319-5335): To's,
// or with CalledFromURI the Request-URI's when it has a number, each only
// when it is not the caller's own number.
func (t *Table) lastDestNumber(m *sip.Message, d *CDR) {
	if t.cfg.CalledFromURI {
		if user, host := userHost(m.RequestURI); user != "" && user != d.Caller {
			d.Called, d.CalledDomain = user, cmp.Or(host, d.CalledDomain)
		}
		return
	}
	if _, uri, _, err := sip.ParseNameAddr(m.To); err == nil {
		if user, host := userHost(uri); user != d.Caller {
			d.Called, d.CalledDomain = user, host
		}
	}
}

// topBranch is the branch parameter of m's first Via.
func topBranch(m *sip.Message) string {
	var b []byte
	m.Headers("Via", func(v []byte) bool {
		if i := bytes.IndexByte(v, ';'); i >= 0 {
			b = sip.Param(v[i:], "branch")
		}
		return false
	})
	return string(b)
}

// recordBranch keeps an INVITE's called numbers by its Via branch
// (sniff.cpp:6027-6041).
func (c *callState) recordBranch(m *sip.Message) {
	br := inviteBranch{branch: topBranch(m)}
	if br.branch == "" {
		return
	}
	if _, uri, _, err := sip.ParseNameAddr(m.To); err == nil {
		br.to, br.toDomain = userHost(uri)
	}
	br.uri, br.uriDomain = userHost(m.RequestURI)
	if br.to == "" && br.uri == "" {
		return
	}
	for i := range c.branches {
		if c.branches[i].branch == br.branch {
			c.branches[i] = br
			return
		}
	}
	if len(c.branches) < maxInviteBranches {
		c.branches = append(c.branches, br)
	}
}

// dstnumOnAnswer sets the called number from the INVITE branch a 2xx
// answers when the call forked on several branches (sniff.cpp:5809-5836):
// the Request-URI's with CalledFromURI, else the Request-URI's only when
// the branches differ more by it than by To; never the caller's own.
func (t *Table) dstnumOnAnswer(c *callState, m *sip.Message) {
	if len(c.branches) < 2 {
		return
	}
	b := topBranch(m)
	if b == "" {
		return
	}
	i := slices.IndexFunc(c.branches, func(x inviteBranch) bool { return x.branch == b })
	if i < 0 {
		return
	}
	br, d := c.branches[i], &c.cdr
	useURI := t.cfg.CalledFromURI
	if !useURI {
		tos, uris := map[string]bool{}, map[string]bool{}
		for _, x := range c.branches {
			tos[x.to], uris[x.uri] = true, true
		}
		useURI = len(uris) > len(tos)
	}
	check := br.to
	if t.cfg.CalledFromURI && br.uri != "" {
		check = br.uri
	}
	if d.Caller == check {
		return
	}
	if useURI {
		d.Called, d.CalledDomain = br.uri, br.uriDomain
	} else {
		d.Called, d.CalledDomain = br.to, br.toDomain
	}
	c.dstnumSet = true
}

// checkOneWay ends the call's one-way state on a reply, as VoIPmonitor's
// check_reset_oneway (calltable.h:2222-2237, called for every SIP message
// of a call: sniff.cpp:5132, 6723): any message from another address than
// the first INVITE's source (another port when that INVITE went to its own
// address), unless it travels on the address pair of one of the call's
// INVITEs (a leg the sniffer sees forwarded). RTP is no reply.
func (c *callState) checkOneWay(m *sip.Message, meta Meta) {
	leg := [2]netip.AddrPort{meta.Src, meta.Dst}
	if m.Request && string(m.Method) == "INVITE" && len(c.legs) < maxOneWayLegs &&
		!slices.Contains(c.legs, leg) && !slices.Contains(c.legs, [2]netip.AddrPort{meta.Dst, meta.Src}) {
		c.legs = append(c.legs, leg) // a reverse INVITE is no leg (sniff.cpp:4970-5050)
	}
	d := &c.cdr
	if meta.Src.Addr() == d.CallerIP &&
		(len(c.legs) == 0 || c.legs[0][1].Addr() != d.CallerIP || meta.Src.Port() == d.CallerPort) {
		return
	}
	if slices.Contains(c.legs, leg) {
		return
	}
	c.replied, c.legs = true, nil
}

// maxOneWayLegs bounds the INVITE address pairs a one-way call keeps.
const maxOneWayLegs = 16

func (c *callState) touch(ts time.Time) {
	if ts.After(c.last) {
		c.last = ts
	}
	if ts.After(c.cdr.CallEnd) {
		c.cdr.CallEnd = ts
	}
}

// retransmission reports whether m repeats, byte for byte and in the same
// direction, one of the call's recent messages.
func (c *callState) retransmission(seed maphash.Seed, m *sip.Message, meta Meta) bool {
	var h maphash.Hash
	h.SetSeed(seed)
	h.Write(m.Raw())
	src := meta.Src.Addr().As16()
	h.Write(src[:])
	sum := h.Sum64() ^ uint64(meta.Src.Port())
	for i := 0; i < len(c.hashes) && i < c.nh; i++ {
		if c.hashes[i] == sum {
			return true
		}
	}
	c.hashes[c.nh%retransWindow] = sum
	c.nh++
	return false
}

func (t *Table) handleRequest(c *callState, m *sip.Message, meta Meta) {
	d := &c.cdr
	if d.CalledUA == "" && c.partyOf(m, meta) == PartyCallee {
		if ua := m.Header("User-Agent"); len(ua) > 0 {
			d.CalledUA = string(ua) // e.g. from the callee's BYE
		}
	}
	switch string(m.Method) {
	case "INVITE":
		if len(m.ToTag) == 0 && meta.Dst.Addr() != d.CallerIP {
			// A proxy forwarding the INVITE: the called side is the last hop
			// (a hairpin back to the caller's own address is not a new hop).
			d.CalledIP, d.CalledPort = meta.Dst.Addr(), meta.Dst.Port()
		}
		if len(m.ToTag) > 0 && !d.ConnectTime.IsZero() {
			d.ReInvites++
		} else if c.ended && c.final && d.ConnectTime.IsZero() {
			// A new INVITE after an auth challenge (401/407) or a failure: the
			// call goes on under the same Call-ID.
			c.ended, c.final = false, false
			d.Active = true
		}
		c.inviteCSeq = m.CSeq
		if t.cfg.UpdateDstnumOnAnswer {
			c.recordBranch(m)
		}
		// sniff.cpp:5320: every INVITE with last_dest_number, those from
		// the caller's IP with sipoverlap.
		overlap := !t.cfg.NoSIPOverlap && meta.Src.Addr() == d.CallerIP
		if (t.cfg.LastDestNumber || overlap) && c.partyOf(m, meta) == PartyCaller {
			t.lastDestNumber(m, d)
		}
		opt.Default(&d.DigestUsername, inviteDigestUser(m))
		t.learnSDP(c, m, c.partyOf(m, meta))
	case "ACK":
		t.learnSDP(c, m, c.partyOf(m, meta))
	case "BYE":
		if !c.byeSeen {
			c.byeSeen = true
			d.ByeTime = meta.Time
			if string(m.FromTag) == c.fromTag {
				d.WhoHanged = HangerCaller
			} else {
				d.WhoHanged = HangerCallee
			}
		}
		reason(m, d)
	case "CANCEL":
		c.canceled = true
		reason(m, d) // VoIPmonitor keeps the Reason of a CANCEL or BYE too
	case "UPDATE":
		t.learnSDP(c, m, c.partyOf(m, meta))
	case "INFO":
		if d, ok := infoDigit(m); ok {
			if len(c.cdr.DTMF) >= MaxDTMF {
				t.stats.EntriesDropped++
				break
			}
			d.Time, d.Src, d.Dst = meta.Time, meta.Src, meta.Dst
			c.cdr.DTMF = append(c.cdr.DTMF, d)
		}
	}
}

// inviteTx is one INVITE transaction as VoIPmonitor times its responses
// (sniff.cpp, invite_sdaddr and its cseq_data): the path the INVITE took,
// its CSeq number, when its first INVITE was seen and when the first 100
// and the first other response came back along that path.
type inviteTx struct {
	src, dst       netip.AddrPort
	cseq           uint32
	at, r100, rXXX time.Time
}

// timeResponses records what the call's response times are made of
// (CDR.Response100, ResponseXXX). Any response of the call counts for
// First; for Min only the first response of each INVITE transaction, sent
// back along the INVITE's path with its CSeq number. An INVITE sent back
// along a path the call's INVITEs took (the callee's re-INVITE), or
// between the same addresses on other ports within the dialog, opens no
// transaction.
func (t *Table) timeResponses(c *callState, m *sip.Message, meta Meta) {
	ts := meta.Time.Truncate(time.Microsecond)
	if m.Request {
		if string(m.Method) != "INVITE" {
			return
		}
		known := false
		for i := range c.txs {
			tx := &c.txs[i]
			if tx.src == meta.Src && tx.dst == meta.Dst {
				if tx.cseq == m.CSeq {
					return // retransmitted or repeated: the first INVITE counts
				}
				known = true
			}
		}
		if !known {
			for i := range c.txs {
				tx := &c.txs[i]
				if tx.src.Addr() != meta.Dst.Addr() || tx.dst.Addr() != meta.Src.Addr() {
					continue
				}
				if tx.src.Port() == meta.Dst.Port() && tx.dst.Port() == meta.Src.Port() ||
					m.CSeq != c.firstCSeq && len(m.ToTag) > 0 {
					return
				}
			}
		}
		if len(c.txs) >= MaxInviteTx {
			t.stats.EntriesDropped++
			return
		}
		c.txs = append(c.txs, inviteTx{src: meta.Src, dst: meta.Dst, cseq: m.CSeq, at: ts})
		return
	}
	if m.StatusCode <= 0 {
		return
	}
	d := &c.cdr.ResponseXXX
	if m.StatusCode == 100 {
		d = &c.cdr.Response100
	}
	if d.First.IsZero() {
		d.First = ts
	}
	for i := range c.txs {
		tx := &c.txs[i]
		if tx.src != meta.Dst || tx.dst != meta.Src || tx.cseq != m.CSeq {
			continue
		}
		r := &tx.rXXX
		if m.StatusCode == 100 {
			r = &tx.r100
		}
		if !r.IsZero() {
			return
		}
		*r = ts
		d.Min, _ = c.minResponse(m.StatusCode == 100)
		return
	}
}

// minResponse is the shortest INVITE → first 100 (trying) or other
// response over the call's transactions; ok is false when none had one.
func (c *callState) minResponse(trying bool) (d time.Duration, ok bool) {
	for i := range c.txs {
		tx := &c.txs[i]
		r := tx.rXXX
		if trying {
			r = tx.r100
		}
		if r.IsZero() || r.Before(tx.at) {
			continue
		}
		if dt := r.Sub(tx.at); !ok || dt < d {
			d, ok = dt, true
		}
	}
	return d, ok
}

// partyOf tells which side sent a request: the caller's dialog tag is the
// From tag of its requests.
func (c *callState) partyOf(m *sip.Message, meta Meta) Party {
	if m.Request {
		if c.fromTag == "" || string(m.FromTag) == c.fromTag {
			return PartyCaller
		}
		return PartyCallee
	}
	// A response comes from the side that did not send the request.
	if c.fromTag == "" || string(m.FromTag) == c.fromTag {
		return PartyCallee
	}
	return PartyCaller
}

func (t *Table) handleResponse(c *callState, m *sip.Message, meta Meta) {
	d := &c.cdr
	code := m.StatusCode
	if !slices.Contains(d.Responses, code) {
		d.Responses = append(d.Responses, code)
	}
	if r := (Response{code, string(m.Reason)}); !slices.Contains(d.SIPResponses, r) {
		if len(d.SIPResponses) < MaxResponses {
			d.SIPResponses = append(d.SIPResponses, r)
		} else {
			t.stats.EntriesDropped++
		}
	}
	// b_ua is the callee's User-Agent header only: VoIPmonitor leaves it
	// empty for a callee that sends just Server (Asterisk does).
	if c.partyOf(m, meta) == PartyCallee && d.CalledUA == "" {
		if ua := m.Header("User-Agent"); len(ua) > 0 {
			d.CalledUA = string(ua)
		}
	}
	switch string(m.CSeqMethod) {
	case "INVITE":
		t.inviteResponse(c, m, meta)
	case "BYE":
		if code >= 200 && c.byeSeen {
			d.Bye = ByeOK
			c.confirmBye(code, meta.Time)
			t.end(c, meta.Time)
		}
	}
}

// confirmBye records the first 2xx to the call's BYE.
func (c *callState) confirmBye(code int, ts time.Time) {
	if code < 300 && c.byeOK == 0 {
		c.byeOK = ts.UnixNano()
	}
}

func (t *Table) inviteResponse(c *callState, m *sip.Message, meta Meta) {
	d := &c.cdr
	code := m.StatusCode
	// The last response to the INVITE names the call's outcome; a late 1xx
	// never overwrites a final answer.
	if code >= 200 || !c.final {
		if d.LastSIPResponseNum != code || d.LastSIPResponse == "" {
			d.LastSIPResponse = fmt.Sprintf("%d %s", code, m.Reason)
		}
		d.LastSIPResponseNum = code
	}
	if code == 100 {
		return
	}
	if code == 488 || code == 606 {
		d.NotAcceptable = true
	}
	if code < 200 {
		if d.ProgressTime.IsZero() {
			d.ProgressTime = meta.Time
		}
		t.learnSDP(c, m, c.partyOf(m, meta))
		return
	}
	if m.CSeq == c.inviteCSeq || !c.final {
		c.final = true
	}
	if code < 300 {
		// Answered: an earlier 401/407 was the normal digest exchange, so the
		// call ends with the normal EndGrace, not the auth grace.
		c.challenged = false
		if t.cfg.UpdateDstnumOnAnswer && !c.dstnumSet {
			t.dstnumOnAnswer(c, m)
		}
		if d.ProgressTime.IsZero() {
			d.ProgressTime = meta.Time // answered without ringing: VoIPmonitor's progress_time
		}
		if d.ConnectTime.IsZero() {
			d.ConnectTime = meta.Time
			d.Bye = ByeAnsweredNoBye
		}
		t.learnSDP(c, m, c.partyOf(m, meta))
		return
	}
	reason(m, d)
	c.challenged = code == 401 || code == 407
	if d.ConnectTime.IsZero() {
		// Rejected, cancelled (487) or challenged: the call is over unless a
		// new INVITE follows within EndGrace.
		t.end(c, meta.Time)
	}
}

func (t *Table) handleLate(c *callState, m *sip.Message, meta Meta) {
	if !m.Request && string(m.CSeqMethod) == "BYE" && m.StatusCode >= 200 && c.byeSeen {
		c.cdr.Bye = ByeOK
		c.cdr.CallEnd = meta.Time
		c.confirmBye(m.StatusCode, meta.Time)
	}
}

// reason keeps the Reason header's Q.850 / SIP cause (RFC 3326).
func reason(m *sip.Message, d *CDR) {
	m.Headers("Reason", func(v []byte) bool {
		proto, params := splitToken(v)
		cause := atoi(sip.Param(params, "cause"))
		text := unquote(sip.Param(params, "text"))
		switch {
		case strings.EqualFold(proto, "Q.850"):
			d.ReasonQ850Cause, d.ReasonQ850Text = cause, text
		case strings.EqualFold(proto, "SIP"):
			d.ReasonSIPCause, d.ReasonSIPText = cause, text
		}
		return true
	})
}

// learnSDP maps the RTP addresses in the message's SDP to the call: party is
// the side that sent the SDP, hence the one that receives on those addresses.
func (t *Table) learnSDP(c *callState, m *sip.Message, party Party) {
	body := sip.SDPBody(m)
	if len(body) == 0 {
		return
	}
	s := &t.sdp
	if err := sdp.Parse(body, s); err != nil {
		return
	}
	hold := false
	for i := 0; i < s.NMedia; i++ {
		md := &s.Media[i]
		if md.Conn.IsValid() && (md.Direction == sdp.SendOnly || md.Direction == sdp.Inactive || md.Conn.IsUnspecified()) {
			hold = true // also for a rejected stream (port 0), as VoIPmonitor
		}
		if md.Port == 0 || !md.Conn.IsValid() {
			continue
		}
		if bytes.Contains(md.Proto, []byte("SAVP")) {
			c.cdr.SRTP = true
		}
		if sdp.IsFax(md) {
			c.cdr.Fax = true
		}
		if md.Conn.IsUnspecified() {
			continue
		}
		party := mediaParty(&c.cdr, md.Conn, party)
		t.addMediaAt(c, md.Conn, party, md)
		if alias, ok := t.cfg.NATAliases[md.Conn]; ok && alias != md.Conn {
			t.addMediaAt(c, alias, party, md) // as VoIPmonitor: same party, same ports
		}
	}
	// Hold is what a request offers (VoIPmonitor: an INVITE with
	// a=inactive, even the first one, is hold "+0"; a 200 OK answering
	// recvonly with sendonly is not).
	if m.Request {
		if hold && !c.onHold {
			if len(c.cdr.Hold) < MaxHolds {
				c.cdr.Hold = append(c.cdr.Hold, t.now)
			} else {
				t.stats.EntriesDropped++
			}
		}
		c.onHold = hold
	}
}

// mediaParty decides whose media an SDP address is. The message direction
// says who sent the SDP, but a B2BUA or a proxy that reuses the Call-ID on
// both legs turns that around; an address equal to exactly one side's SIP
// address is that side's media.
func mediaParty(d *CDR, conn netip.Addr, sender Party) Party {
	caller, callee := conn == d.CallerIP, conn == d.CalledIP
	switch {
	case caller && !callee:
		return PartyCaller
	case callee && !caller:
		return PartyCallee
	}
	return sender
}

// addMediaAt maps the RTP port of md (and its RTCP port, unless muxed) at
// ip to c.
func (t *Table) addMediaAt(c *callState, ip netip.Addr, party Party, md *sdp.Media) {
	t.addMedia(c, netip.AddrPortFrom(ip, md.Port), party, md)
	if md.RTCPMux {
		return
	}
	rtcp := md.RTCPPort
	if rtcp == 0 {
		rtcp = md.Port + 1
	}
	t.addMedia(c, netip.AddrPortFrom(ip, rtcp), party, md)
}

func (t *Table) addMedia(c *callState, addr netip.AddrPort, party Party, md *sdp.Media) {
	if e, ok := t.media.get(addr); !ok || e.c != c || e.party != party {
		t.media.set(addr, mediaEntry{c: c, party: party})
		if !slices.Contains(c.media, addr) {
			if len(c.media) >= MaxMediaAddrs {
				t.forgetMedia(c, c.media[0])
				c.media = c.media[:copy(c.media, c.media[1:])]
				t.stats.MediaEvicted++
			}
			c.media = append(c.media, addr)
		}
	}
	// Told every time, also for an address already known: a re-INVITE may
	// change its codecs or turn it to T.38.
	if t.cfg.OnMedia != nil {
		t.due = append(t.due, deferred{ref: c.cdr.CallRef, addr: addr, party: party, md: md})
	}
}

// forgetMedia unmaps one of c's media addresses (unless another call
// took it since).
func (t *Table) forgetMedia(c *callState, a netip.AddrPort) {
	if e, _ := t.media.get(a); e.c == c {
		t.media.del(a)
	}
}

// seen records RTP/RTCP activity for a call: it keeps the call alive and,
// until a BYE is seen, extends its end time (VoIPmonitor's callend is the
// last packet of the call, but media trailing a BYE does not count).
func (t *Table) seen(c *callState, ts time.Time) {
	if ts.After(t.now) {
		t.now = ts // media keeps the clock exact for SetPaused between SIP messages
	}
	c.heard = true
	if c.byeSeen || c.ended {
		if ts.After(c.last) {
			c.last = ts
		}
		// Media keeps a finished call as its SIP does (VoIPmonitor's
		// shift_destroy_call_at for every RTP packet, sniff.cpp:3200).
		t.putOffEnd(c, ts)
		// Media of a finished call still ends it later, as VoIPmonitor's
		// callend is its last packet, but not after the 2xx to its BYE.
		if (c.byeOK == 0 || ts.UnixNano() <= c.byeOK) && ts.After(c.cdr.CallEnd) {
			c.cdr.CallEnd = ts
		}
	} else {
		c.touch(ts)
	}
}

// putOffEnd: a SIP message of a finished call puts its emission off, so that
// the grace runs from the call's last message, not its end (VoIPmonitor's
// shift_destroy_call_at, calltable.h, on every SIP packet, sniff.cpp): a
// caller retransmitting its CANCEL every 4 s after the 408 keeps the call,
// and its callend, until the last one is answered. MaxDuration bounds it.
func (t *Table) putOffEnd(c *callState, ts time.Time) {
	if c.ended && ts.After(c.endedAt) && ts.Sub(c.cdr.CallDate) < t.cfg.MaxDuration {
		c.endedAt = ts
	}
}

// end marks a call finished; it is emitted once EndGrace has passed since
// it ended or since its last SIP message (putOffEnd).
func (t *Table) end(c *callState, ts time.Time) {
	if c.ended {
		return
	}
	c.ended = true
	c.endedAt = ts
}

// Tick advances the table's clock (packet time in replay, wall time live)
// and emits calls whose grace or timeout has passed.
func (t *Table) Tick(now time.Time) {
	t.mu.Lock()
	defer t.unlock()
	t.advance(now)
}

// gcEvery is how often the table looks for calls to emit: a call's CDR and
// its listeners' end come at most this long after its grace.
const gcEvery = 250 * time.Millisecond

func (t *Table) advance(now time.Time) {
	if now.After(t.now) {
		t.now = now
	}
	if t.now.Sub(t.lastGC) < gcEvery {
		return
	}
	t.lastGC = t.now
	var done []*callState
	for _, c := range t.calls {
		switch {
		case c.ended && !c.challenged && t.graceOver(c):
		case c.ended && c.challenged && t.now.Sub(c.endedAt) >= t.cfg.AuthGrace:
		case !c.ended && t.cfg.IdleTimeout > 0 && t.timedOut(c):
		default:
			continue
		}
		done = append(done, c)
	}
	t.emit(done)
	t.expireRegisters()
}

// VoIPmonitor keeps a call past its last packet (SIP or RTP) 15 s once it
// was cancelled or answered 487, and 60 s after a BYE with no 2xx, instead
// of 5 s (calltable.h:2396-2413 shift_destroy_call_at, called for every
// packet: sniff.cpp:5165, 6203 SIP, 3200 RTP; sniff.cpp:5489 the BYE).
const (
	cancelGrace = 15 * time.Second
	byeGrace    = 60 * time.Second
)

// graceOver tells whether a finished call's grace has passed: EndGrace
// after its end or its last SIP message (putOffEnd), or cancelGrace after
// its last packet once it was cancelled or answered 487.
func (t *Table) graceOver(c *callState) bool {
	if c.byeOK == 0 && (c.canceled || c.cdr.LastSIPResponseNum == 487) {
		since := c.endedAt
		if c.last.After(since) {
			since = c.last
		}
		return t.now.Sub(since) >= max(t.cfg.EndGrace, cancelGrace)
	}
	return t.now.Sub(c.endedAt) >= t.cfg.EndGrace
}

// zombieTimeout ends a call that got neither a 18x, a 2xx nor media this
// long after its first packet (VoIPmonitor's fixed 300 s).
const zombieTimeout = 300 * time.Second

// timedOut tells whether a call its signalling has not ended is over by
// VoIPmonitor's timeouts (calltable.cpp, Calltable::cleanup), and sets its
// bye code as VoIPmonitor's: byeGrace after its last packet when its BYE
// got no 2xx (2); with media seen, IdleTimeout after its last
// packet (104); without, SIPOnlyTimeout after its first (108); MaxDuration
// after its first (102); a zombie, zombieTimeout after its first (107);
// still one-way, OneWayTimeout after its last packet (105).
func (t *Table) timedOut(c *callState) bool {
	age := t.now.Sub(c.cdr.CallDate)
	switch { // in VoIPmonitor's order
	case c.byeSeen && c.byeOK == 0 && t.now.Sub(c.last) >= byeGrace:
		c.cdr.Bye = ByeNoOKForBye // its destroy_call_at, before the timeouts
	case c.heard && t.now.Sub(c.last) >= t.cfg.IdleTimeout:
		c.cdr.Bye = ByeRTPTimeout
	case !c.heard && age >= t.cfg.SIPOnlyTimeout:
		c.cdr.Bye = ByeSIPOnlyTimeout
	case age >= t.cfg.MaxDuration:
		c.cdr.Bye = ByeTimeout
	case !c.heard && age >= zombieTimeout && c.cdr.ProgressTime.IsZero() && c.cdr.ConnectTime.IsZero():
		c.cdr.Bye = ByeZombie
	case !c.replied && t.now.Sub(c.last) >= t.cfg.OneWayTimeout:
		// checked after the others (calltable.cpp:13575-13599); bye 105
		// (calltable.cpp:7405-7406)
		c.cdr.Bye = ByeOneWay
	default:
		return false
	}
	return true
}

// Flush ends every call still open (end of a capture, or shutdown) and emits it.
func (t *Table) Flush() {
	t.mu.Lock()
	defer t.unlock()
	done := make([]*callState, 0, len(t.calls))
	for _, c := range t.calls {
		c.cdr.ForcedClose = true
		done = append(done, c)
	}
	t.emit(done)
	t.closeRegisters()
}

// inviteDigestUser is the username of an INVITE's digest credentials.
func inviteDigestUser(m *sip.Message) string {
	for _, h := range []string{"Authorization", "Proxy-Authorization"} {
		if a := m.Header(h); len(a) > 0 {
			return digestParam(a, "username")
		}
	}
	return ""
}

// emit removes calls from the table and hands their CDRs out in call order.
func (t *Table) emit(done []*callState) {
	sort.Slice(done, func(i, j int) bool { return done[i].seq < done[j].seq })
	for _, c := range done {
		delete(t.calls, c.cdr.CallID)
		delete(t.byRef, c.cdr.CallRef)
		for _, a := range c.media {
			t.forgetMedia(c, a)
		}
		d := &c.cdr
		d.Active = false
		if n := len(d.Paused); n > 0 && d.Paused[n-1].End.IsZero() {
			d.Paused[n-1].End = d.CallEnd
		}
		if c.byeSeen && d.Bye != ByeOK {
			d.Bye = ByeNoOKForBye
		}
		t.stats.CallsEnded++
		if t.cfg.OnCallEnd != nil {
			t.due = append(t.due, deferred{cdr: d})
		}
	}
}

// Active returns snapshots of the calls in progress, oldest first.
func (t *Table) Active() []CDR {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := make([]*callState, 0, len(t.calls))
	for _, c := range t.calls {
		if !c.ended {
			live = append(live, c)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].seq < live[j].seq })
	out := make([]CDR, len(live))
	for i, c := range live {
		out[i] = c.snapshot()
	}
	return out
}

// ActiveCount is the number of calls in progress (cheaper than Active).
func (t *Table) ActiveCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.calls {
		if !c.ended {
			n++
		}
	}
	return n
}

// Lookup returns a snapshot of one active call by callreference.
func (t *Table) Lookup(ref uint64) (CDR, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byRef[ref]
	if c == nil {
		return CDR{}, false
	}
	return c.snapshot(), true
}

// LookupCallID returns the callreference of an active call by SIP Call-ID.
func (t *Table) LookupCallID(callID string) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.calls[callID]
	if c == nil {
		return 0, false
	}
	return c.cdr.CallRef, true
}

func (c *callState) snapshot() CDR {
	d := c.cdr
	d.Responses = slices.Clone(d.Responses)
	d.SIPResponses = slices.Clone(d.SIPResponses)
	d.Hold = slices.Clone(d.Hold)
	d.DTMF = slices.Clone(d.DTMF)
	d.Paused = slices.Clone(d.Paused)
	d.Streams = slices.Clone(d.Streams)
	return d
}

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}
