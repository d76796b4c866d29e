// Package capture reads link-layer frames from capture files (pcap, pcapng)
// and live interfaces (AF_PACKET), without libpcap.
package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Source yields frames. The returned data is only valid until the next call
// (sources reuse their buffers); copy what must outlive the packet.
type Source interface {
	ReadPacket() (data []byte, ci gopacket.CaptureInfo, err error)
	LinkType() layers.LinkType
	Close() error
}

// Chunked is a Source that can read into buffers its caller hands it, so
// frames outlive the next read without a copy (a replay's packet path hands
// them to other goroutines).
type Chunked interface {
	Source
	// UseChunks makes every buffer the source reads into come from next
	// (at least n bytes): it never writes a buffer again once it asked for
	// the next one, so the frames in it stay valid until the caller
	// recycles it. nil: the source keeps the last one as its own (the
	// caller must not reuse it). false: this source cannot (its frames stay
	// valid until the next read only).
	UseChunks(next func(n int) []byte) bool
	// ReadFrame is ReadPacket without the capture info beyond the
	// timestamp.
	ReadFrame() (data []byte, ts time.Time, err error)
}

// pcapng section header block type, in either byte order.
var ngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

// OpenFile opens a pcap or pcapng file, telling them apart by the magic number.
func OpenFile(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	src, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	src.(*fileSource).closer = f
	return src, nil
}

// NewReader reads a pcap or pcapng stream.
func NewReader(r io.Reader) (Source, error) {
	br := bufio.NewReaderSize(r, 64<<10) // pcapng and gzip read through it; pcap reads it once, in large blocks
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	s := &fileSource{}
	if bytes.Equal(magic, ngMagic) {
		ng, err := pcapgo.NewNgReader(&ngGuard{r: br}, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("%w: pcapng: %v", ErrFormat, err)
		}
		s.read, s.link = ng.ZeroCopyReadPacketData, ng.LinkType()
		return s, nil
	}
	var in io.Reader = br
	if magic[0] == 0x1f && magic[1] == 0x8b { // a gzipped pcap (as pcapgo reads them)
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: pcap: %v", ErrFormat, err)
		}
		in = zr
	}
	pr, err := newPcapReader(in)
	if err != nil {
		return nil, fmt.Errorf("%w: pcap: %v", ErrFormat, err)
	}
	s.pcap, s.read, s.link = pr, pr.ReadPacket, pr.link
	return s, nil
}

type fileSource struct {
	pcap   *pcapReader // classic pcap: called directly, not through read
	read   func() ([]byte, gopacket.CaptureInfo, error)
	link   layers.LinkType
	closer io.Closer
}

func (s *fileSource) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	var data []byte
	var ci gopacket.CaptureInfo
	var err error
	if s.pcap != nil {
		data, ci, err = s.pcap.ReadPacket()
	} else {
		data, ci, err = s.read()
	}
	if err != nil {
		return nil, ci, readErr(err)
	}
	return data, ci, nil
}

// ReadFrame implements Chunked.
func (s *fileSource) ReadFrame() ([]byte, time.Time, error) {
	if s.pcap == nil {
		data, ci, err := s.ReadPacket()
		return data, ci.Timestamp, err
	}
	data, ts, _, err := s.pcap.record()
	if err != nil {
		return nil, ts, readErr(err)
	}
	return data, ts, nil
}

// readErr is what a file source returns for a reader's error.
func readErr(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A capture cut short (killed tcpdump) ends like a complete one.
		return io.EOF
	}
	return fmt.Errorf("%w: %w", ErrRead, err)
}

// Batcher is a Source that hands out several frames at once.
type Batcher interface {
	Source
	// ReadFrames reads up to len(data) frames into data and ci, all valid
	// until the next read, and returns how many (at least one, unless
	// err is set: then none; io.EOF at the end).
	ReadFrames(data [][]byte, ci []gopacket.CaptureInfo) (int, error)
}

// ReadFrames implements Batcher: a classic pcap hands out the records its
// buffer holds (no copy), other formats one frame at a time.
func (s *fileSource) ReadFrames(data [][]byte, ci []gopacket.CaptureInfo) (int, error) {
	if s.pcap == nil || len(data) < 2 {
		d, c, err := s.ReadPacket()
		if err != nil {
			return 0, err
		}
		data[0], ci[0] = d, c
		return 1, nil
	}
	n, err := s.pcap.readBuffered(data, ci)
	if err != nil {
		return 0, readErr(err)
	}
	return n, nil
}

// UseChunks implements Chunked for classic pcap (a pcapng's frames stay
// valid until the next read only).
func (s *fileSource) UseChunks(next func(n int) []byte) bool {
	if s.pcap == nil {
		return false
	}
	s.pcap.chunk = next
	return true
}

func (s *fileSource) LinkType() layers.LinkType { return s.link }

func (s *fileSource) Close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}
