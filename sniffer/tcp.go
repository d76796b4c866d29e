package sniffer

import (
	"net/netip"
	"time"

	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/sip"
)

// SIP over TCP: one sip.Stream per direction of a connection, fed in sequence
// order. Retransmitted bytes are skipped; a gap (lost segment) resets the
// stream, which then resyncs on the next start line. A message is delivered
// with the time of the segment that carried its first byte, as VoIPmonitor
// stamps a message reassembled from segments (sniff.cpp,
// TcpReassemblySip::complete: the first segment's packet with all the data).

const (
	// maxTCPFlows bounds the SIP-over-TCP reassembly state: each flow holds
	// at most one message (sip.DefaultStreamMax), so 4096 flows cap it near
	// 256 MiB even under a flood of half-sent messages.
	maxTCPFlows = 4096
	tcpFlowIdle = 5 * time.Minute
	seqUnknown  = -1
)

type flowKey struct{ src, dst netip.AddrPort }

type tcpFlow struct {
	stream sip.Stream
	ws     wsFlow
	next   int64 // next expected sequence number, or seqUnknown
	last   time.Time
	begun  time.Time // the segment that began the bytes buffered (a message in progress)

	key          flowKey
	newer, older *tcpFlow // recency list: lru.newer is the most recent flow
}

// tcpFlows is the flow table: a map for lookup and a recency list (most
// recently seen at the head, longest idle at the tail), so making room and
// expiring cost O(1) per flow instead of a scan of the table.
type tcpFlows struct {
	flows     map[flowKey]*tcpFlow
	lru       tcpFlow // sentinel: lru.older is the newest flow, lru.newer the oldest
	evicted   uint64  // flows dropped to make room (reported in Stats)
	wsDropped uint64  // websocket flows given up over a size limit
}

func newTCPFlows() *tcpFlows {
	t := &tcpFlows{flows: make(map[flowKey]*tcpFlow)}
	t.lru.newer, t.lru.older = &t.lru, &t.lru
	return t
}

func (t *tcpFlows) unlink(f *tcpFlow) {
	f.newer.older, f.older.newer = f.older, f.newer
	f.newer, f.older = nil, nil
}

// touch makes f the most recently seen flow.
func (t *tcpFlows) touch(f *tcpFlow) {
	if f.newer != nil {
		t.unlink(f)
	}
	f.newer, f.older = &t.lru, t.lru.older
	t.lru.older.newer = f
	t.lru.older = f
}

func (t *tcpFlows) remove(f *tcpFlow) {
	t.unlink(f)
	delete(t.flows, f.key)
}

// oldest is the flow idle the longest, or nil.
func (t *tcpFlows) oldest() *tcpFlow {
	if f := t.lru.newer; f != &t.lru {
		return f
	}
	return nil
}

func (t *tcpFlows) evictOldest() {
	if f := t.oldest(); f != nil {
		t.remove(f)
	}
}

// deliverFunc receives a message of segment p that began at the time at (p's
// own time, or an earlier segment's when the message spans segments).
type deliverFunc func(p *decode.Packet, msg []byte, at time.Time)

// handle follows a segment of a SIP port's flow.
func (t *tcpFlows) handle(p *decode.Packet, deliver deliverFunc, discarded *uint64) {
	t.follow(p, nil, deliver, discarded)
}

// follow feeds a segment to its flow. With start set (a port not configured
// as SIP) a flow not followed yet begins only on a segment whose payload
// starts a message (detected per direction: a response stream begins with
// "SIP/2.0"); follow reports false when it did not take the segment. One
// flow lookup serves both the decision and the reassembly.
func (t *tcpFlows) follow(p *decode.Packet, start func([]byte) bool, deliver deliverFunc, discarded *uint64) bool {
	key := flowKey{p.Src, p.Dst}
	f := t.flows[key]
	if f == nil && start != nil && (len(p.Payload) == 0 || !start(p.Payload)) {
		return false
	}
	if p.TCPFlags&(decode.FlagRST|decode.FlagFIN) != 0 && len(p.Payload) == 0 {
		if f != nil {
			*discarded += uint64(f.stream.Discarded())
			t.remove(f)
		}
		return true
	}
	if f == nil {
		if len(t.flows) >= maxTCPFlows {
			// Full: the flow idle the longest makes room, so a flood of
			// stale connections cannot lock out a new phone's connection.
			t.evictOldest()
			t.evicted++
		}
		f = &tcpFlow{next: seqUnknown, key: key}
		t.flows[key] = f
	}
	f.last = p.Time
	t.touch(f)
	seq := int64(p.TCPSeq)
	if p.TCPFlags&decode.FlagSYN != 0 {
		f.next = (seq + 1) & 0xffffffff
		f.stream.Reset()
		return true
	}
	data := p.Payload
	if len(data) == 0 {
		return true
	}
	if f.next != seqUnknown {
		d := int32(uint32(seq) - uint32(f.next)) // signed distance with wrap
		switch {
		case d < 0 && int(-d) >= len(data):
			return true // pure retransmission
		case d < 0:
			data = data[-d:] // partial overlap
		case d > 0:
			f.stream.Reset() // bytes lost: resync on the next start line
		}
	}
	f.next = (int64(p.TCPSeq) + int64(len(p.Payload))) & 0xffffffff
	if f.ws.state == wsNone && f.stream.Buffered() == 0 && looksLikeHTTP(data) {
		f.ws.state = wsHandshake
	}
	// The first message out of this segment began where the bytes already
	// buffered did; any later one began in this segment.
	at := p.Time
	if f.buffered() > 0 {
		at = f.begun
	}
	emit := func(msg []byte) {
		deliver(p, msg, at)
		at = p.Time
	}
	if f.ws.state != wsNone {
		was := f.ws.dropped()
		f.ws.feed(data, emit)
		if !was && f.ws.dropped() {
			t.wsDropped++
		}
	} else {
		f.stream.Write(data)
		for {
			msg, err := f.stream.Next()
			if err != nil {
				break
			}
			emit(msg)
		}
	}
	f.begun = at
	return true
}

// buffered is how many bytes of the flow wait for the rest of a message.
func (f *tcpFlow) buffered() int {
	if f.ws.state != wsNone {
		return len(f.ws.buf) + len(f.ws.msg)
	}
	return f.stream.Buffered()
}

// expire forgets flows idle longer than tcpFlowIdle, oldest first.
func (t *tcpFlows) expire(now time.Time) {
	for f := t.oldest(); f != nil && now.Sub(f.last) > tcpFlowIdle; f = t.oldest() {
		t.remove(f)
	}
}
