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

// Stream puts the IFPs of one direction back in order, recovering lost
// primaries from the redundant copies later packets carry. Late packets
// (older than one already delivered) are dropped and counted.
type Stream struct {
	next    uint16
	started bool
	// Delivered, Recovered (from redundancy), Lost (neither primary nor a
	// redundant copy seen) and Late (duplicates or out of order) IFPs.
	Delivered, Recovered, Lost, Late int
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
	if gap > p.NSecondary {
		s.Lost += gap - p.NSecondary
	}
	for k := min(gap, p.NSecondary) - 1; k >= 0; k-- {
		seq := p.Seq - 1 - uint16(k)
		deliver(seq, p.Secondary[k])
		s.Recovered++
	}
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
