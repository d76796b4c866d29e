package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// pcapReader reads classic pcap records out of one large buffer and hands
// out slices of it: one read syscall per megabyte and no copy per packet
// (pcapgo's reader copies each record header and frame out of a bufio
// buffer; BenchmarkPcapRead compares them). Replay's packet path starts here.
type pcapReader struct {
	r        io.Reader
	buf      []byte
	pos, end int // unread bytes are buf[pos:end]
	err      error
	big      bool   // big-endian file
	frac     uint32 // ns per unit of the fractional timestamp: 1000 (µs) or 1 (ns)
	snaplen  int
	link     layers.LinkType
	// chunk, when set, gives every buffer fill reads into (at least n
	// bytes): frames handed out before stay untouched (Chunked).
	chunk func(n int) []byte
}

// pcap file magic numbers as read little-endian.
const (
	magicMicro   = 0xa1b2c3d4
	magicNano    = 0xa1b23c4d
	magicMicroBE = 0xd4c3b2a1
	magicNanoBE  = 0x4d3cb2a1
)

const (
	pcapFileHeaderLen   = 24
	pcapRecordHeaderLen = 16
	pcapBufSize         = 1 << 20
	// maxRecord bounds a record's claimed length, whatever the file header's
	// snaplen says, so a corrupt length cannot make the reader allocate
	// gigabytes.
	maxRecord = 1 << 24
)

// newPcapReader reads the file header of a classic pcap stream.
func newPcapReader(r io.Reader) (*pcapReader, error) {
	p := &pcapReader{r: r, buf: make([]byte, pcapBufSize)}
	if err := p.fill(pcapFileHeaderLen); err != nil {
		return nil, fmt.Errorf("file header: %w", err)
	}
	h := p.buf[p.pos : p.pos+pcapFileHeaderLen]
	p.pos += pcapFileHeaderLen
	switch binary.LittleEndian.Uint32(h) {
	case magicMicro:
		p.frac = 1000
	case magicNano:
		p.frac = 1
	case magicMicroBE:
		p.frac, p.big = 1000, true
	case magicNanoBE:
		p.frac, p.big = 1, true
	default:
		return nil, fmt.Errorf("unknown magic %x", h[:4])
	}
	if v := p.u16(h[4:]); v != 2 {
		return nil, fmt.Errorf("unknown major version %d", v)
	}
	if v := p.u16(h[6:]); v != 4 {
		return nil, fmt.Errorf("unknown minor version %d", v)
	}
	p.snaplen = int(p.u32(h[16:]))
	p.link = layers.LinkType(p.u32(h[20:]))
	return p, nil
}

func (p *pcapReader) u16(b []byte) uint16 {
	if p.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (p *pcapReader) u32(b []byte) uint32 {
	if p.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// ReadPacket returns the next record's frame, a slice of the reader's
// buffer valid until the next call. A record cut short by the end of the
// stream is io.ErrUnexpectedEOF.
func (p *pcapReader) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	data, ts, length, err := p.record()
	if err != nil {
		return nil, ci, err
	}
	ci.Timestamp, ci.CaptureLength, ci.Length = ts, len(data), length
	return data, ci, nil
}

// lengths returns a record header's captured and original lengths, and
// whether the record can be read (lengthErr says why not).
func (p *pcapReader) lengths(h []byte) (caplen, length int, ok bool) {
	caplen, length = int(p.u32(h[8:])), int(p.u32(h[12:]))
	return caplen, length, caplen <= p.snaplen && caplen <= maxRecord && caplen <= length
}

func (p *pcapReader) lengthErr(caplen, length int) error {
	if caplen > p.snaplen || caplen > maxRecord {
		return fmt.Errorf("capture length exceeds snap length: %d > %d", caplen, p.snaplen)
	}
	return fmt.Errorf("capture length exceeds original packet length: %d > %d", caplen, length)
}

// record is ReadPacket's: the frame, its time and its original length.
func (p *pcapReader) record() ([]byte, time.Time, int, error) {
	if p.end-p.pos < pcapRecordHeaderLen {
		if err := p.fill(pcapRecordHeaderLen); err != nil {
			return nil, time.Time{}, 0, err
		}
	}
	h := p.buf[p.pos : p.pos+pcapRecordHeaderLen]
	caplen, length, ok := p.lengths(h)
	if !ok {
		return nil, time.Time{}, 0, p.lengthErr(caplen, length)
	}
	// The fraction wraps in 32 bits when a microsecond field is out of range,
	// as pcapgo (and the agent before this reader) read it.
	ts := time.Unix(int64(p.u32(h)), int64(p.u32(h[4:])*p.frac)).UTC()
	if n := pcapRecordHeaderLen + caplen; p.end-p.pos < n {
		if err := p.fill(n); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, ts, 0, err
		}
	}
	start := p.pos + pcapRecordHeaderLen
	p.pos = start + caplen
	return p.buf[start:p.pos:p.pos], ts, length, nil
}

// readBuffered reads records as ReadPacket does, as long as the next one
// is wholly in the buffer (a fill would move the ones handed out): at
// least one unless err is set. After the first, records are taken in one
// loop over the buffer; one ReadPacket would refuse, or that needs a fill,
// ends the batch (the next call's first record says why, or fills).
func (p *pcapReader) readBuffered(data [][]byte, ci []gopacket.CaptureInfo) (int, error) {
	m := min(len(data), len(ci))
	if m == 0 {
		return 0, nil
	}
	d, c, err := p.ReadPacket()
	if err != nil {
		return 0, err
	}
	data[0], ci[0] = d, c
	n := 1
	buf, pos, end := p.buf, p.pos, p.end
	for n < m && end-pos >= pcapRecordHeaderLen {
		h := buf[pos : pos+pcapRecordHeaderLen]
		caplen, length, ok := p.lengths(h)
		if !ok || end-pos-pcapRecordHeaderLen < caplen {
			break
		}
		start := pos + pcapRecordHeaderLen
		pos = start + caplen
		data[n] = buf[start:pos:pos]
		ci[n] = gopacket.CaptureInfo{Timestamp: time.Unix(int64(p.u32(h)), int64(p.u32(h[4:])*p.frac)).UTC(), // as record's
			CaptureLength: caplen, Length: length}
		n++
	}
	p.pos = pos
	return n, nil
}

// buffered tells whether the next record is wholly in the buffer.
func (p *pcapReader) buffered() bool {
	if p.end-p.pos < pcapRecordHeaderLen {
		return false
	}
	caplen := int(p.u32(p.buf[p.pos+8:]))
	return caplen <= maxRecord && p.end-p.pos >= pcapRecordHeaderLen+caplen
}

// fill makes at least n unread bytes available: it moves the unread tail
// to the front of the buffer (growing it for a record larger than the
// buffer; with chunks, to the next chunk unless they fit after it) and
// reads until n bytes are there. io.EOF means the stream ended
// cleanly before any of them, io.ErrUnexpectedEOF in the middle.
func (p *pcapReader) fill(n int) error {
	left := p.end - p.pos
	switch {
	case p.chunk != nil && len(p.buf)-p.pos >= n:
		// room after the unread bytes: read on, frames handed out stay
	case p.chunk != nil:
		nb := p.chunk(n)
		copy(nb, p.buf[p.pos:p.end])
		p.buf, p.pos, p.end = nb, 0, left
	case n > len(p.buf):
		nb := make([]byte, n)
		copy(nb, p.buf[p.pos:p.end])
		p.buf, p.pos, p.end = nb, 0, left
	default:
		copy(p.buf, p.buf[p.pos:p.end])
		p.pos, p.end = 0, left
	}
	for p.end-p.pos < n {
		if p.err != nil {
			if p.end == p.pos && p.err == io.EOF {
				return io.EOF
			}
			if p.err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return p.err
		}
		m, err := p.r.Read(p.buf[p.end:])
		p.end += m
		p.err = err
	}
	return nil
}
