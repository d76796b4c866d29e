package rtp

// G.711 decoding to 16-bit linear PCM. The tables are computed from the
// ITU-T G.711 segment/mantissa definition when the package loads and are
// never written afterwards.

var (
	ulawTable = makeULawTable()
	alawTable = makeALawTable()
)

func makeULawTable() (t [256]int16) {
	for i := range t {
		u := ^byte(i) // µ-law bytes are sent inverted
		seg := int(u>>4) & 7
		mant := int(u & 0x0f)
		// Magnitude in the 14-bit domain: ((mant<<3) + 0x84) << seg, minus the bias.
		mag := ((mant<<3)+0x84)<<seg - 0x84
		if u&0x80 != 0 {
			mag = -mag
		}
		t[i] = int16(mag)
	}
	return t
}

func makeALawTable() (t [256]int16) {
	for i := range t {
		a := byte(i) ^ 0x55 // even bits are inverted on the wire
		seg := int(a>>4) & 7
		mant := int(a & 0x0f)
		var mag int
		if seg == 0 {
			mag = mant<<4 + 8
		} else {
			mag = (mant<<4 + 0x108) << (seg - 1)
		}
		if a&0x80 == 0 {
			mag = -mag
		}
		t[i] = int16(mag)
	}
	return t
}

// ULawToLinear decodes one µ-law byte.
func ULawToLinear(b byte) int16 { return ulawTable[b] }

// ALawToLinear decodes one A-law byte.
func ALawToLinear(b byte) int16 { return alawTable[b] }

// DecodeULaw decodes src into dst (one sample per byte) and returns the
// number of samples written: min(len(src), len(dst)).
func DecodeULaw(dst []int16, src []byte) int {
	n := min(len(src), len(dst))
	for i := 0; i < n; i++ {
		dst[i] = ulawTable[src[i]]
	}
	return n
}

// DecodeALaw decodes src into dst and returns the number of samples written.
func DecodeALaw(dst []int16, src []byte) int {
	n := min(len(src), len(dst))
	for i := 0; i < n; i++ {
		dst[i] = alawTable[src[i]]
	}
	return n
}

// DecodeG711 decodes a PCMU or PCMA payload; ok is false for other types.
func DecodeG711(pt uint8, dst []int16, src []byte) (n int, ok bool) {
	switch pt {
	case PTPCMU:
		return DecodeULaw(dst, src), true
	case PTPCMA:
		return DecodeALaw(dst, src), true
	}
	return 0, false
}
