package spool

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// snaplen written in the file headers (VoIPmonitor's default).
const snaplen = 65535

// linkSLL2 is how gopacket's uint8 LinkType carries LINKTYPE_LINUX_SLL2
// (276 & 0xff); the file header must say 276.
const linkSLL2 layers.LinkType = 276 & 0xff

// pcapFile is a per-call pcap (microsecond timestamps, as VoIPmonitor
// writes them) of one link type, set by its first packet.
type pcapFile struct {
	*file
	w       *pcapgo.Writer
	link    layers.LinkType
	packets int
	logged  bool // its I/O error was logged
}

func newPcapFile(f *file) *pcapFile {
	return &pcapFile{file: f, w: pcapgo.NewWriter(f)}
}

func (p *pcapFile) write(link layers.LinkType, ts time.Time, data []byte, origLen int) error {
	if p.packets == 0 && p.size == 0 && len(p.buf) == 0 {
		p.link = link
		if err := p.writeHeader(link); err != nil {
			return err
		}
	} else if link != p.link {
		return fmt.Errorf("%w: %d, file has %d", ErrLinkMismatch, link, p.link)
	}
	p.packets++
	return p.w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: max(origLen, len(data))}, data)
}

func (p *pcapFile) writeHeader(link layers.LinkType) error {
	if link != linkSLL2 {
		return p.w.WriteFileHeader(snaplen, link)
	}
	var h [24]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], 0xa1b2c3d4)
	le.PutUint16(h[4:], 2)
	le.PutUint16(h[6:], 4)
	le.PutUint32(h[16:], snaplen)
	le.PutUint32(h[20:], 276)
	_, err := p.Write(h[:])
	return err
}

// payloadOffset returns where payload starts inside frame, or -1 when it
// does not alias it (a payload rebuilt from IP fragments).
func payloadOffset(frame, payload []byte) int {
	if len(payload) == 0 || len(frame) == 0 {
		return -1
	}
	off := cap(frame) - cap(payload)
	if off < 0 || off+len(payload) > len(frame) || &frame[off] != &payload[0] {
		return -1
	}
	return off
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
