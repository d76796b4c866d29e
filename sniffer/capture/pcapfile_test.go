package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// record is one frame as a reader returned it.
type record struct {
	data []byte
	ci   gopacket.CaptureInfo
}

// readAll reads every record (copied) up to the first error, which it
// returns (nil at the end, cut short or not: a Source reads both as the end).
func readAll(read func() ([]byte, gopacket.CaptureInfo, error)) ([]record, error) {
	var out []record
	for {
		data, ci, err := read()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, record{bytes.Clone(data), ci})
	}
}

// comparePcapgo reads b with the pcap reader and with gopacket's pcapgo and
// fails unless both give the same records and fail at the same record.
func comparePcapgo(t *testing.T, b []byte) {
	t.Helper()
	want, werr := []record(nil), error(nil)
	if r, err := pcapgo.NewReader(bytes.NewReader(b)); err != nil {
		werr = err
	} else {
		want, werr = readAll(r.ZeroCopyReadPacketData)
	}
	var got []record
	var gerr error
	if p, err := newPcapReader(bytes.NewReader(b)); err != nil {
		gerr = err
	} else {
		got, gerr = readAll(p.ReadPacket)
	}
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("pcapgo error %v, pcap reader error %v", werr, gerr)
	}
	sameRecords(t, "", got, want)
	// In batches (ReadFrames): the same records, each batch valid whole.
	for _, size := range []int{2, 64} {
		var got []record
		var gerr error
		if p, err := newPcapReader(bytes.NewReader(b)); err != nil {
			gerr = err
		} else {
			got, gerr = readBatches(p, size)
		}
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("batches of %d: pcapgo error %v, pcap reader error %v", size, werr, gerr)
		}
		sameRecords(t, fmt.Sprintf("batches of %d: ", size), got, want)
	}
}

// readBatches is readAll with records read size at a time, copied once
// the whole batch is read.
func readBatches(p *pcapReader, size int) ([]record, error) {
	data, ci := make([][]byte, size), make([]gopacket.CaptureInfo, size)
	var out []record
	for {
		n, err := p.readBuffered(data, ci)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, errors.New("no record and no error")
		}
		for i := range n {
			out = append(out, record{bytes.Clone(data[i]), ci[i]})
		}
	}
}

func sameRecords(t *testing.T, what string, got, want []record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s%d records, pcapgo %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].data, want[i].data) || !got[i].ci.Timestamp.Equal(want[i].ci.Timestamp) ||
			got[i].ci.CaptureLength != want[i].ci.CaptureLength || got[i].ci.Length != want[i].ci.Length {
			t.Fatalf("%srecord %d: %+v, pcapgo %+v", what, i, got[i].ci, want[i].ci)
		}
	}
}

// synthPcap writes n records of growing size in the given byte order and
// resolution (nanoseconds or microseconds).
func synthPcap(order binary.AppendByteOrder, nano bool, n, snaplen int) []byte {
	return synthPcapSized(order, nano, n, snaplen, 1500)
}

// synthPcapSized is synthPcap with frames of 14 to 14+maxSize-1 bytes.
func synthPcapSized(order binary.AppendByteOrder, nano bool, n, snaplen, maxSize int) []byte {
	var b []byte
	magic := uint32(magicMicro)
	if nano {
		magic = magicNano
	}
	b = order.AppendUint32(b, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = order.AppendUint32(b, uint32(snaplen))
	b = order.AppendUint32(b, uint32(layers.LinkTypeEthernet))
	for i := 0; i < n; i++ {
		size := 14 + i*97%maxSize
		b = order.AppendUint32(b, uint32(1700000000+i))
		b = order.AppendUint32(b, uint32(i*7919%999999))
		b = order.AppendUint32(b, uint32(size))
		b = order.AppendUint32(b, uint32(size+i%3))
		for j := 0; j < size; j++ {
			b = append(b, byte(i+j))
		}
	}
	return b
}

func TestPcapReaderMatchesPcapgo(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "pcap", "*.pcap"))
	if len(files) == 0 {
		t.Fatal("no pcap in testdata/pcap")
	}
	tests := map[string][]byte{
		// 3,000 records of up to 1.5 kB: more than one 1 MiB buffer fill
		"little-endian µs": synthPcap(binary.LittleEndian, false, 3000, 65535),
		"big-endian ns":    synthPcap(binary.BigEndian, true, 3000, 65535),
		"cut in a record":  synthPcap(binary.LittleEndian, false, 3000, 65535)[:1<<20+5],
		"cut in a header":  synthPcap(binary.LittleEndian, false, 10, 65535)[:24+16+14+5],
		"over snaplen":     synthPcap(binary.LittleEndian, false, 10, 100),
		"header only":      synthPcap(binary.LittleEndian, false, 0, 65535),
		"short header":     synthPcap(binary.LittleEndian, false, 0, 65535)[:10],
		"not pcap":         []byte("this is not a capture file at all........"),
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tests[filepath.Base(f)] = b
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) { comparePcapgo(t, b) })
	}
}

// A record larger than the reader's buffer is read whole (the buffer grows).
// TestPcapReaderChunks: with UseChunks, the frames handed out are slices
// of the chunks, each stays as read until the end (no chunk is written
// again once the reader asked for the next), records cut by a chunk's end
// move whole to the next, a record larger than a chunk gets one of its
// size, and the records are those pcapgo reads.
func TestPcapReaderChunks(t *testing.T) {
	b := synthPcapSized(binary.LittleEndian, true, 3000, 1<<16, 3000)
	want, err := readAll(mustPcapgo(t, b).ZeroCopyReadPacketData)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		r     io.Reader
		chunk int
	}{
		{"whole reads", bytes.NewReader(b), 16 << 10},
		{"small reads", &smallReads{b: b, n: 1000}, 16 << 10},
		{"records beyond a chunk", bytes.NewReader(b), 2000},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, err := NewReader(c.r)
			if err != nil {
				t.Fatal(err)
			}
			var chunks [][]byte
			if !src.(Chunked).UseChunks(func(n int) []byte {
				chunks = append(chunks, make([]byte, max(n, c.chunk)))
				return chunks[len(chunks)-1]
			}) {
				t.Fatal("a pcap stream does not take chunks")
			}
			var got [][]byte // not copied
			data, _, err := src.ReadPacket()
			for ; err == nil; data, _, err = src.ReadPacket() {
				got = append(got, data)
			}
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			if len(chunks) < 10 {
				t.Fatalf("%d chunks", len(chunks))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i].data) {
					t.Fatalf("record %d changed after it was read (%d chunks)", i, len(chunks))
				}
			}
		})
	}
}

func mustPcapgo(t *testing.T, b []byte) *pcapgo.Reader {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// smallReads returns at most n bytes per Read.
type smallReads struct {
	b []byte
	n int
}

func (r *smallReads) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

func TestPcapReaderLargeRecord(t *testing.T) {
	b := synthPcap(binary.LittleEndian, false, 0, maxRecord)
	frame := bytes.Repeat([]byte{0xab}, pcapBufSize+1000)
	for i := 0; i < 2; i++ {
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint32(b, 2)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = append(b, frame...)
	}
	comparePcapgo(t, b)
}

// OpenFile reads gzipped pcaps (as pcapgo did) and cut files end cleanly.
func TestOpenFileGzipAndCut(t *testing.T) {
	raw := synthPcap(binary.LittleEndian, true, 500, 65535)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	dir := t.TempDir()
	for name, b := range map[string][]byte{"gz": z.Bytes(), "cut": raw[:len(raw)-3]} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := readAll(src.ReadPacket)
		src.Close()
		want := 500
		if name == "cut" {
			want = 499
		}
		if err != nil || len(recs) != want {
			t.Fatalf("%s: %d records (want %d), err %v", name, len(recs), want, err)
		}
		if ts := recs[1].ci.Timestamp; ts.Unix() != 1700000001 || ts.Nanosecond() != 7919 || ts.Location().String() != "UTC" {
			t.Fatalf("%s: timestamp %v", name, ts)
		}
	}
}

// The pcap reader and pcapgo agree on any input: same records, an error at
// the same place.
func FuzzPcapReader(f *testing.F) {
	f.Add(synthPcap(binary.LittleEndian, false, 3, 65535))
	f.Add(synthPcap(binary.BigEndian, true, 3, 200))
	f.Add(synthPcap(binary.LittleEndian, false, 2, 65535)[:60])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 24 {
			snap := binary.LittleEndian.Uint32(b[16:])
			if m := binary.LittleEndian.Uint32(b); m != magicMicro && m != magicNano {
				snap = binary.BigEndian.Uint32(b[16:])
			}
			if snap > maxRecord {
				return // pcapgo allocates what a huge snaplen says; the pcap reader caps records
			}
		}
		comparePcapgo(t, b)
	})
}

// BenchmarkPcapRead compares the pcap reader with pcapgo's zero-copy reader
// (behind a 1 MiB bufio.Reader, as the capture package used it) on the same
// in-memory file of RTP-sized frames (14 to 413 bytes). One op = one
// record.
func BenchmarkPcapRead(b *testing.B) {
	file := synthPcapSized(binary.LittleEndian, false, 200000, 65535, 400)
	for _, bc := range []struct {
		name string
		open func(io.Reader) func() ([]byte, gopacket.CaptureInfo, error)
	}{
		{"pcapgo", func(r io.Reader) func() ([]byte, gopacket.CaptureInfo, error) {
			pr, err := pcapgo.NewReader(bufioSize(r))
			if err != nil {
				b.Fatal(err)
			}
			return pr.ZeroCopyReadPacketData
		}},
		{"capture", func(r io.Reader) func() ([]byte, gopacket.CaptureInfo, error) {
			pr, err := newPcapReader(r)
			if err != nil {
				b.Fatal(err)
			}
			return pr.ReadPacket
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			read := bc.open(bytes.NewReader(file))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := read(); err != nil {
					read = bc.open(bytes.NewReader(file))
				}
			}
		})
	}
}

func bufioSize(r io.Reader) io.Reader { return bufio.NewReaderSize(r, 1<<20) }
