package sniffer

import (
	"net/netip"
	"time"

	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/sip"
)

// SIP over TCP: one sip.Stream per direction of a connection, fed in sequence
// order. Retransmitted bytes are skipped; a gap (lost segment) resets the
// stream, which then resyncs on the next start line.

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
}

type tcpFlows struct {
	flows   map[flowKey]*tcpFlow
	evicted uint64 // flows dropped to make room (reported in Stats)
}

func (t *tcpFlows) evictOldest() {
	var oldest flowKey
	var at time.Time
	first := true
	for k, f := range t.flows {
		if first || f.last.Before(at) {
			oldest, at, first = k, f.last, false
		}
	}
	delete(t.flows, oldest)
}

func newTCPFlows() *tcpFlows { return &tcpFlows{flows: make(map[flowKey]*tcpFlow)} }

// follows reports whether a segment on a port not configured as SIP belongs
// to SIP: its flow is already followed, or its payload starts a message
// (detected per direction: a response stream begins with "SIP/2.0").
func (t *tcpFlows) follows(p *decode.Packet, looksLikeSIP func([]byte) bool) bool {
	if _, ok := t.flows[flowKey{p.Src, p.Dst}]; ok {
		return true
	}
	return len(p.Payload) > 0 && looksLikeSIP(p.Payload)
}

func (t *tcpFlows) handle(p *decode.Packet, deliver func(*decode.Packet, []byte), discarded *uint64) {
	key := flowKey{p.Src, p.Dst}
	f := t.flows[key]
	if p.TCPFlags&(decode.FlagRST|decode.FlagFIN) != 0 && len(p.Payload) == 0 {
		if f != nil {
			*discarded += uint64(f.stream.Discarded())
			delete(t.flows, key)
		}
		return
	}
	if f == nil {
		if len(t.flows) >= maxTCPFlows {
			// Full: the flow idle the longest makes room, so a flood of
			// stale connections cannot lock out a new phone's connection.
			t.evictOldest()
			t.evicted++
		}
		f = &tcpFlow{next: seqUnknown}
		t.flows[key] = f
	}
	f.last = p.Time
	seq := int64(p.TCPSeq)
	if p.TCPFlags&decode.FlagSYN != 0 {
		f.next = (seq + 1) & 0xffffffff
		f.stream.Reset()
		return
	}
	data := p.Payload
	if len(data) == 0 {
		return
	}
	if f.next != seqUnknown {
		d := int32(uint32(seq) - uint32(f.next)) // signed distance with wrap
		switch {
		case d < 0 && int(-d) >= len(data):
			return // pure retransmission
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
	if f.ws.state != wsNone {
		f.ws.feed(data, func(msg []byte) { deliver(p, msg) })
		return
	}
	f.stream.Write(data)
	for {
		msg, err := f.stream.Next()
		if err != nil {
			break
		}
		deliver(p, msg)
	}
}

func (t *tcpFlows) expire(now time.Time) {
	for k, f := range t.flows {
		if now.Sub(f.last) > tcpFlowIdle {
			delete(t.flows, k)
		}
	}
}
