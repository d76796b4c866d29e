package fax

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"pbx-agent/internal/testkit"
)

func TestParseUDPTL(t *testing.T) {
	long := bytes.Repeat([]byte{0xaa}, 300)
	tests := []struct {
		name string
		in   []byte
		err  error
		seq  uint16
		prim int
		nsec int
		nfec int
	}{
		{"redundancy 0", []byte{0, 5, 2, 0x80, 0x01, 0, 0}, nil, 5, 2, 0, 0},
		{"redundancy 2", []byte{0x12, 0x34, 1, 0x06, 0, 2, 1, 0x05, 0}, nil, 0x1234, 1, 2, 0},
		{"long primary", append(append([]byte{0, 1, 0x81, 0x2c}, long...), 0, 0), nil, 1, 300, 0, 0},
		{"fec", []byte{0, 9, 1, 0x06, 0x80, 1, 3, 1, 2, 0xaa, 0xbb}, nil, 9, 1, 0, 1},
		{"short", []byte{0, 1, 0}, ErrUDPTL, 0, 0, 0, 0},
		{"primary overruns", []byte{0, 1, 9, 1, 2}, ErrUDPTL, 0, 0, 0, 0},
		{"no recovery field", []byte{0, 1, 1, 6}, ErrUDPTL, 0, 0, 0, 0},
		{"fragmented", []byte{0, 1, 0xc1, 0, 0, 0}, ErrUDPTL, 0, 0, 0, 0},
		{"too many secondaries", append([]byte{0, 1, 0, 0, 17}, make([]byte, 17)...), ErrUDPTL, 0, 0, 0, 0},
		{"trailing", []byte{0, 1, 1, 6, 0, 0, 7}, ErrUDPTL, 0, 0, 0, 0},
		{"bad fec npackets", []byte{0, 1, 1, 6, 0x80, 2, 3, 0}, ErrUDPTL, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := Parse(tc.in, &p)
			if testkit.WantErr(t, err, tc.err) {
				return
			}
			if p.Seq != tc.seq || len(p.Primary) != tc.prim || p.NSecondary != tc.nsec || p.NFEC != tc.nfec {
				t.Errorf("got seq %d primary %d secondary %d fec %d", p.Seq, len(p.Primary), p.NSecondary, p.NFEC)
			}
		})
	}
}

func TestParseNoAllocs(t *testing.T) {
	in := []byte{0x12, 0x34, 1, 0x06, 0, 2, 1, 0x05, 0}
	var p Packet
	if n := testing.AllocsPerRun(100, func() { _ = Parse(in, &p) }); n != 0 {
		t.Errorf("Parse allocates %.0f times per packet", n)
	}
}

func TestStreamOrder(t *testing.T) {
	var s Stream
	var got []uint16
	push := func(seq uint16, sec int) {
		p := Packet{Seq: seq, Primary: []byte{byte(seq)}}
		for k := 0; k < sec; k++ {
			p.Secondary[k] = []byte{byte(seq - 1 - uint16(k))}
		}
		p.NSecondary = sec
		s.Push(&p, func(seq uint16, ifp []byte) {
			if ifp[0] != byte(seq) {
				t.Errorf("seq %d delivered IFP of %d", seq, ifp[0])
			}
			got = append(got, seq)
		})
	}
	push(65534, 2)
	push(65535, 2)
	push(2, 2) // 0 and 1 lost: recovered from secondaries (wraps)
	push(1, 2) // late
	push(6, 2) // 3 lost for good, 4 and 5 recovered
	want := []uint16{65534, 65535, 0, 1, 2, 4, 5, 6}
	if !slicesEqual(got, want) || s.Recovered != 4 || s.Lost != 1 || s.Late != 1 || s.Delivered != 4 {
		t.Errorf("delivered %v (want %v), stream %+v", got, want, s)
	}
}

func slicesEqual(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func FuzzUDPTL(f *testing.F) {
	f.Add([]byte{0, 5, 2, 0x80, 0x01, 0, 0})
	f.Add([]byte{0x12, 0x34, 1, 0x06, 0, 2, 1, 0x05, 0})
	f.Add([]byte{0, 9, 1, 0x06, 0x80, 1, 3, 1, 2, 0xaa, 0xbb})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p, q Packet
		if Parse(b, &p) != nil || p.NFEC > 0 {
			return
		}
		// a packet that parses re-encodes to a packet that parses the same
		out := Append(nil, &p)
		if err := Parse(out, &q); err != nil {
			t.Fatalf("re-encoded packet does not parse: %v", err)
		}
		if q.Seq != p.Seq || !bytes.Equal(q.Primary, p.Primary) || q.NSecondary != p.NSecondary {
			t.Fatalf("round trip changed the packet")
		}
		for i := range p.NSecondary {
			if !bytes.Equal(p.Secondary[i], q.Secondary[i]) {
				t.Fatalf("secondary %d changed", i)
			}
		}
	})
}

// TestGarbageIntoSpandsp: random IFPs and random audio never crash the
// receivers nor make pages.
func TestGarbageIntoSpandsp(t *testing.T) {
	needSpandsp(t)
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	rx, err := NewT38Receiver(filepath.Join(dir, "t38.tif"))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 600)
	for i := range 20000 {
		n := rng.IntN(len(b))
		for k := range n {
			b[k] = byte(rng.Uint32())
		}
		if i%50 == 0 {
			rx.Advance(160)
		}
		rx.IFP(uint16(rng.Uint32()), b[:n])
	}
	rx.Close()
	ar, err := NewAudioReceiver(filepath.Join(dir, "g711.tif"))
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, 8000)
	for range 30 {
		for k := range pcm {
			pcm[k] = int16(rng.Uint32())
		}
		ar.Audio(pcm)
	}
	ar.Close()
	if r := rx.Result(); r.Pages != 0 {
		t.Errorf("T.38 garbage made %d pages", r.Pages)
	}
	if r := ar.Result(); r.Pages != 0 {
		t.Errorf("audio garbage made %d pages", r.Pages)
	}
}

func TestUnsupportedBuild(t *testing.T) {
	if Built {
		t.Skip("this build decodes faxes (run with -tags nocodecs or CGO_ENABLED=0)")
	}
	if _, err := NewT38Receiver("x.tif"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("NewT38Receiver: %v, want ErrUnsupported", err)
	}
	if _, err := NewAudioReceiver("x.tif"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("NewAudioReceiver: %v, want ErrUnsupported", err)
	}
	if _, err := CountPages("x.tif"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("CountPages: %v, want ErrUnsupported", err)
	}
}

func BenchmarkParseUDPTL(b *testing.B) {
	in := []byte{0x12, 0x34, 1, 0x06, 0, 2, 1, 0x05, 0}
	var p Packet
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(in, &p); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzStream: any sequence of datagrams (split on 0xff 0xfe) through Parse
// and Stream never panics, delivers IFPs in increasing order (a lost one
// skipped) and keeps its counts consistent.
func FuzzStream(f *testing.F) {
	f.Add([]byte{0, 5, 2, 0x80, 0x01, 0, 0, 0xff, 0xfe, 0, 7, 1, 6, 0, 1, 1, 5})
	f.Add([]byte{0, 9, 1, 0x06, 0x80, 1, 3, 1, 2, 0xaa, 0xbb, 0xff, 0xfe, 0, 11, 1, 0x06, 0x80, 1, 3, 2, 1, 1, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Stream
		var p Packet
		var last uint16
		n := 0
		for _, d := range bytes.Split(b, []byte{0xff, 0xfe}) {
			if Parse(d, &p) != nil {
				continue
			}
			s.Push(&p, func(seq uint16, _ []byte) {
				// Ahead is up to half the sequence space after the next
				// expected (last+1), as Push counts it: 1 to 0x8000 after
				// the last delivered.
				if d := seq - last; n > 0 && (d == 0 || d > 0x8000) {
					t.Fatalf("delivered %d after %d", seq, last)
				}
				last = seq
				n++
			})
		}
		if n != s.Delivered+s.Recovered {
			t.Fatalf("%d delivered, stream counts %+v", n, s)
		}
	})
}
