package simulate

import (
	"math"
	"math/bits"
)

// linearToULaw encodes a 16-bit linear sample as G.711 µ-law.
func linearToULaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int32(s)
	sign := byte(0)
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, clip) + bias
	exp := bits.Len32(uint32(v>>7)) - 1 // v>>7 is 1..255
	mant := byte(v>>(exp+3)) & 0x0f
	return ^(sign | byte(exp)<<4 | mant)
}

// uLawToLinear decodes a G.711 µ-law byte.
func uLawToLinear(u byte) int16 {
	u = ^u
	t := (int32(u&0x0f)<<3 + 0x84) << ((u & 0x70) >> 4)
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// linearToALaw encodes a 16-bit linear sample as G.711 A-law.
func linearToALaw(s int16) byte {
	v := int32(s) >> 3 // 13-bit magnitude
	mask := byte(0xd5)
	if v < 0 {
		v, mask = -v-1, 0x55
	}
	seg := 0
	if v > 0x1f {
		seg = bits.Len32(uint32(v)) - 5 // 0x20..0x3f → 1, …, 0x800..0xfff → 7
	}
	if seg > 7 {
		return 0x7f ^ mask
	}
	a := byte(seg) << 4
	if seg < 2 {
		a |= byte(v>>1) & 0x0f
	} else {
		a |= byte(v>>seg) & 0x0f
	}
	return a ^ mask
}

// aLawToLinear decodes a G.711 A-law byte.
func aLawToLinear(a byte) int16 {
	a ^= 0x55
	t := int32(a&0x0f) << 4
	switch seg := (a & 0x70) >> 4; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t = (t + 0x108) << (seg - 1)
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// samplesPerFrame is 20 ms at 8 kHz.
const samplesPerFrame = 160

// toneFrame returns one 20 ms G.711 frame of a sine tone at hz (which must
// divide 8000/160*k evenly so consecutive frames join without a click) and
// -10 dBFS. alaw selects A-law, else µ-law.
func toneFrame(hz float64, alaw bool) [samplesPerFrame]byte {
	var f [samplesPerFrame]byte
	amp := 32767 * math.Pow(10, -10.0/20)
	for i := range f {
		s := int16(math.Round(amp * math.Sin(2*math.Pi*hz*float64(i)/8000)))
		if alaw {
			f[i] = linearToALaw(s)
		} else {
			f[i] = linearToULaw(s)
		}
	}
	return f
}
