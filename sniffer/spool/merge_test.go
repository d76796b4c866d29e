package spool_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/spool"
)

// rec is one packet of a test pcap: its time (ms after base) and a tag
// byte as data.
type rec struct {
	ms  int
	tag byte
}

var mergeBase = time.Date(2026, 3, 14, 9, 26, 0, 0, time.UTC)

// mkPcap builds a pcap of recs.
func mkPcap(t testing.TB, link layers.LinkType, nanos bool, recs ...rec) []byte {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if nanos {
		w = pcapgo.NewWriterNanos(&b)
	}
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		data := bytes.Repeat([]byte{r.tag}, 20)
		ci := gopacket.CaptureInfo{Timestamp: mergeBase.Add(time.Duration(r.ms) * time.Millisecond), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// readMerged returns the tags and times of a merged pcap and whether its
// timestamps are in nanoseconds.
func readMerged(t testing.TB, b []byte) (tags string, ms []int, nanos bool) {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("merged output: %v", err)
	}
	nanos = b[0] == 0x4d // little-endian nanosecond magic
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return tags, ms, nanos
		}
		if err != nil {
			t.Fatalf("merged output: %v", err)
		}
		tags += string(data[:1])
		ms = append(ms, int(ci.Timestamp.Sub(mergeBase)/time.Millisecond))
	}
}

func TestMerge(t *testing.T) {
	eth := layers.LinkTypeEthernet
	sip := func(t testing.TB) []byte { return mkPcap(t, eth, false, rec{0, 'S'}, rec{40, 'S'}, rec{100, 'S'}) }
	rtp := func(t testing.TB) []byte {
		return mkPcap(t, eth, false, rec{20, 'R'}, rec{40, 'R'}, rec{60, 'R'}, rec{200, 'R'})
	}
	tests := []struct {
		name      string
		in        func(t testing.TB) [][]byte
		wantTags  string
		wantMS    []int
		wantNanos bool
		wantErr   error
	}{
		{name: "interleaved, ties keep input order",
			in:       func(t testing.TB) [][]byte { return [][]byte{sip(t), rtp(t)} },
			wantTags: "SRSRRSR", wantMS: []int{0, 20, 40, 40, 60, 100, 200}},
		{name: "ties the other way round",
			in:       func(t testing.TB) [][]byte { return [][]byte{rtp(t), sip(t)} },
			wantTags: "SRRSRSR", wantMS: []int{0, 20, 40, 40, 60, 100, 200}},
		{name: "one input",
			in:       func(t testing.TB) [][]byte { return [][]byte{rtp(t)} },
			wantTags: "RRRR", wantMS: []int{20, 40, 60, 200}},
		{name: "empty input (header only)",
			in:       func(t testing.TB) [][]byte { return [][]byte{mkPcap(t, eth, false), sip(t)} },
			wantTags: "SSS", wantMS: []int{0, 40, 100}},
		{name: "input out of order stays in its order",
			in: func(t testing.TB) [][]byte {
				return [][]byte{mkPcap(t, eth, false, rec{50, 'A'}, rec{10, 'A'}), mkPcap(t, eth, false, rec{30, 'B'})}
			},
			wantTags: "BAA", wantMS: []int{30, 50, 10}},
		{name: "last record cut short: the rest is kept",
			in: func(t testing.TB) [][]byte {
				b := rtp(t)
				return [][]byte{sip(t), b[:len(b)-5]}
			},
			wantTags: "SRSRRS", wantMS: []int{0, 20, 40, 40, 60, 100}},
		{name: "nanosecond input makes a nanosecond output",
			in: func(t testing.TB) [][]byte {
				return [][]byte{sip(t), mkPcap(t, eth, true, rec{30, 'N'})}
			},
			wantTags: "SNSS", wantMS: []int{0, 30, 40, 100}, wantNanos: true},
		{name: "link types differ",
			in: func(t testing.TB) [][]byte {
				return [][]byte{sip(t), mkPcap(t, layers.LinkTypeLinuxSLL, false, rec{1, 'L'})}
			},
			wantErr: spool.ErrPcap},
		{name: "not a pcap",
			in:      func(t testing.TB) [][]byte { return [][]byte{sip(t), []byte("SIP/2.0 200 OK\r\n\r\n and more bytes")} },
			wantErr: spool.ErrPcap},
		{name: "no input", in: func(t testing.TB) [][]byte { return nil }, wantErr: spool.ErrPcap},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var readers []io.Reader
			for _, b := range tc.in(t) {
				readers = append(readers, bytes.NewReader(b))
			}
			var out bytes.Buffer
			err := spool.Merge(&out, readers...)
			if testkit.WantErr(t, err, tc.wantErr) {
				return
			}
			tags, ms, nanos := readMerged(t, out.Bytes())
			if tags != tc.wantTags || fmt.Sprint(ms) != fmt.Sprint(tc.wantMS) || nanos != tc.wantNanos {
				t.Errorf("got %q %v nanos=%v, want %q %v nanos=%v", tags, ms, nanos, tc.wantTags, tc.wantMS, tc.wantNanos)
			}
		})
	}
}

// TestMergeCall merges a call's spool files: every packet of both, in
// time order; a call without files is fs.ErrNotExist.
func TestMergeCall(t *testing.T) {
	p := newPoolDriver(t, t.TempDir(), spool.PoolLimits{})
	p.call(1, t0, 150)
	p.end(1)
	var out bytes.Buffer
	if err := spool.MergeCall(&out, p.dir, t0, time.UTC, spool.FBasename(callID(1))); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	n, sipN := 0, 0
	var last time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ci.Timestamp.Before(last) {
			t.Errorf("packet %d at %v before %v", n, ci.Timestamp, last)
		}
		last = ci.Timestamp
		if bytes.Contains(data, []byte("INVITE sip:")) {
			sipN++
		}
		n++
	}
	want := countRecords(t, p.path(1, spool.TypeSIP)) + countRecords(t, p.path(1, spool.TypeRTP))
	if n != want || sipN != 1 || n != 151 {
		t.Errorf("%d packets (%d INVITE), want %d = 151 (1)", n, sipN, want)
	}
	if err := spool.MergeCall(io.Discard, p.dir, t0, time.UTC, "nosuchcall"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing call: err = %v, want fs.ErrNotExist", err)
	}
}

// mergeInputs are two pcaps of n packets each, interleaved.
func mergeInputs(tb testing.TB, n int) (a, b []byte) {
	ra, rb := make([]rec, n), make([]rec, n)
	for i := range n {
		ra[i], rb[i] = rec{2 * i, 'S'}, rec{2*i + 1, 'R'}
	}
	return mkPcap(tb, layers.LinkTypeEthernet, false, ra...), mkPcap(tb, layers.LinkTypeEthernet, false, rb...)
}

// TestMergeBoundedAllocs: the allocations of a merge do not grow with the
// packets (none per packet: memory stays bounded).
func TestMergeBoundedAllocs(t *testing.T) {
	allocs := func(n int) float64 {
		a, b := mergeInputs(t, n)
		ra, rb := bytes.NewReader(a), bytes.NewReader(b)
		return testing.AllocsPerRun(20, func() {
			ra.Reset(a)
			rb.Reset(b)
			if err := spool.Merge(io.Discard, ra, rb); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, big := allocs(10), allocs(5000)
	if big != small {
		t.Errorf("%v allocations for 2×10 packets, %v for 2×5000: allocations per packet", small, big)
	}
}

// BenchmarkMerge merges two pcaps of 1,000 packets each.
func BenchmarkMerge(b *testing.B) {
	pa, pb := mergeInputs(b, 1000)
	ra, rb := bytes.NewReader(pa), bytes.NewReader(pb)
	b.ReportAllocs()
	b.SetBytes(int64(len(pa) + len(pb)))
	for b.Loop() {
		ra.Reset(pa)
		rb.Reset(pb)
		if err := spool.Merge(io.Discard, ra, rb); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/packet")
}

// FuzzMerge: any two inputs merge or fail with ErrPcap, never panic; a
// merge that succeeds is a readable pcap with every packet of both.
func FuzzMerge(f *testing.F) {
	a, b := mergeInputs(f, 3)
	f.Add(a, b)
	f.Add(a[:30], b)
	f.Add(mkPcap(f, layers.LinkTypeEthernet, true, rec{5, 'N'}), b)
	f.Add([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var out bytes.Buffer
		err := spool.Merge(&out, bytes.NewReader(a), bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, spool.ErrPcap) {
				t.Fatalf("error not ErrPcap: %v", err)
			}
			return
		}
		r, err := pcapgo.NewReader(&out)
		if err != nil {
			t.Fatalf("merged output: %v", err)
		}
		for {
			if _, _, err := r.ReadPacketData(); err == io.EOF {
				return
			} else if err != nil {
				t.Fatalf("merged output: %v", err)
			}
		}
	})
}
