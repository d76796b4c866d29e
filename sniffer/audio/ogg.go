package audio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Ogg framing (RFC 3533): a logical bitstream is a series of pages, each a
// 27-byte header, a segment table of lacing values and the body; packets
// are split into 255-byte segments, a segment shorter than 255 ending a
// packet. Only what one logical stream of one file needs is here: the
// recordings are Ogg/Opus files of one stream.

// Ogg page header flags.
const (
	OggContinued = 0x01 // the page starts with the rest of a packet
	OggBOS       = 0x02 // first page of the stream
	OggEOS       = 0x04 // last page of the stream
)

const (
	oggHeaderSize = 27
	oggMaxSegs    = 255
	// OggMaxPage is the largest page: header, full segment table, body.
	OggMaxPage = oggHeaderSize + oggMaxSegs + oggMaxSegs*255
)

// oggCRCTable is the CRC-32 of Ogg pages: polynomial 0x04c11db7, most
// significant bit first, initial value 0, no final xor (not the reflected
// IEEE CRC of hash/crc32).
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(crc uint32, b []byte) uint32 {
	for _, v := range b {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^v]
	}
	return crc
}

// OggWriter builds the pages of one logical stream: packets are added to
// the page being filled and Page appends it, complete with its checksum,
// to a caller's buffer. It holds at most one page.
type OggWriter struct {
	serial  uint32
	seq     uint32
	segs    []byte // lacing values of the page being filled
	body    []byte
	granule int64 // of the last packet that ends on the page; -1: none yet
	cont    bool  // the page being filled starts inside a packet
	started bool  // the BOS page was written
	packets int   // packets ending on the page being filled
}

// NewOggWriter returns a writer of the stream with this serial number.
func NewOggWriter(serial uint32) *OggWriter {
	return &OggWriter{serial: serial, granule: -1}
}

// Packets is the number of packets that end on the page being filled.
func (w *OggWriter) Packets() int { return w.packets }

// Packet adds one packet whose end has the given granule position. A
// packet that does not fit in the page being filled continues on the
// next: the full pages are appended to dst, which is returned.
func (w *OggWriter) Packet(dst, p []byte, granule int64) []byte {
	for {
		room := oggMaxSegs - len(w.segs)
		need := len(p)/255 + 1
		if need <= room {
			for n := len(p); ; n -= 255 {
				if n < 255 {
					w.segs = append(w.segs, byte(n))
					break
				}
				w.segs = append(w.segs, 255)
			}
			w.body = append(w.body, p...)
			w.granule = granule
			w.packets++
			return dst
		}
		// Fill the page with whole segments of p and carry on in the next.
		take := room * 255
		for range room {
			w.segs = append(w.segs, 255)
		}
		w.body = append(w.body, p[:take]...)
		p = p[take:]
		dst = w.Page(dst, 0)
		w.cont = true
	}
}

// Page appends the page being filled (if it has any segment, or flags
// has OggEOS) with the given extra flags (OggEOS on the last page) and
// starts the next. The first page gets OggBOS.
func (w *OggWriter) Page(dst []byte, flags byte) []byte {
	if len(w.segs) == 0 && flags&OggEOS == 0 {
		return dst
	}
	if w.cont {
		flags |= OggContinued
	}
	if !w.started {
		flags |= OggBOS
		w.started = true
	}
	start := len(dst)
	le := binary.LittleEndian
	dst = append(dst, "OggS"...)
	dst = append(dst, 0, flags)
	dst = le.AppendUint64(dst, uint64(w.granule))
	dst = le.AppendUint32(dst, w.serial)
	dst = le.AppendUint32(dst, w.seq)
	dst = le.AppendUint32(dst, 0) // checksum, set below
	dst = append(dst, byte(len(w.segs)))
	dst = append(dst, w.segs...)
	dst = append(dst, w.body...)
	le.PutUint32(dst[start+22:], oggCRC(0, dst[start:]))
	w.seq++
	w.segs, w.body = w.segs[:0], w.body[:0]
	w.granule, w.cont, w.packets = -1, false, 0
	return dst
}

// OggPacket is one packet read from a stream.
type OggPacket struct {
	Data []byte // valid until the next call of Next
	// Granule is the granule position of the page the packet ends on
	// when it is the last packet ending there, else -1.
	Granule int64
	BOS     bool // on the stream's first page
	EOS     bool // the last packet of the last page
	Serial  uint32
}

// OggReader reads the packets of an Ogg stream, checking each page's
// capture pattern, version and checksum. Memory is bounded: one page and
// a packet of at most maxPacket bytes.
type OggReader struct {
	r         *bufio.Reader
	maxPacket int
	page      [OggMaxPage]byte
	segs      []byte // lacing values left on the current page
	body      []byte // body left on the current page
	hdr       oggPageHeader
	pkt       []byte
	pending   bool // pkt holds the start of a packet continued on the next page
	pages     int
}

type oggPageHeader struct {
	flags   byte
	granule int64
	serial  uint32
	seq     uint32
}

// NewOggReader reads r; packets longer than maxPacket bytes (0 = 1 MiB)
// are an error.
func NewOggReader(r io.Reader, maxPacket int) *OggReader {
	if maxPacket <= 0 {
		maxPacket = 1 << 20
	}
	return &OggReader{r: bufio.NewReaderSize(r, 64<<10), maxPacket: maxPacket}
}

// Next returns the next packet; io.EOF at the end of the input, an error
// wrapping ErrOgg for a malformed stream.
func (o *OggReader) Next() (OggPacket, error) {
	for {
		for len(o.segs) > 0 {
			n := 0
			end := false
			for len(o.segs) > 0 {
				v := int(o.segs[0])
				o.segs = o.segs[1:]
				n += v
				if v < 255 {
					end = true
					break
				}
			}
			if n > len(o.body) {
				return OggPacket{}, fmt.Errorf("%w: page %d: segments longer than its body", ErrOgg, o.pages)
			}
			if len(o.pkt)+n > o.maxPacket {
				return OggPacket{}, fmt.Errorf("%w: packet longer than %d bytes", ErrOgg, o.maxPacket)
			}
			if !o.pending {
				o.pkt = o.pkt[:0]
			}
			o.pkt = append(o.pkt, o.body[:n]...)
			o.body = o.body[n:]
			if !end {
				o.pending = true
				break
			}
			o.pending = false
			p := OggPacket{Data: o.pkt, Granule: -1, BOS: o.hdr.flags&OggBOS != 0, Serial: o.hdr.serial}
			if o.lastOnPage() {
				p.Granule = o.hdr.granule
				p.EOS = o.hdr.flags&OggEOS != 0
			}
			return p, nil
		}
		if err := o.readPage(); err != nil {
			return OggPacket{}, err
		}
	}
}

// lastOnPage: no further packet ends on the current page.
func (o *OggReader) lastOnPage() bool {
	for _, v := range o.segs {
		if v < 255 {
			return false
		}
	}
	return true
}

func (o *OggReader) readPage() error {
	h := o.page[:oggHeaderSize]
	if _, err := io.ReadFull(o.r, h); err != nil {
		if errors.Is(err, io.EOF) {
			if o.pending {
				return fmt.Errorf("%w: stream ends inside a packet", ErrOgg)
			}
			return io.EOF
		}
		return fmt.Errorf("%w: page %d header: %w", ErrOgg, o.pages, err)
	}
	if string(h[:4]) != "OggS" || h[4] != 0 {
		return fmt.Errorf("%w: page %d: no OggS version 0 capture pattern", ErrOgg, o.pages)
	}
	le := binary.LittleEndian
	nseg := int(h[26])
	segs := o.page[oggHeaderSize : oggHeaderSize+nseg]
	if _, err := io.ReadFull(o.r, segs); err != nil {
		return fmt.Errorf("%w: page %d segment table: %w", ErrOgg, o.pages, err)
	}
	size := 0
	for _, v := range segs {
		size += int(v)
	}
	body := o.page[oggHeaderSize+nseg : oggHeaderSize+nseg+size]
	if _, err := io.ReadFull(o.r, body); err != nil {
		return fmt.Errorf("%w: page %d body: %w", ErrOgg, o.pages, err)
	}
	want := le.Uint32(h[22:])
	crc := oggCRC(0, h[:22])
	crc = oggCRC(crc, []byte{0, 0, 0, 0})
	crc = oggCRC(crc, o.page[26:oggHeaderSize+nseg+size])
	if crc != want {
		return fmt.Errorf("%w: page %d: checksum %08x, want %08x", ErrOgg, o.pages, crc, want)
	}
	hdr := oggPageHeader{flags: h[5], granule: int64(le.Uint64(h[6:])), serial: le.Uint32(h[14:]), seq: le.Uint32(h[18:])}
	if o.pages > 0 && (hdr.serial != o.hdr.serial || hdr.seq != o.hdr.seq+1) {
		return fmt.Errorf("%w: page %d: serial %d sequence %d after serial %d sequence %d (one stream, no gap)", ErrOgg, o.pages, hdr.serial, hdr.seq, o.hdr.serial, o.hdr.seq)
	}
	if cont := hdr.flags&OggContinued != 0; cont != o.pending {
		return fmt.Errorf("%w: page %d: continued flag %v, packet pending %v", ErrOgg, o.pages, cont, o.pending)
	}
	o.hdr, o.segs, o.body = hdr, segs, body
	o.pages++
	return nil
}
