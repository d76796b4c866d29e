package sniffer

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/capture"
)

// frames is a capture held in memory, read as a capture.Source from a
// position to a position (a replay stopped half way for listcalls).
type frames struct {
	link layers.LinkType
	data [][]byte
	ts   []time.Time
}

func loadFrames(t *testing.T, read func() ([]byte, gopacket.CaptureInfo, error), link layers.LinkType) *frames {
	t.Helper()
	f := &frames{link: link}
	for {
		data, ci, err := read()
		if errors.Is(err, io.EOF) {
			return f
		}
		if err != nil {
			t.Fatal(err)
		}
		f.data = append(f.data, bytes.Clone(data))
		f.ts = append(f.ts, ci.Timestamp)
	}
}

// fileFrames loads a capture file.
func fileFrames(t *testing.T, path string) *frames {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return loadFrames(t, src.ReadPacket, src.LinkType())
}

// frameSource reads frames[i:end].
type frameSource struct {
	f      *frames
	i, end int
	// pause, when set, is called before frame pauseAt is read (the capture
	// waits for frames there).
	pause   func()
	pauseAt int
}

func (s *frameSource) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	if s.i >= s.end {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	if s.pause != nil && s.i == s.pauseAt {
		s.pause()
	}
	s.i++
	d := s.f.data[s.i-1]
	return d, gopacket.CaptureInfo{Timestamp: s.f.ts[s.i-1], CaptureLength: len(d), Length: len(d)}, nil
}

func (s *frameSource) LinkType() layers.LinkType { return s.f.link }
func (s *frameSource) Close() error              { return nil }

// batchSource is a frameSource that hands out frames in batches (as a
// pcap file does), of 7 to 56 frames: batches end anywhere in the capture.
type batchSource struct{ frameSource }

func (s *batchSource) ReadFrames(data [][]byte, ci []gopacket.CaptureInfo) (int, error) {
	n := 0
	for ; n < min(len(data), 7+s.i%50); n++ {
		d, c, err := s.ReadPacket()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		data[n], ci[n] = d, c
	}
	return n, nil
}
