package sniffer

import (
	"net/netip"
	"time"

	"pbx-agent/sniffer/decode"
)

// SIP over SCTP (RFC 4168): one SIP message per user message, carried in
// DATA chunks, several chunks per packet. A message larger than the path MTU
// comes in fragments (B flag on the first chunk, E on the last, consecutive
// TSNs), put back together here.

const (
	maxSCTPPending = 256     // fragmented messages being assembled at once
	maxSCTPMessage = 1 << 16 // bytes of one assembled message
	sctpIdle       = 30 * time.Second
)

type sctpKey struct {
	src, dst netip.AddrPort
	stream   uint16
}

type sctpPartial struct {
	buf  []byte
	next uint32 // TSN the next fragment must carry
	last time.Time
}

type sctpAssoc struct {
	pending map[sctpKey]*sctpPartial
	chunk   decode.SCTPData
	dropped uint64 // fragments or messages given up (out of order, too big, no room)
}

func newSCTP() *sctpAssoc { return &sctpAssoc{pending: make(map[sctpKey]*sctpPartial)} }

// handle walks the DATA chunks of one SCTP packet and delivers each whole
// user message.
func (a *sctpAssoc) handle(p *decode.Packet, deliver func(*decode.Packet, []byte)) {
	b := p.Payload
	for {
		var ok bool
		if b, ok = decode.NextSCTPData(b, &a.chunk); !ok {
			return
		}
		c := &a.chunk
		if c.Begin && c.End {
			deliver(p, c.Data)
			continue
		}
		key := sctpKey{p.Src, p.Dst, c.Stream}
		part := a.pending[key]
		switch {
		case c.Begin:
			if part == nil {
				if len(a.pending) >= maxSCTPPending {
					a.dropped++
					continue
				}
				part = &sctpPartial{}
				a.pending[key] = part
			}
			part.buf = append(part.buf[:0], c.Data...)
		case part == nil || c.TSN != part.next || len(part.buf)+len(c.Data) > maxSCTPMessage:
			if part != nil {
				delete(a.pending, key)
			}
			a.dropped++
			continue
		default:
			part.buf = append(part.buf, c.Data...)
		}
		part.next, part.last = c.TSN+1, p.Time
		if c.End {
			deliver(p, part.buf)
			delete(a.pending, key)
		}
	}
}

func (a *sctpAssoc) expire(now time.Time) {
	for k, part := range a.pending {
		if now.Sub(part.last) > sctpIdle {
			delete(a.pending, k)
			a.dropped++
		}
	}
}
