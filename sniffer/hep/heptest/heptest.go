// Package heptest holds test helpers for HEP: a byte-level HEP3 check that
// does not share code with the decoder (the referee for what the agent
// emits), and a reader of the HEP datagrams inside a capture file.
package heptest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
)

// chunkSizes are the body sizes of the fixed-size chunks of the HEP3
// specification (vendor 0x0000); -1 is a variable-length chunk.
var chunkSizes = map[uint16]int{
	0x0001: 1, 0x0002: 1, 0x0003: 4, 0x0004: 4, 0x0005: 16, 0x0006: 16,
	0x0007: 2, 0x0008: 2, 0x0009: 4, 0x000a: 4, 0x000b: 1, 0x000c: 4,
	0x000d: 2, 0x000e: -1, 0x000f: -1, 0x0010: -1, 0x0011: -1, 0x0012: 2, 0x0013: -1,
}

// Check verifies one HEP3 packet byte by byte against the specification:
// the "HEP3" id, the total length (network byte order) equal to the packet's
// length, every chunk of vendor 0x0000 with a known type id and a length
// (network byte order, header included) that ends inside the packet and
// fits its type, the mandatory chunks present once, family and address
// chunks consistent, and a payload. It returns every fault found.
func Check(b []byte) error {
	var errs []error
	if len(b) < 6 || string(b[:4]) != "HEP3" {
		return errors.New("no HEP3 header")
	}
	if n := int(b[4])<<8 | int(b[5]); n != len(b) {
		errs = append(errs, fmt.Errorf("total length %d != packet length %d", n, len(b)))
	}
	seen := map[uint16]int{}
	var family byte
	for off := 6; off < len(b); {
		if len(b)-off < 6 {
			errs = append(errs, fmt.Errorf("offset %d: %d bytes left, less than a chunk header", off, len(b)-off))
			break
		}
		vendor := binary.BigEndian.Uint16(b[off:])
		typ := binary.BigEndian.Uint16(b[off+2:])
		n := int(binary.BigEndian.Uint16(b[off+4:]))
		if vendor != 0 {
			errs = append(errs, fmt.Errorf("offset %d: vendor id %#04x, want 0x0000", off, vendor))
		}
		if n < 6 || off+n > len(b) {
			errs = append(errs, fmt.Errorf("offset %d: chunk %#04x length %d past the end (%d)", off, typ, n, len(b)))
			break
		}
		want, known := chunkSizes[typ]
		switch {
		case !known:
			errs = append(errs, fmt.Errorf("offset %d: unknown chunk type %#04x", off, typ))
		case want >= 0 && n-6 != want:
			errs = append(errs, fmt.Errorf("offset %d: chunk %#04x body %d bytes, want %d", off, typ, n-6, want))
		}
		if typ == 0x0001 && n == 7 {
			family = b[off+6]
		}
		seen[typ]++
		off += n
	}
	for _, t := range []uint16{0x0001, 0x0002, 0x0007, 0x0008, 0x0009, 0x000a, 0x000b, 0x000c, 0x000f} {
		if seen[t] != 1 {
			errs = append(errs, fmt.Errorf("chunk %#04x present %d times, want once", t, seen[t]))
		}
	}
	switch family {
	case 2:
		if seen[0x0003] != 1 || seen[0x0004] != 1 || seen[0x0005]+seen[0x0006] != 0 {
			errs = append(errs, errors.New("IPv4 family without exactly one IPv4 source and destination"))
		}
	case 10:
		if seen[0x0005] != 1 || seen[0x0006] != 1 || seen[0x0003]+seen[0x0004] != 0 {
			errs = append(errs, errors.New("IPv6 family without exactly one IPv6 source and destination"))
		}
	default:
		errs = append(errs, fmt.Errorf("IP family %d", family))
	}
	return errors.Join(errs...)
}

// Datagram is one UDP datagram of a capture.
type Datagram struct {
	Packet  decode.Packet
	Payload []byte // a copy
}

// ReadUDP returns the UDP datagrams to port in a capture file, copied.
func ReadUDP(path string, port uint16) ([]Datagram, error) {
	src, err := capture.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dec, err := decode.New(src.LinkType())
	if err != nil {
		return nil, err
	}
	var out []Datagram
	var p decode.Packet
	for {
		data, ci, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		ok, _ := dec.Decode(data, ci.Timestamp, &p)
		if ok && p.Transport == decode.UDP && p.Dst.Port() == port {
			d := Datagram{Packet: p, Payload: append([]byte(nil), p.Payload...)}
			d.Packet.Payload = d.Payload
			out = append(out, d)
		}
	}
}
