package rtp

import "testing"

// Reference points of ITU-T G.711 (decoder output in the 16-bit domain).
func TestG711Decode(t *testing.T) {
	tests := []struct {
		name string
		law  string
		in   byte
		want int16
	}{
		{"ulaw silence 0xFF", "u", 0xFF, 0},
		{"ulaw 0x7F", "u", 0x7F, 0},
		{"ulaw max negative", "u", 0x00, -32124},
		{"ulaw max positive", "u", 0x80, 32124},
		{"ulaw 0xFE", "u", 0xFE, 8},
		{"alaw silence 0xD5", "a", 0xD5, 8},
		{"alaw 0x55", "a", 0x55, -8},
		{"alaw max positive", "a", 0xAA, 32256},
		{"alaw max negative", "a", 0x2A, -32256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got int16
			if tt.law == "u" {
				got = ULawToLinear(tt.in)
			} else {
				got = ALawToLinear(tt.in)
			}
			if got != tt.want {
				t.Errorf("decode(%#x) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

// Both tables are monotonic within each sign and symmetric.
func TestG711Tables(t *testing.T) {
	for _, law := range []struct {
		name string
		tab  *[256]int16
	}{{"ulaw", &ulawTable}, {"alaw", &alawTable}} {
		seen := map[int16]int{}
		for i, v := range law.tab {
			seen[v]++
			if law.tab[i^0x80] != -v && !(law.name == "ulaw" && v == 0) {
				t.Errorf("%s: %#x=%d but sign flip %#x=%d", law.name, i, v, i^0x80, law.tab[i^0x80])
			}
		}
		if law.name == "alaw" && len(seen) != 256 || law.name == "ulaw" && len(seen) != 255 {
			t.Errorf("%s: %d distinct values", law.name, len(seen))
		}
	}
}

func TestDecodeAndSilence(t *testing.T) {
	payload := []byte{0x00, 0x80, 0x7f}
	if !FillSilence(PTPCMU, payload) || payload[0] != 0xFF || payload[2] != 0xFF {
		t.Fatalf("FillSilence PCMU = %x", payload)
	}
	dst := make([]int16, 2)
	if n, ok := DecodeG711(PTPCMU, dst, payload); !ok || n != 2 || dst[0] != 0 {
		t.Errorf("DecodeG711 = %d %v %v", n, ok, dst)
	}
	if FillSilence(PTG729, payload) {
		t.Error("G.729 has no byte silence")
	}
	if _, ok := DecodeG711(PTG729, dst, payload); ok {
		t.Error("DecodeG711 accepted G.729")
	}
	if b, ok := SilenceByte(PTPCMA); !ok || ALawToLinear(b) != 8 {
		t.Errorf("PCMA silence = %#x", b)
	}
}

func BenchmarkDecodeALaw(b *testing.B) {
	src := make([]byte, 160)
	dst := make([]int16, 160)
	b.ReportAllocs()
	b.SetBytes(160)
	for b.Loop() {
		DecodeALaw(dst, src)
	}
}
