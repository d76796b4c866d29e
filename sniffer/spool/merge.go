package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// mergeInput is one capture being merged: its reader and its packet
// waiting to be written (data valid until the reader's next read).
type mergeInput struct {
	r    *pcapgo.Reader
	data []byte
	ci   gopacket.CaptureInfo
	ok   bool // a packet is waiting
}

func (in *mergeInput) next(i int) error {
	data, ci, err := in.r.ZeroCopyReadPacketData()
	switch {
	case err == nil:
		in.data, in.ci, in.ok = data, ci, true
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The end, or a record cut short (a file still being written or
		// left by a crash): what was read is kept.
		in.ok = false
		return nil
	}
	return fmt.Errorf("%w: input %d: %w", ErrPcap, i, err)
}

// maxRecord is the longest record Merge reads (tcpdump's MAXIMUM_SNAPLEN).
const maxRecord = 262144

// Merge writes the packets of the pcap inputs (a call's SIP and RTP
// pcaps) as one pcap in time order; packets with equal times keep the
// order of the inputs. It streams: one packet per input is held, whatever
// the sizes. The inputs must share a link type; the output has
// microsecond timestamps unless an input has nanosecond ones.
func Merge(w io.Writer, inputs ...io.Reader) error {
	if len(inputs) == 0 {
		return fmt.Errorf("%w: nothing to merge", ErrPcap)
	}
	ins := make([]mergeInput, len(inputs))
	var link layers.LinkType
	nanos := false
	for i, r := range inputs {
		br := bufio.NewReaderSize(r, 64<<10)
		// The magic says the resolution (gopacket 1.1.19's Resolution()
		// has it backwards).
		if m, err := br.Peek(4); err == nil {
			switch binary.LittleEndian.Uint32(m) {
			case 0xa1b23c4d, 0x4d3cb2a1:
				nanos = true
			}
		}
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return fmt.Errorf("%w: input %d: %w", ErrPcap, i, err)
		}
		// Records longer than a file's snaplen are read, not refused (as
		// tshark and mergecap do).
		pr.SetSnaplen(max(pr.Snaplen(), maxRecord))
		if i == 0 {
			link = pr.LinkType()
		} else if pr.LinkType() != link {
			return fmt.Errorf("%w: link types differ: input 0 %v, input %d %v", ErrPcap, link, i, pr.LinkType())
		}
		ins[i].r = pr
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var pw *pcapgo.Writer
	if nanos {
		pw = pcapgo.NewWriterNanos(bw)
	} else {
		pw = pcapgo.NewWriter(bw)
	}
	if err := pw.WriteFileHeader(maxRecord, link); err != nil {
		return fmt.Errorf("spool: merge: %w", err)
	}
	for i := range ins {
		if err := ins[i].next(i); err != nil {
			return err
		}
	}
	for {
		best := -1
		for i := range ins {
			if ins[i].ok && (best < 0 || ins[i].ci.Timestamp.Before(ins[best].ci.Timestamp)) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		in := &ins[best]
		ci := in.ci
		ci.CaptureLength = len(in.data)
		ci.Length = max(ci.Length, ci.CaptureLength)
		if err := pw.WritePacket(ci, in.data); err != nil {
			return fmt.Errorf("spool: merge: %w", err)
		}
		if err := in.next(best); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("spool: merge: %w", err)
	}
	return nil
}

// MergeCall writes the merged SIP+RTP pcap of the call whose files
// Path names (root, the call's first packet time in loc, its fbasename).
// Compressed pcaps (.pcap.gz) are read decompressed. A call with only one
// of the two gets that one; with none,
// fs.ErrNotExist. Files of a call still open (".tmp") are not read, nor
// anything Open refuses.
func MergeCall(w io.Writer, root string, start time.Time, loc *time.Location, fbasename string) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("spool: merge: %w", err)
	}
	defer r.Close() // the pcaps opened in it stay open
	var files []io.Reader
	for _, typ := range []string{TypeSIP, TypeRTP} {
		f, err := OpenPcap(r, Path("", start, loc, typ, fbasename, "pcap"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("spool: merge: %w", err)
		}
		defer f.Close()
		files = append(files, f)
	}
	if len(files) == 0 {
		return fmt.Errorf("spool: merge %s: %w", fbasename, fs.ErrNotExist)
	}
	return Merge(w, files...)
}
