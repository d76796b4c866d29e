package wire

import (
	"crypto/aes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"pbx-agent/sniffer/audio"
)

// listen_stream: pbx-agent's streaming live-listening command. Where
// VoIPmonitor's listen/readaudio make a player poll every 50 ms for mixed
// mono PCM, `listen_stream <ref> [stereo|mono] [depth]` keeps the
// connection open and pushes every 20 ms frame of the call's decoded audio
// as a record until the call ends or the client closes:
//
//	offset size field
//	0      2    magic "LS"
//	2      1    version (1)
//	3      1    kind: 0 audio, 1 end, 2 keepalive
//	4      1    layout: 1 mono (mixed), 2 stereo (caller left, callee right)
//	5      1    reserved (0)
//	6      2    payload length in bytes, little-endian
//	8      4    sequence: the frame's index since the call's first RTP packet
//	12     4    frames dropped so far by this stream's queue (slow client)
//	16     8    capture time of the frame's first sample, µs since the epoch
//	24     4    sample rate of an audio record in Hz; 0 = 8000 (older sensors)
//	28     4    reserved (0)
//	32     n    payload, zero-padded to a multiple of 16 bytes
//
// Audio payloads are signed 16-bit little-endian PCM, 20 ms per channel
// (rate/50 samples), interleaved when stereo: 8 kHz unless the request
// asked for more with `rate=N` (8000, 16000, 24000 or 48000), in which
// case a record is at the call's rate up to N (16 kHz for G.722, 48 kHz
// for Opus). A request without `rate=` gets exactly the 8 kHz records of
// older versions, byte for byte. An end record's payload is the reason
// text ("call ended", "server shutdown"). Every record is a multiple of 16
// bytes, so an AES-encrypted stream (one CBC stream, as every encrypted
// reply) is flushed record by record with nothing held back. Before the
// first record the reply may instead be a plain text error (`call not
// found`, `liveaudio is disabled`, `need aes!`), as the other commands'.
const (
	StreamMagic      = "LS"
	StreamVersion    = 1
	StreamHeaderSize = 32

	StreamAudio     = 0
	StreamEnd       = 1
	StreamKeepalive = 2

	StreamMono   = 1
	StreamStereo = 2

	// MaxStreamPayload bounds a record's payload a client accepts.
	MaxStreamPayload = 4096
)

// End reasons of a listen_stream.
const (
	StreamReasonCallEnded = "call ended"
	StreamReasonShutdown  = "server shutdown"
)

// Plain text replies (VoIPmonitor's) a client tells apart.
const (
	// ReplyUnknownCommand is the whole reply to a command the server does
	// not know; clients turn it into a failure.
	ReplyUnknownCommand = "command not found\n"
	// ReplyCallNotFound and ReplyListenDisabled refuse listen and listen_stream.
	ReplyCallNotFound   = "call not found"
	ReplyListenDisabled = "liveaudio is disabled"
)

func appendStreamHeader(dst []byte, kind, layout byte, n int, seq, dropped uint32, at time.Time, rate int) []byte {
	dst = append(dst, StreamMagic...)
	dst = append(dst, StreamVersion, kind, layout, 0)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(n))
	dst = binary.LittleEndian.AppendUint32(dst, seq)
	dst = binary.LittleEndian.AppendUint32(dst, dropped)
	var us int64
	if !at.IsZero() {
		us = at.UnixMicro()
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(us))
	if rate == audio.SampleRate {
		rate = 0
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rate))
	return append(dst, 0, 0, 0, 0)
}

func padStream(dst []byte) []byte {
	for len(dst)%aes.BlockSize != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// AppendStreamFrame appends one audio record of f, at f's rate, in layout
// (StreamMono or StreamStereo).
func AppendStreamFrame(dst []byte, f *audio.Frame, layout byte, dropped uint64) []byte {
	n := f.Samples() * 2
	if layout == StreamStereo {
		n *= 2
	} else {
		layout = StreamMono
	}
	dst = appendStreamHeader(dst, StreamAudio, layout, n, uint32(f.Index), uint32(dropped), f.Time, f.Rate)
	if layout == StreamStereo {
		dst = f.AppendStereo(dst)
	} else {
		dst = f.AppendMono(dst)
	}
	return padStream(dst)
}

// AppendStreamEnd appends an end record with reason.
func AppendStreamEnd(dst []byte, reason string) []byte {
	if len(reason) > MaxStreamPayload {
		reason = reason[:MaxStreamPayload]
	}
	dst = appendStreamHeader(dst, StreamEnd, 0, len(reason), 0, 0, time.Time{}, 0)
	dst = append(dst, reason...)
	return padStream(dst)
}

// AppendStreamKeepalive appends a keepalive record.
func AppendStreamKeepalive(dst []byte, dropped uint64) []byte {
	return appendStreamHeader(dst, StreamKeepalive, 0, 0, 0, uint32(dropped), time.Time{}, 0)
}

// StreamRecord is one record of a listen_stream.
type StreamRecord struct {
	Kind    byte
	Layout  byte
	Seq     uint32
	Dropped uint32    // frames the server dropped for this stream so far
	Time    time.Time // capture time of the first sample (audio records)
	Rate    int       // sample rate of an audio record (8000 from older sensors)
	PCM     []byte    // audio payload; valid until the next Next
	Reason  string    // end records
}

// Frame fills f from an audio record, at its rate (a mono record goes to
// both channels halved, so that mixing them again gives the mono signal
// back).
func (r *StreamRecord) Frame(f *audio.Frame) error {
	n := r.Rate / 50
	switch {
	case r.Kind != StreamAudio:
		return fmt.Errorf("%w: not an audio record (kind %d)", ErrBadReply, r.Kind)
	case r.Rate < audio.SampleRate || r.Rate > audio.MaxRate || r.Rate%50 != 0:
		return fmt.Errorf("%w: audio record at %d Hz", ErrBadReply, r.Rate)
	case r.Layout == StreamStereo && len(r.PCM) == n*4:
		f.Reset(r.Rate)
		for i := range f.Caller {
			f.Caller[i] = int16(binary.LittleEndian.Uint16(r.PCM[4*i:]))
			f.Callee[i] = int16(binary.LittleEndian.Uint16(r.PCM[4*i+2:]))
		}
	case r.Layout == StreamMono && len(r.PCM) == n*2:
		f.Reset(r.Rate)
		for i := range f.Caller {
			v := int16(binary.LittleEndian.Uint16(r.PCM[2*i:]))
			f.Caller[i], f.Callee[i] = v/2, v-v/2
		}
	default:
		return fmt.Errorf("%w: audio record layout %d with %d bytes", ErrBadReply, r.Layout, len(r.PCM))
	}
	f.Index = int64(r.Seq)
	f.Time = r.Time
	return nil
}

// StreamReader reads listen_stream records from a (decrypted) reply.
type StreamReader struct {
	r     io.Reader
	hdr   [StreamHeaderSize]byte
	body  []byte
	ended bool
}

// NewStreamReader reads records from r.
func NewStreamReader(r io.Reader) *StreamReader {
	return &StreamReader{r: r, body: make([]byte, 0, MaxStreamPayload)}
}

// Next reads the next record. After an end record it returns io.EOF; a
// reply cut without one returns io.ErrUnexpectedEOF; other read errors are
// returned as they are.
func (s *StreamReader) Next() (StreamRecord, error) {
	var rec StreamRecord
	if s.ended {
		return rec, io.EOF
	}
	h := s.hdr[:]
	if _, err := io.ReadFull(s.r, h); err != nil {
		return rec, readErr(err)
	}
	if string(h[:2]) != StreamMagic || h[2] != StreamVersion {
		return rec, fmt.Errorf("%w: bad stream record header % x", ErrBadReply, h[:4])
	}
	rec.Kind, rec.Layout = h[3], h[4]
	n := int(binary.LittleEndian.Uint16(h[6:]))
	rec.Seq = binary.LittleEndian.Uint32(h[8:])
	rec.Dropped = binary.LittleEndian.Uint32(h[12:])
	if us := int64(binary.LittleEndian.Uint64(h[16:])); us != 0 {
		rec.Time = time.UnixMicro(us)
	}
	if rec.Rate = int(binary.LittleEndian.Uint32(h[24:])); rec.Rate == 0 {
		rec.Rate = audio.SampleRate
	}
	if n > MaxStreamPayload {
		return rec, fmt.Errorf("%w: record payload %d bytes", ErrBadReply, n)
	}
	padded := (n + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	s.body = s.body[:padded]
	if _, err := io.ReadFull(s.r, s.body); err != nil {
		return rec, readErr(err)
	}
	switch rec.Kind {
	case StreamAudio:
		rec.PCM = s.body[:n]
	case StreamEnd:
		rec.Reason = string(s.body[:n])
		s.ended = true
	}
	return rec, nil
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
