package spool

import (
	"encoding/binary"
	"time"

	"github.com/google/gopacket/layers"
)

// snaplen written in the file headers (VoIPmonitor's default).
const snaplen = 65535

// Sizes of the classic pcap file and record headers.
const (
	pcapFileHeader   = 24
	pcapRecordHeader = 16
)

// linkSLL2 is how gopacket's uint8 LinkType carries LINKTYPE_LINUX_SLL2
// (276 & 0xff); the file header must say 276.
const linkSLL2 layers.LinkType = 276 & 0xff

// pcapFile is a per-call pcap (microsecond timestamps, as VoIPmonitor
// writes them) of one link type, set by its first packet. Records are
// encoded straight into the file's filling buffer, in room the caller
// reserved (Spool.reserve), so a record is stored whole or not at all.
type pcapFile struct {
	*file
	link    layers.LinkType
	started bool // file header written
}

func newPcapFile(f *file) *pcapFile { return &pcapFile{file: f} }

// writeHeader appends the file header (pcapFileHeader bytes reserved).
func (p *pcapFile) writeHeader(link layers.LinkType) {
	p.link, p.started = link, true
	lt := uint32(link)
	if link == linkSLL2 {
		lt = 276
	}
	le := binary.LittleEndian
	b := p.buf
	b = le.AppendUint32(b, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0) // thiszone
	b = le.AppendUint32(b, 0) // sigfigs
	b = le.AppendUint32(b, snaplen)
	b = le.AppendUint32(b, lt)
	p.buf = b
	p.size += pcapFileHeader
}

// writeRecord appends one record (pcapRecordHeader+len(data) bytes
// reserved).
func (p *pcapFile) writeRecord(ts time.Time, data []byte, origLen int) {
	le := binary.LittleEndian
	b := p.buf
	b = le.AppendUint32(b, uint32(ts.Unix()))
	b = le.AppendUint32(b, uint32(ts.Nanosecond()/1000))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(max(origLen, len(data))))
	p.buf = append(b, data...)
	p.size += int64(pcapRecordHeader + len(data))
}

// sumWords is the 16-bit ones' complement sum (unfolded) of b, an odd last
// byte taken as the high byte of a zero-padded word.
func sumWords(b []byte) uint32 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// adjustChecksum updates a UDP checksum for bytes old replaced by new
// (same length, starting at an even offset of the datagram) per RFC 1624
// eqn. 3: HC' = ~(~HC + ~m + m').
func adjustChecksum(hc uint16, old, new []byte) uint16 {
	s := uint32(^hc) + uint32(^fold(sumWords(old))) + uint32(fold(sumWords(new)))
	r := ^fold(s)
	if r == 0 {
		r = 0xffff // a computed 0 is sent as all ones (RFC 768)
	}
	return r
}
