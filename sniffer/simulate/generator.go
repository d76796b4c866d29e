package simulate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Fixed addresses of the simulated network.
var (
	PBXAddr4 = netip.MustParseAddr("192.0.2.10")
	PBXAddr6 = netip.MustParseAddr("2001:db8::10")
)

// SIPPort is the PBX's (and UDP callers') SIP port.
const SIPPort = 5060

const (
	ms = int64(time.Millisecond)
	us = int64(time.Microsecond)
)

// outcome is how a call attempt ends.
type outcome uint8

const (
	answered outcome = iota
	busy
	cancelled
	unanswered
)

// sipStep is one SIP message of a dialog's schedule.
type sipStep struct {
	at  int64
	msg msgKind
}

// rtpStream is the sender state of one RTP stream.
type rtpStream struct {
	truth int // index into Truth.Streams
	ssrc  uint32
	seq0  uint16
	ts0   uint32
	count int32
	burst int // packets still to drop in the current burst
	frame *[samplesPerFrame]byte
}

// callState is one INVITE dialog or REGISTER transaction in progress.
type callState struct {
	reg   bool
	idx   int
	truth int // index into Truth.Calls or Truth.Registers
	host  host
	cport uint16    // client's SIP port
	tcp   [2]uint32 // TCP sequence numbers, or SCTP TSNs, per direction
	held  []byte    // a PBX message waiting to share the next TCP segment

	callID, caller, called, fromTag, toTag, branch string

	outcome  outcome
	byCaller bool
	pt       uint8
	rtpPort  [2]uint16 // caller, PBX
	media    *host     // the PBX's media address
	rtp      [2]rtpStream
	steps    []sipStep
}

// frame is one generated packet; data is reused once it has been read.
type frame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// Generator yields the frames of a simulated capture in arrival order. It
// implements gopacket.PacketDataSource and ZeroCopyPacketDataSource. It is
// not safe for concurrent use.
type Generator struct {
	o        Options
	rng      *rand.Rand
	q        eventQueue
	b        *builder
	pbx      host
	media    []host // the PBX's media addresses: pbx, then more above portBlock concurrent calls
	truth    Truth
	interval int64 // ns between call attempts

	nextCall, active, nextReg int
	blocked                   bool // a call attempt waits for a free slot

	frames    []frame
	nOut, pos int
	msg, sdp  []byte
	rtpBuf    [12 + 1500]byte
	tones     [2][2][samplesPerFrame]byte // [alaw][direction]
	coded     *encodedTones               // a codec other than G.711
	emitAt    int64
	err       error
}

// New returns a Generator for o, or an error wrapping ErrOption.
func New(o Options) (*Generator, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	o.Start = o.Start.Truncate(time.Microsecond) // pcap keeps µs: so do the truth times
	g := &Generator{
		o:        o,
		rng:      rand.New(rand.NewPCG(uint64(o.Seed), 0x9e3779b97f4a7c15)),
		interval: max(1, int64(1e6/o.CPS+0.5)) * us,
	}
	g.b = newBuilder(o.VLAN, o.IPv6, uint16(g.rng.Uint32()))
	g.b.encap = o.Encap
	pbx := PBXAddr4
	if o.IPv6 {
		pbx = PBXAddr6
	}
	g.pbx = newHost(pbx, [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01})
	g.media = []host{g.pbx}
	for b := 1; b*portBlock < o.Concurrency; b++ {
		a := pbx.As16()
		a[15] += byte(b)
		addr := netip.AddrFrom16(a)
		if pbx.Is4() {
			addr = addr.Unmap()
		}
		g.media = append(g.media, newHost(addr, [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}))
	}
	for a := range 2 {
		g.tones[a][0] = toneFrame(o.Tones[0], a == 1)
		g.tones[a][1] = toneFrame(o.Tones[1], a == 1)
	}
	if _, ok := encodedCodecs[o.Codec]; ok {
		if g.coded, err = newEncodedTones(o.Codec, o.Tones, o.Duration); err != nil {
			return nil, err
		}
	}
	if o.Calls > 0 {
		g.q.push(event{at: 0, kind: evSpawn})
	}
	if o.Registers > 0 {
		g.q.push(event{at: g.interval / 2, kind: evRegister})
	}
	return g, nil
}

// LinkType is the link type of every frame: Ethernet.
func (g *Generator) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

// Truth describes what was generated so far; it is complete after io.EOF.
func (g *Generator) Truth() *Truth { return &g.truth }

// ZeroCopyReadPacketData returns the next frame, or io.EOF after the last
// one. The data is valid until the next call.
func (g *Generator) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	for g.pos >= g.nOut {
		if g.err != nil {
			return nil, gopacket.CaptureInfo{}, g.err
		}
		if g.q.len() == 0 {
			return nil, gopacket.CaptureInfo{}, io.EOF
		}
		g.pos, g.nOut = 0, 0
		// Handlers may push events (never before the top one) while the top
		// is still in place; an RTP send reschedules itself in place.
		e := *g.q.top()
		if next, again := g.handle(e); again {
			g.q.replaceTop(next)
		} else {
			g.q.pop()
		}
	}
	f := &g.frames[g.pos]
	g.pos++
	return f.data, f.ci, nil
}

// ReadPacketData returns a copy of the next frame, or io.EOF after the last one.
func (g *Generator) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := g.ZeroCopyReadPacketData()
	if err != nil {
		return nil, ci, err
	}
	return append([]byte(nil), data...), ci, nil
}

// Frame is one generated frame and its capture info.
type Frame struct {
	Data []byte
	CI   gopacket.CaptureInfo
}

// Frames generates all of o's traffic in memory (tests and small captures;
// WritePcap streams big ones) with the truth about it.
func Frames(o Options) ([]Frame, *Truth, error) {
	g, err := New(o)
	if err != nil {
		return nil, nil, err
	}
	var out []Frame
	for {
		data, ci, err := g.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out, g.Truth(), nil
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, Frame{data, ci})
	}
}

// handle runs e; when it returns again, next replaces e in the queue.
func (g *Generator) handle(e event) (next event, again bool) {
	switch e.kind {
	case evSpawn:
		g.spawn(e.at)
	case evSIP:
		g.sipStep(e)
	case evRTP:
		return g.rtpSend(e)
	case evArrive:
		g.sendRTP(e.at, e.c, e.dir, e.rtpSeq, e.rtpTS, e.marker)
	case evRegister:
		g.startRegister(e.at)
		if g.nextReg < g.o.Registers {
			g.q.push(event{at: e.at + g.interval, kind: evRegister})
		}
	}
	return event{}, false
}

func (g *Generator) spawn(at int64) {
	if g.nextCall >= g.o.Calls {
		return
	}
	if g.active >= g.o.Concurrency {
		g.blocked = true
		return
	}
	g.startCall(at)
	if g.nextCall < g.o.Calls {
		g.q.push(event{at: at + g.interval, kind: evSpawn})
	}
}

// uniform returns a random duration in [0, span] ns in whole microseconds.
func (g *Generator) uniform(span int64) int64 {
	return g.rng.Int64N(span/us+1) * us
}

func (g *Generator) tag() string { return strconv.FormatUint(uint64(g.rng.Uint32())|1<<32, 16)[1:] }

func (g *Generator) startCall(t0 int64) {
	i := g.nextCall
	g.nextCall++
	g.active++
	o := &g.o
	d := &callState{idx: i, cport: SIPPort}
	clientAddr := g.client(d, netip.AddrFrom4([4]byte{10, byte(1 + i>>16), byte(i >> 8), byte(i)}), 1, i+1,
		[6]byte{0x02, 0x01, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}, i)
	d.callID = fmt.Sprintf("sim-%d-%d@%s", o.Seed, i, g.pbx.uri)
	d.caller = strconv.Itoa(10_000_000 + i)
	d.called = strconv.Itoa(20_000_000 + i)
	d.fromTag, d.toTag = g.tag(), g.tag()
	d.branch = fmt.Sprintf("z9hG4bK-%d-%d", o.Seed, i)
	d.rtpPort = [2]uint16{uint16(20000 + 2*(i%20000)), uint16(10000 + 2*(i%portBlock))}
	d.media = &g.media[i/portBlock%len(g.media)]

	ptime := g.draw(d)

	ct := CallTruth{
		CallID: d.callID, Caller: d.caller, Called: d.called,
		CallerSIP: netip.AddrPortFrom(clientAddr, d.cport), PBXSIP: netip.AddrPortFrom(g.pbx.addr, SIPPort),
		Start: g.time(t0),
	}
	steps := make([]sipStep, 0, 9)
	add := func(at int64, m msgKind) { steps = append(steps, sipStep{at: at, msg: m}) }
	add(t0, mInvite)
	add(t0+5*ms, mTrying)
	switch d.outcome {
	case answered:
		add(t0+30*ms, mRinging)
		tOK := t0 + time.Second.Nanoseconds() + g.uniform(2*time.Second.Nanoseconds())
		tAck := tOK + 20*ms
		add(tOK, mOK)
		add(tAck, mAck)
		g.startStreams(d, clientAddr, tAck, int32(o.Duration/ptime))
		tBye := tAck + o.Duration.Nanoseconds() + 40*ms
		add(tBye, mBye)
		add(tBye+15*ms, mByeOK)
		ct.Connect, ct.FinalCode, ct.Bye = g.time(tOK), 200, 3
		ct.WhoHanged = "callee"
		if d.byCaller {
			ct.WhoHanged = "caller"
		}
	case busy:
		t := t0 + 100*ms + g.uniform(500*ms)
		add(t, mBusy)
		add(t+10*ms, mAckErr)
		ct.FinalCode = 486
	case cancelled:
		add(t0+30*ms, mRinging)
		t := t0 + time.Second.Nanoseconds() + g.uniform(3*time.Second.Nanoseconds())
		add(t, mCancel)
		add(t+10*ms, mCancelOK)
		add(t+12*ms, mTerminated)
		add(t+25*ms, mAckErr)
		ct.FinalCode = 487
	case unanswered:
		add(t0+30*ms, mRinging)
		t := t0 + 30*ms + o.Duration.Nanoseconds()
		add(t, mUnavailable)
		add(t+10*ms, mAckErr)
		ct.FinalCode = 480
	}
	ct.End = g.time(steps[len(steps)-1].at)
	d.steps = steps
	d.truth = len(g.truth.Calls)
	g.truth.Calls = append(g.truth.Calls, ct)
	g.q.push(event{at: t0, kind: evSIP, c: d})
}

// draw draws a call's outcome (answered, busy, cancelled, unanswered as
// Options' shares), its codec and who hangs up; it returns the packet time.
func (g *Generator) draw(d *callState) (ptime time.Duration) {
	o := &g.o
	u := g.rng.Float64() * 100
	switch {
	case u < o.Busy:
		d.outcome = busy
	case u < o.Busy+o.Cancelled:
		d.outcome = cancelled
	case u < o.Busy+o.Cancelled+o.Unanswered:
		d.outcome = unanswered
	}
	alaw := o.Codec == CodecPCMA || (o.Codec == CodecMixed && g.rng.IntN(2) == 1)
	if alaw {
		d.pt = 8
	}
	ptime = Ptime
	if g.coded != nil {
		d.pt, ptime = g.coded.pt, g.coded.ptime
	}
	d.byCaller = g.rng.IntN(2) == 0
	return ptime
}

// startStreams sets up an answered call's two RTP streams of count packets
// (SSRC, first sequence number and timestamp drawn; their truth recorded)
// and queues each one's first packet shortly after the ACK at tAck.
func (g *Generator) startStreams(d *callState, clientAddr netip.Addr, tAck int64, count int32) {
	for dir := range 2 {
		s := &d.rtp[dir]
		s.ssrc, s.seq0, s.ts0 = g.rng.Uint32(), uint16(g.rng.Uint32()), g.rng.Uint32()
		s.count = count
		if g.coded == nil {
			s.frame = &g.tones[d.pt/8][dir]
		}
		src := netip.AddrPortFrom(clientAddr, d.rtpPort[0])
		dst := netip.AddrPortFrom(d.media.addr, d.rtpPort[1])
		if dir == 1 {
			src, dst = dst, src
		}
		s.truth = len(g.truth.Streams)
		g.truth.Streams = append(g.truth.Streams, StreamTruth{
			CallID: d.callID, PT: d.pt, Direction: dir, SSRC: s.ssrc, Src: src, Dst: dst,
		})
		start := tAck + 1*ms + g.uniform(19*ms)
		g.q.push(event{at: start, kind: evRTP, c: d, dir: uint8(dir)})
	}
}

// addr6 is 2001:db8:net::n.
func addr6(net, n int) netip.Addr {
	var a [16]byte
	copy(a[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(net)})
	binary.BigEndian.PutUint32(a[12:], uint32(n))
	return netip.AddrFrom16(a)
}

// client places d's client host at v4 (at 2001:db8:net::n6 with IPv6) with
// the given MAC, and sets its SIP port (TCP: 40000+k%20000) and TCP sequence
// numbers for the capture's transport. It returns the client's address.
func (g *Generator) client(d *callState, v4 netip.Addr, net, n6 int, mac [6]byte, k int) netip.Addr {
	addr := v4
	if g.o.IPv6 {
		addr = addr6(net, n6)
	}
	d.host = newHost(addr, mac)
	if g.o.Transport == TransportTCP {
		d.cport = uint16(40000 + k%20000)
	}
	if g.o.Transport == TransportTCP || g.o.Transport == TransportSCTP {
		d.tcp = [2]uint32{g.rng.Uint32(), g.rng.Uint32()}
	}
	return addr
}

func (g *Generator) startRegister(t0 int64) {
	j := g.nextReg
	g.nextReg++
	o := &g.o
	d := &callState{reg: true, idx: j, cport: SIPPort}
	clientAddr := g.client(d, netip.AddrFrom4([4]byte{172, byte(16 + (j+1)>>16), byte((j + 1) >> 8), byte(j + 1)}), 2, j+1,
		[6]byte{0x02, 0x02, 0, byte(j >> 16), byte(j >> 8), byte(j)}, j)
	d.callID = fmt.Sprintf("simreg-%d-%d@%s", o.Seed, j, g.pbx.uri)
	d.caller = strconv.Itoa(30_000_000 + j)
	d.fromTag, d.toTag = g.tag(), g.tag()
	d.branch = fmt.Sprintf("z9hG4bK-r%d-%d", o.Seed, j)

	rt := RegisterTruth{CallID: d.callID, User: d.caller, Src: netip.AddrPortFrom(clientAddr, d.cport),
		Time: g.time(t0), Attempts: 1, FinalCode: 200}
	steps := []sipStep{{t0, mRegister}}
	u := g.rng.Float64() * 100
	switch {
	case u < o.RegisterAuth:
		steps = append(steps, sipStep{t0 + 10*ms, mUnauthorized}, sipStep{t0 + 40*ms, mRegisterAuth}, sipStep{t0 + 60*ms, mRegOK})
		rt.Attempts = 2
	case u < o.RegisterAuth+o.RegisterForbidden:
		steps = append(steps, sipStep{t0 + 10*ms, mUnauthorized}, sipStep{t0 + 40*ms, mRegisterAuth}, sipStep{t0 + 60*ms, mForbidden})
		rt.Attempts, rt.FinalCode = 2, 403
	default:
		steps = append(steps, sipStep{t0 + 20*ms, mRegOK})
	}
	d.steps = steps
	d.truth = len(g.truth.Registers)
	g.truth.Registers = append(g.truth.Registers, rt)
	g.q.push(event{at: t0, kind: evSIP, c: d})
}

func (g *Generator) time(at int64) time.Time { return g.o.Start.Add(time.Duration(at)) }

// sipStep sends step e.n of dialog e.c and schedules the next one.
func (g *Generator) sipStep(e event) {
	d := e.c
	n := int(e.n)
	m := d.steps[n].msg
	msg, fromClient := g.sipMessage(d, m)
	g.truth.SIP++
	last := n+1 == len(d.steps)
	if g.o.Transport == TransportTCP && g.o.TCPCoalesce && !fromClient && (m == mTrying || m == mCancelOK) &&
		!last && !d.steps[n+1].msg.fromClient(d) {
		d.held = append(d.held[:0], msg...)
	} else {
		g.sendSIP(e.at, d, fromClient, msg)
	}
	if !last {
		g.q.push(event{at: d.steps[n+1].at, kind: evSIP, c: d, n: int32(n + 1)})
		return
	}
	if !d.reg {
		g.active--
		if g.blocked {
			g.blocked = false
			g.q.push(event{at: e.at, kind: evSpawn})
		}
	}
}

// sendSIP emits msg between dialog d's client and the PBX.
func (g *Generator) sendSIP(at int64, d *callState, fromClient bool, msg []byte) {
	src, dst := &d.host, &g.pbx
	sport, dport := d.cport, uint16(SIPPort)
	if !fromClient {
		src, dst, sport, dport = dst, src, dport, sport
	}
	g.emitAt = at
	if g.o.Transport == TransportTCP {
		dir := 0
		if !fromClient {
			dir = 1
		}
		if len(d.held) > 0 && !fromClient {
			d.held = append(d.held, msg...)
			msg, d.held = d.held, nil
		}
		hdr := 40
		if g.o.IPv6 {
			hdr = 60
		}
		mss := g.o.MTU - hdr
		for off := 0; off < len(msg); off += mss {
			end := min(off+mss, len(msg))
			data, err := g.b.tcpFrame(src, dst, sport, dport, d.tcp[dir], d.tcp[1-dir], end == len(msg), msg[off:end])
			if err != nil {
				g.err = err
				return
			}
			d.tcp[dir] += uint32(end - off)
			g.emit(data)
		}
		return
	}
	if g.o.Transport == TransportSCTP {
		dir := 0
		if !fromClient {
			dir = 1
		}
		hdr := 20 + 12 + 16
		if g.o.IPv6 {
			hdr += 20
		}
		chunk := g.o.MTU - hdr
		for off := 0; off < len(msg); off += chunk {
			end := min(off+chunk, len(msg))
			// Each association gets its own verification tag (peers tell
			// associations apart by it); TSNs start at a random value.
			vtag := d.tcp[1-dir] ^ 0x5eed0000
			data, err := g.b.sctpFrame(src, dst, sport, dport, vtag, d.tcp[dir], off == 0, end == len(msg), msg[off:end])
			if err != nil {
				g.err = err
				return
			}
			d.tcp[dir]++ // the TSN of the direction
			g.emit(data)
		}
		return
	}
	if !g.o.IPv6 && 28+len(msg) > g.o.MTU {
		if err := g.b.udpFragments(src, dst, sport, dport, msg, g.o.MTU, g.emit); err != nil {
			g.err = err
		}
		return
	}
	data, err := g.b.udpFrame(src, dst, sport, dport, msg)
	if err != nil {
		g.err = err
		return
	}
	g.emit(data)
}

// rtpSend handles the nominal send time of packet e.n of a stream: loss,
// then jitter; it returns the stream's next packet, if any.
func (g *Generator) rtpSend(e event) (event, bool) {
	d := e.c
	s := &d.rtp[e.dir]
	n := e.n
	seq := s.seq0 + uint16(n)
	step, ptime := uint32(samplesPerFrame), Ptime
	if g.coded != nil {
		step, ptime = g.coded.tsStep, g.coded.ptime
	}
	ts := s.ts0 + uint32(n)*step
	st := &g.truth.Streams[s.truth]
	st.Sent++
	if g.drop(s, n) {
		st.Dropped++
	} else if g.o.Jitter > 0 {
		if delay := g.uniform(int64(g.o.Jitter)); delay > 0 {
			g.q.push(event{at: e.at + delay, kind: evArrive, c: d, dir: e.dir, rtpSeq: seq, rtpTS: ts, marker: n == 0})
		} else {
			g.sendRTP(e.at, d, e.dir, seq, ts, n == 0)
		}
	} else {
		g.sendRTP(e.at, d, e.dir, seq, ts, n == 0)
	}
	if n+1 < s.count {
		e.at += int64(ptime)
		e.n++
		return e, true
	}
	return event{}, false
}

// drop decides whether packet n of s is lost. The first and last packets are
// never lost, so loss counted from sequence numbers is exact.
func (g *Generator) drop(s *rtpStream, n int32) bool {
	if n == 0 || n == s.count-1 {
		return false
	}
	if s.burst > 0 {
		s.burst--
		return true
	}
	if g.o.BurstRate > 0 && g.rng.Float64()*100 < g.o.BurstRate {
		s.burst = g.o.BurstLen - 1
		return g.o.BurstLen > 0
	}
	return g.o.Loss > 0 && g.rng.Float64()*100 < g.o.Loss
}

func (g *Generator) sendRTP(at int64, d *callState, dir uint8, seq uint16, ts uint32, marker bool) {
	s := &d.rtp[dir]
	p := g.rtpBuf[:]
	p[0] = 0x80
	p[1] = d.pt
	if marker {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], s.ssrc)
	if g.coded != nil {
		loop := g.coded.payload[dir]
		p = p[:12+copy(p[12:], loop[int(seq-s.seq0)%len(loop)])]
	} else {
		p = p[:12+copy(p[12:], s.frame[:])]
	}
	src, dst := &d.host, d.media
	sport, dport := d.rtpPort[0], d.rtpPort[1]
	if dir == 1 {
		src, dst, sport, dport = dst, src, dport, sport
	}
	data, err := g.b.udpFrame(src, dst, sport, dport, p)
	if err != nil {
		g.err = err
		return
	}
	g.emitAt = at
	g.emit(data)
}

// emit queues a copy of data as a frame at g.emitAt.
func (g *Generator) emit(data []byte) {
	if g.nOut == len(g.frames) {
		g.frames = append(g.frames, frame{})
	}
	f := &g.frames[g.nOut]
	g.nOut++
	f.data = append(f.data[:0], data...)
	f.ci = gopacket.CaptureInfo{Timestamp: g.time(g.emitAt), CaptureLength: len(data), Length: len(data)}
	g.truth.Frames++
}
