package webui

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"pbx-agent/sniffer/capture"
)

// packetReader reads pcap or pcapng (plain or gzip): capture's reader,
// which refuses records and pcapng blocks claiming more than they hold
// before allocating for them.
type packetReader interface {
	ReadPacket() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// openCapture wraps r as a pcap or pcapng reader.
func openCapture(r io.Reader) (packetReader, error) {
	src, err := capture.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCapture, err)
	}
	return src, nil
}

// callFiles opens the spool files of refs (SIP, and RTP unless noRTP).
// Missing files are skipped; none at all is fs.ErrNotExist.
func (h *Handler) callFiles(ctx context.Context, refs []cdrRef, noRTP bool) ([]io.ReadCloser, error) {
	if h.o.Spool == nil {
		return nil, fmt.Errorf("%w: no spool configured", ErrUnavailable)
	}
	kinds := []FileKind{KindSIP, KindRTP}
	if noRTP {
		kinds = kinds[:1]
	}
	var out []io.ReadCloser
	for _, c := range refs {
		for _, k := range kinds {
			f, err := h.o.Spool.Open(ctx, SpoolFile{Kind: k, CallDate: c.CallDate, Basename: c.Basename, SensorID: c.Sensor})
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				closeAll(out)
				return nil, err
			}
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no pcap of the call is in the spool", fs.ErrNotExist)
	}
	return out, nil
}

func closeAll(fs []io.ReadCloser) {
	for _, f := range fs {
		_ = f.Close()
	}
}

// mergeItem is the next packet of one input.
type mergeItem struct {
	data []byte
	ci   gopacket.CaptureInfo
	src  int
}

type mergeHeap []mergeItem

func (m mergeHeap) Len() int { return len(m) }
func (m mergeHeap) Less(i, j int) bool {
	if m[i].ci.Timestamp.Equal(m[j].ci.Timestamp) {
		return m[i].src < m[j].src
	}
	return m[i].ci.Timestamp.Before(m[j].ci.Timestamp)
}
func (m mergeHeap) Swap(i, j int) { m[i], m[j] = m[j], m[i] }
func (m *mergeHeap) Push(x any)   { *m = append(*m, x.(mergeItem)) }
func (m *mergeHeap) Pop() any {
	old := *m
	x := old[len(old)-1]
	*m = old[:len(old)-1]
	return x
}

// openMerged opens the spool's pcaps of refs as readers ready to merge;
// the caller closes the files.
func (h *Handler) openMerged(ctx context.Context, refs []cdrRef, noRTP bool) ([]io.ReadCloser, []packetReader, layers.LinkType, error) {
	files, err := h.callFiles(ctx, refs, noRTP)
	if err != nil {
		return nil, nil, 0, err
	}
	readers, link, err := prepareMerge(files)
	if err != nil {
		closeAll(files)
		return nil, nil, 0, err
	}
	return files, readers, link, nil
}

// prepareMerge opens the inputs as captures and checks they share a link
// type, before anything is written to the client.
func prepareMerge(files []io.ReadCloser) ([]packetReader, layers.LinkType, error) {
	readers := make([]packetReader, 0, len(files))
	var link layers.LinkType
	for i, f := range files {
		pr, err := openCapture(f)
		if err != nil {
			return nil, 0, err
		}
		if i == 0 {
			link = pr.LinkType()
		} else if pr.LinkType() != link {
			return nil, 0, fmt.Errorf("%w: files of one call have different link types (%v, %v)", ErrBadCapture, link, pr.LinkType())
		}
		readers = append(readers, pr)
	}
	return readers, link, nil
}

// merger yields the packets of readers in time order. A truncated input
// ends that input (what was read is kept).
type merger struct {
	readers []packetReader
	h       mergeHeap
	started bool
}

func (m *merger) push(i int) error {
	data, ci, err := m.readers[i].ReadPacket()
	if err != nil {
		if errors.Is(err, io.EOF) { // a capture cut short too
			return nil
		}
		return fmt.Errorf("%w: %v", ErrBadCapture, err)
	}
	heap.Push(&m.h, mergeItem{data: append([]byte(nil), data...), ci: ci, src: i})
	return nil
}

// next returns the earliest packet left; ok is false at the end.
func (m *merger) next() (it mergeItem, ok bool, err error) {
	if !m.started {
		m.started = true
		m.h = make(mergeHeap, 0, len(m.readers))
		for i := range m.readers {
			if err := m.push(i); err != nil {
				return it, false, err
			}
		}
	}
	if m.h.Len() == 0 {
		return it, false, nil
	}
	it = heap.Pop(&m.h).(mergeItem)
	if it.ci.CaptureLength > len(it.data) {
		it.ci.CaptureLength = len(it.data)
	}
	if it.ci.Length < it.ci.CaptureLength {
		it.ci.Length = it.ci.CaptureLength
	}
	return it, true, m.push(it.src)
}

// mergeTo writes the packets of readers in time order as one pcap.
func mergeTo(w io.Writer, readers []packetReader, link layers.LinkType) error {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(262144, link); err != nil {
		return err
	}
	m := merger{readers: readers}
	for {
		it, ok, err := m.next()
		if !ok {
			return err
		}
		if err := pw.WritePacket(it.ci, it.data); err != nil {
			return err
		}
		if err != nil {
			return err
		}
	}
}

// layersLink converts a stored link type number.
func layersLink(v uint8) layers.LinkType { return layers.LinkType(v) }
