package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/gopacket/layers"
)

// IP reassembly for both families: IPv4 fragments (RFC 791) and the IPv6
// fragment extension header (RFC 8200 §4.5). gopacket has nothing for IPv6,
// and its ip4defrag refuses a legal last fragment of fewer than 8 bytes.

const (
	maxPendingDatagrams = 1024  // datagrams being reassembled at once
	maxDatagram         = 65535 // bytes of one reassembled payload
	maxFragments        = 64    // fragments of one datagram
)

var (
	errFragShort   = errors.New("fragment header truncated")
	errFragTooBig  = errors.New("reassembled datagram too large")
	errFragTooMany = errors.New("too many fragments")
	errFragOverlap = errors.New("overlapping fragments")
	errFragPending = errors.New("too many datagrams pending reassembly")
)

type fragKey struct {
	src, dst [16]byte
	id       uint32
	v4proto  layers.IPProtocol // IPv4 keys include the protocol (RFC 791); 0 for IPv6
}

type fragment struct {
	off  int
	data []byte
}

type pendingDatagram struct {
	first time.Time
	frags []fragment
	total int // payload length once the last fragment (M=0) is seen, else -1
	proto layers.IPProtocol
}

type defragmenter struct {
	pending map[fragKey]*pendingDatagram
	buf     []byte
}

func newDefragmenter() *defragmenter {
	return &defragmenter{pending: make(map[fragKey]*pendingDatagram)}
}

// add6 takes an IPv6 packet whose next header is Fragment. It returns the
// upper-layer protocol and the reassembled payload once every fragment is in.
// The payload is valid until the next call.
func (f *defragmenter) add6(ip *layers.IPv6, now time.Time) (layers.IPProtocol, []byte, error) {
	h := ip.Payload
	if len(h) < 8 {
		return 0, nil, fmt.Errorf("%w: %d < 8", errFragShort, len(h))
	}
	proto := layers.IPProtocol(h[0])
	offFlags := binary.BigEndian.Uint16(h[2:4])
	key := fragKey{id: binary.BigEndian.Uint32(h[4:8])}
	copy(key.src[:], ip.SrcIP.To16())
	copy(key.dst[:], ip.DstIP.To16())
	if offFlags>>3 == 0 && offFlags&1 == 0 { // atomic fragment
		return proto, h[8:], nil
	}
	return f.insert(key, proto, int(offFlags>>3)*8, offFlags&1 == 1, h[8:], now)
}

// add4 takes an IPv4 fragment (MF set or offset non-zero).
func (f *defragmenter) add4(ip *layers.IPv4, now time.Time) (layers.IPProtocol, []byte, error) {
	key := fragKey{id: uint32(ip.Id), v4proto: ip.Protocol}
	copy(key.src[:], ip.SrcIP.To16())
	copy(key.dst[:], ip.DstIP.To16())
	return f.insert(key, ip.Protocol, int(ip.FragOffset)*8, ip.Flags&layers.IPv4MoreFragments != 0, ip.Payload, now)
}

// insert adds one fragment's data; it returns the whole payload once every
// byte from 0 to the last fragment's end is in.
func (f *defragmenter) insert(key fragKey, proto layers.IPProtocol, off int, more bool, data []byte, now time.Time) (layers.IPProtocol, []byte, error) {
	if off+len(data) > maxDatagram {
		return 0, nil, fmt.Errorf("%w: %d bytes", errFragTooBig, off+len(data))
	}
	p := f.pending[key]
	if p == nil {
		if len(f.pending) >= maxPendingDatagrams {
			return 0, nil, errFragPending
		}
		p = &pendingDatagram{first: now, total: -1}
		f.pending[key] = p
	}
	if len(p.frags) >= maxFragments {
		delete(f.pending, key)
		return 0, nil, errFragTooMany
	}
	if off == 0 {
		p.proto = proto
	}
	if !more {
		p.total = off + len(data)
	}
	p.frags = append(p.frags, fragment{off: off, data: append([]byte(nil), data...)})
	if p.total < 0 {
		return 0, nil, nil
	}
	sort.Slice(p.frags, func(i, j int) bool { return p.frags[i].off < p.frags[j].off })
	next := 0
	for _, fr := range p.frags {
		if fr.off > next {
			return 0, nil, nil // a hole: wait for more
		}
		if fr.off < next && fr.off+len(fr.data) > next {
			delete(f.pending, key)
			return 0, nil, errFragOverlap // RFC 8200: overlapping fragments are dropped
		}
		if end := fr.off + len(fr.data); end > next {
			next = end
		}
	}
	if next < p.total {
		return 0, nil, nil
	}
	f.buf = f.buf[:0]
	for _, fr := range p.frags {
		f.buf = append(f.buf, fr.data...)
	}
	delete(f.pending, key)
	return p.proto, f.buf[:p.total], nil
}

func (f *defragmenter) discardOlderThan(t time.Time) {
	for k, p := range f.pending {
		if p.first.Before(t) {
			delete(f.pending, k)
		}
	}
}
