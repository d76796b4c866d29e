package capture

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ngGuard passes a pcapng stream through to the pcapng reader, checking
// each packet block's claimed length first: pcapgo allocates the length a
// packet block claims (up to 4 GiB) before reading it, so an 84-byte file
// made it allocate 4 GiB (and keep it as its packet buffer). A packet
// block whose captured length passes maxRecord, or the block's own length,
// ends the stream with ErrFormat before the reader sees its header.
type ngGuard struct {
	r    io.Reader
	big  bool     // the current section's byte order
	hdr  [28]byte // the block header being collected
	nh   int      // bytes of hdr collected
	want int      // bytes of header this block's type needs (0: unknown yet)
	skip uint64   // bytes left of the current block past its header
	err  error
}

// pcapng block types whose header the guard reads.
const (
	ngSection  = 0x0a0d0d0a
	ngPacket   = 2 // obsolete Packet Block
	ngSimple   = 3 // Simple Packet Block
	ngEnhanced = 6 // Enhanced Packet Block
)

func (g *ngGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for i := 0; i < n; {
		if g.skip > 0 {
			adv := min(g.skip, uint64(n-i))
			g.skip -= adv
			i += int(adv)
			continue
		}
		start := i
		for i < n && (g.want == 0 && g.nh < 8 || g.want != 0 && g.nh < g.want) {
			g.hdr[g.nh] = p[i]
			g.nh++
			i++
			if g.nh == 8 {
				g.want = headerNeeds(g.u32(g.hdr[0:]))
			}
		}
		if g.want == 0 || g.nh < g.want {
			break // the rest of the header comes with the next read
		}
		if g.err = g.block(); g.err != nil {
			return start, nil // the reader gets the error when it reads on into the block
		}
	}
	return n, err
}

// headerNeeds is how many bytes of a block's header the guard reads.
func headerNeeds(typ uint32) int {
	switch typ {
	case ngSection, ngSimple:
		return 12
	case ngPacket, ngEnhanced:
		return 28
	}
	return 8
}

func (g *ngGuard) u32(b []byte) uint32 {
	if g.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// block checks the collected header and sets how much of the block follows.
func (g *ngGuard) block() error {
	typ := binary.LittleEndian.Uint32(g.hdr[0:]) // the section type reads alike either way
	if typ == ngSection {
		g.big = binary.BigEndian.Uint32(g.hdr[8:]) == 0x1a2b3c4d
	} else {
		typ = g.u32(g.hdr[0:])
	}
	total := uint64(g.u32(g.hdr[4:]))
	if total < uint64(g.want)+4 {
		return fmt.Errorf("%w: pcapng: block of type %#x %d bytes long", ErrFormat, typ, total)
	}
	var claimed, room uint64
	switch typ {
	case ngPacket, ngEnhanced:
		claimed, room = uint64(g.u32(g.hdr[20:])), total-32
	case ngSimple:
		claimed, room = uint64(g.u32(g.hdr[8:])), maxRecord // the original length, cut to the snap length
	}
	if claimed > min(room, maxRecord) {
		return fmt.Errorf("%w: pcapng: packet of %d bytes claimed in a block of %d", ErrFormat, claimed, total)
	}
	g.skip = total - uint64(g.want)
	g.nh, g.want = 0, 0
	return nil
}
