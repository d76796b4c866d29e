// Package fax decodes the faxes of a call: T.38 over UDPTL (ITU-T T.38
// Annex D) and T.30 over G.711 audio, into TIFF-F pages through spandsp's
// T.38 and T.30 terminals, and reads those pages back as images.
package fax

import "fmt"

// Limits of one UDPTL packet (what Asterisk and spandsp send fits well
// inside them).
const (
	// MaxSecondary is the most redundant (secondary) IFPs a packet may carry.
	MaxSecondary = 16
	// MaxFEC is the most FEC entries a packet may carry.
	MaxFEC = 8
)

// Packet is one UDPTL packet. Its byte slices alias the datagram.
type Packet struct {
	Seq     uint16
	Primary []byte // the IFP of Seq
	// Secondary[i] is the redundant copy of the IFP of Seq-1-i
	// (t38UDPRedundancy).
	Secondary  [MaxSecondary][]byte
	NSecondary int
	// FEC is the parity data of t38UDPFEC: FECSpan packets per entry.
	FECSpan int
	FEC     [MaxFEC][]byte
	NFEC    int
}

// lengthDet reads an ASN.1 PER aligned length determinant at b[i]:
// one octet below 128, two octets below 16384; fragmented lengths (the
// 0xC0 form) never occur in T.38 and are refused.
func lengthDet(b []byte, i int) (n, next int, err error) {
	if i >= len(b) {
		return 0, i, fmt.Errorf("%w: truncated length at %d", ErrUDPTL, i)
	}
	switch {
	case b[i]&0x80 == 0:
		return int(b[i]), i + 1, nil
	case b[i]&0x40 == 0:
		if i+1 >= len(b) {
			return 0, i, fmt.Errorf("%w: truncated length at %d", ErrUDPTL, i)
		}
		return int(b[i]&0x3f)<<8 | int(b[i+1]), i + 2, nil
	}
	return 0, i, fmt.Errorf("%w: fragmented length at %d", ErrUDPTL, i)
}

// openType reads a length-prefixed octet string at b[i].
func openType(b []byte, i int) (v []byte, next int, err error) {
	n, i, err := lengthDet(b, i)
	if err != nil {
		return nil, i, err
	}
	if n > len(b)-i {
		return nil, i, fmt.Errorf("%w: %d octets announced at %d, %d left", ErrUDPTL, n, i, len(b)-i)
	}
	return b[i : i+n : i+n], i + n, nil
}

// openTypes reads a counted list of octet strings at b[i] into dst (at
// most len(dst) of them).
func openTypes(b []byte, i int, dst [][]byte, what string) (n, next int, err error) {
	n, i, err = lengthDet(b, i)
	if err != nil {
		return 0, i, err
	}
	if n > len(dst) {
		return 0, i, fmt.Errorf("%w: %d %s (max %d)", ErrUDPTL, n, what, len(dst))
	}
	for k := range n {
		if dst[k], i, err = openType(b, i); err != nil {
			return 0, i, err
		}
	}
	return n, i, nil
}

// Parse reads one UDPTL datagram into p without allocating.
func Parse(b []byte, p *Packet) error {
	*p = Packet{}
	if len(b) < 4 {
		return fmt.Errorf("%w: %d octets", ErrUDPTL, len(b))
	}
	p.Seq = uint16(b[0])<<8 | uint16(b[1])
	var err error
	i := 2
	if p.Primary, i, err = openType(b, i); err != nil {
		return err
	}
	if i >= len(b) {
		return fmt.Errorf("%w: no error-recovery field", ErrUDPTL)
	}
	choice := b[i]
	i++
	if choice&0x80 == 0 { // secondary-ifp-packets
		p.NSecondary, i, err = openTypes(b, i, p.Secondary[:], "secondary IFPs")
	} else { // fec-info
		if i+2 > len(b) || b[i] != 1 {
			return fmt.Errorf("%w: bad fec-npackets", ErrUDPTL)
		}
		p.FECSpan = int(b[i+1])
		p.NFEC, i, err = openTypes(b, i+2, p.FEC[:], "FEC entries")
	}
	if err != nil {
		return err
	}
	if i != len(b) {
		return fmt.Errorf("%w: %d trailing octets", ErrUDPTL, len(b)-i)
	}
	return nil
}

// histSize is how many delivered IFPs a Stream keeps for FEC repair (a
// span of 3 × 3 entries, Asterisk's default, needs 9).
const histSize = 32

// Stream puts the IFPs of one direction back in order, recovering lost
// primaries from the redundant copies later packets carry
// (t38UDPRedundancy) or from their parity data (t38UDPFEC: entry m of
// packet n is the XOR of packets n+m-k·entries, k = 1..span). Late packets
// (older than one already delivered) are dropped and counted. Memory is
// bounded: the last histSize IFPs.
type Stream struct {
	next    uint16
	started bool
	hist    [histSize]struct {
		seq uint16
		ok  bool
		b   []byte
	}
	fec []byte
	// Delivered, Recovered (from redundancy or FEC), Lost (neither primary
	// nor a redundant copy seen) and Late (duplicates or out of order) IFPs.
	Delivered, Recovered, Lost, Late int
}

func (s *Stream) remember(seq uint16, b []byte) {
	h := &s.hist[int(seq)%histSize]
	h.seq, h.ok, h.b = seq, true, append(h.b[:0], b...)
}

func (s *Stream) known(seq uint16) ([]byte, bool) {
	h := &s.hist[int(seq)%histSize]
	return h.b, h.ok && h.seq == seq
}

// repair rebuilds seq from p's FEC entries, if one covers it with every
// other packet of its chain known. The result is as long as the entry (the
// longest packet of the chain): a shorter IFP comes back zero-padded, as
// Asterisk's receiver also passes it on.
func (s *Stream) repair(p *Packet, seq uint16) ([]byte, bool) {
	entries := p.NFEC
	if entries == 0 || p.FECSpan == 0 {
		return nil, false
	}
	for m := range entries {
		covers := false
		for k := 1; k <= p.FECSpan; k++ {
			if p.Seq+uint16(m)-uint16(k*entries) == seq {
				covers = true
			}
		}
		if !covers {
			continue
		}
		s.fec = append(s.fec[:0], p.FEC[m]...)
		ok := true
		for k := 1; k <= p.FECSpan && ok; k++ {
			q := p.Seq + uint16(m) - uint16(k*entries)
			if q == seq {
				continue
			}
			b, have := s.known(q)
			if !have {
				ok = false
				break
			}
			for j := range min(len(b), len(s.fec)) {
				s.fec[j] ^= b[j]
			}
		}
		if ok {
			return s.fec, true
		}
	}
	return nil, false
}

// Push takes the next packet of the direction and calls deliver for each
// IFP now known, in sequence order.
func (s *Stream) Push(p *Packet, deliver func(seq uint16, ifp []byte)) {
	if !s.started {
		s.started, s.next = true, p.Seq
	}
	gap := int(int16(p.Seq - s.next))
	if gap < 0 {
		s.Late++
		return
	}
	if gap > histSize {
		s.Lost += gap - histSize
		s.next = p.Seq - histSize
		gap = histSize
	}
	for ; s.next != p.Seq; s.next++ {
		seq := s.next
		k := int(p.Seq - seq - 1)
		var b []byte
		ok := false
		if k < p.NSecondary {
			b, ok = p.Secondary[k], true
		} else {
			b, ok = s.repair(p, seq)
		}
		if !ok {
			s.Lost++
			continue
		}
		s.remember(seq, b)
		deliver(seq, b)
		s.Recovered++
	}
	s.remember(p.Seq, p.Primary)
	deliver(p.Seq, p.Primary)
	s.Delivered++
	s.next = p.Seq + 1
}

func appendLength(dst []byte, n int) []byte {
	if n < 128 {
		return append(dst, byte(n))
	}
	return append(dst, 0x80|byte(n>>8), byte(n))
}

// Append encodes p (primary plus its secondary IFPs; FEC is not written)
// after dst. IFPs must be shorter than 16384 octets.
func Append(dst []byte, p *Packet) []byte {
	dst = append(dst, byte(p.Seq>>8), byte(p.Seq))
	dst = appendLength(dst, len(p.Primary))
	dst = append(dst, p.Primary...)
	dst = append(dst, 0)
	dst = appendLength(dst, p.NSecondary)
	for _, s := range p.Secondary[:p.NSecondary] {
		dst = appendLength(dst, len(s))
		dst = append(dst, s...)
	}
	return dst
}
