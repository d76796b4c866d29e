package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/gopacket/layers"
)

// gopacket has no IPv6 reassembly; this is a small one for SIP datagrams cut
// by the IPv6 fragment extension header (RFC 8200 §4.5).

const (
	maxIP6Pending   = 1024  // datagrams being reassembled at once
	maxIP6Datagram  = 65535 // bytes of one reassembled payload
	maxIP6Fragments = 64    // fragments of one datagram
)

var (
	errFragShort   = errors.New("fragment header truncated")
	errFragTooBig  = errors.New("reassembled datagram too large")
	errFragTooMany = errors.New("too many fragments")
	errFragOverlap = errors.New("overlapping fragments")
	errFragPending = errors.New("too many datagrams pending reassembly")
)

type ip6Key struct {
	src, dst [16]byte
	id       uint32
}

type ip6Frag struct {
	off  int
	data []byte
}

type ip6Pending struct {
	first time.Time
	frags []ip6Frag
	total int // payload length once the last fragment (M=0) is seen, else -1
	proto layers.IPProtocol
}

type ip6Defragmenter struct {
	pending map[ip6Key]*ip6Pending
	buf     []byte
}

func newIP6Defragmenter() *ip6Defragmenter {
	return &ip6Defragmenter{pending: make(map[ip6Key]*ip6Pending)}
}

// add takes an IPv6 packet whose next header is Fragment. It returns the
// upper-layer protocol and the reassembled payload once every fragment is in.
// The payload is valid until the next call.
func (f *ip6Defragmenter) add(ip *layers.IPv6, now time.Time) (layers.IPProtocol, []byte, error) {
	h := ip.Payload
	if len(h) < 8 {
		return 0, nil, fmt.Errorf("%w: %d < 8", errFragShort, len(h))
	}
	proto := layers.IPProtocol(h[0])
	offFlags := binary.BigEndian.Uint16(h[2:4])
	off := int(offFlags>>3) * 8
	more := offFlags&1 == 1
	key := ip6Key{id: binary.BigEndian.Uint32(h[4:8])}
	copy(key.src[:], ip.SrcIP.To16())
	copy(key.dst[:], ip.DstIP.To16())
	data := h[8:]
	if off == 0 && !more { // atomic fragment
		return proto, data, nil
	}
	if off+len(data) > maxIP6Datagram {
		return 0, nil, fmt.Errorf("%w: %d bytes", errFragTooBig, off+len(data))
	}
	p := f.pending[key]
	if p == nil {
		if len(f.pending) >= maxIP6Pending {
			return 0, nil, errFragPending
		}
		p = &ip6Pending{first: now, total: -1}
		f.pending[key] = p
	}
	if len(p.frags) >= maxIP6Fragments {
		delete(f.pending, key)
		return 0, nil, errFragTooMany
	}
	if off == 0 {
		p.proto = proto
	}
	if !more {
		p.total = off + len(data)
	}
	p.frags = append(p.frags, ip6Frag{off: off, data: append([]byte(nil), data...)})
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

func (f *ip6Defragmenter) discardOlderThan(t time.Time) {
	for k, p := range f.pending {
		if p.first.Before(t) {
			delete(f.pending, k)
		}
	}
}
