package sniffer

import (
	"encoding/binary"
	"hash/maphash"

	"pbx-agent/sniffer/decode"
)

// Deduplication (VoIPmonitor's deduplicate): the same packet captured twice
// — on a mirror port and on the host's own interface, on both sides of a
// router or bridge, on two interfaces of one capture — is handled once. Two
// packets are the same when their addresses, ports, transport, IPv4
// identification, TCP sequence and payload are; the TTL, the link layer and
// the encapsulation may differ. A direct-mapped table of recent hashes keeps
// it O(1) and allocation-free: a collision only forgets an older packet.

const (
	dedupSlots  = 1 << 16
	dedupWindow = int64(500e6) // ns; below SIP's T1, so an application's retransmission is never taken for a copy
)

type dedupSlot struct {
	sum uint64
	at  int64
}

type deduper struct {
	h     maphash.Hash
	slots []dedupSlot
	hdr   [2*18 + 8]byte
}

func newDeduper() *deduper { return &deduper{slots: make([]dedupSlot, dedupSlots)} }

// seen reports whether p is a copy of a packet seen within the window, and
// remembers it otherwise.
func (d *deduper) seen(p *decode.Packet) bool {
	h := d.hdr[:0]
	a := p.Src.Addr().As16()
	h = append(h, a[:]...)
	h = binary.BigEndian.AppendUint16(h, p.Src.Port())
	a = p.Dst.Addr().As16()
	h = append(h, a[:]...)
	h = binary.BigEndian.AppendUint16(h, p.Dst.Port())
	h = append(h, byte(p.Transport), 0)
	h = binary.BigEndian.AppendUint16(h, p.IPID)
	h = binary.BigEndian.AppendUint32(h, p.TCPSeq)
	d.h.Reset()
	d.h.Write(h)
	d.h.Write(p.Payload)
	sum := d.h.Sum64()
	at := p.Time.UnixNano()
	slot := &d.slots[sum&(dedupSlots-1)]
	if slot.sum == sum && slot.at != 0 {
		if dt := at - slot.at; dt < dedupWindow && dt > -dedupWindow {
			return true
		}
	}
	*slot = dedupSlot{sum: sum, at: at}
	return false
}
