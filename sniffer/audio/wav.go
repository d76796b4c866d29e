package audio

import "encoding/binary"

// WAVHeaderSize is the size of the canonical PCM WAV header.
const WAVHeaderSize = 44

// AppendWAVHeader appends a canonical 44-byte RIFF/WAVE header for 16-bit
// PCM at rate with the given channel count and data size in bytes. A
// writer that streams writes it with dataBytes 0 first and patches it at
// the end.
func AppendWAVHeader(dst []byte, rate, channels int, dataBytes uint32) []byte {
	le := binary.LittleEndian
	dst = append(dst, "RIFF"...)
	dst = le.AppendUint32(dst, 36+dataBytes)
	dst = append(dst, "WAVEfmt "...)
	dst = le.AppendUint32(dst, 16)
	dst = le.AppendUint16(dst, 1) // PCM
	dst = le.AppendUint16(dst, uint16(channels))
	dst = le.AppendUint32(dst, uint32(rate))
	dst = le.AppendUint32(dst, uint32(rate*2*channels))
	dst = le.AppendUint16(dst, uint16(2*channels))
	dst = le.AppendUint16(dst, 16)
	dst = append(dst, "data"...)
	return le.AppendUint32(dst, dataBytes)
}
