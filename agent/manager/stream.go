package manager

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
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
//	24     8    reserved (0)
//	32     n    payload, zero-padded to a multiple of 16 bytes
//
// Audio payloads are 8 kHz signed 16-bit little-endian PCM (160 samples per
// channel, interleaved when stereo); an end record's payload is the reason
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

	// streamKeepalive is how long a stream stays silent before it sends a
	// keepalive record (so a client that went away is noticed when a call
	// has no RTP).
	streamKeepalive = time.Second
	// maxStreamPayload bounds a record's payload a client accepts.
	maxStreamPayload = 4096
)

// End reasons of a listen_stream.
const (
	StreamReasonCallEnded = "call ended"
	StreamReasonShutdown  = "server shutdown"
)

// FrameSource gives the decoded 20 ms frames of active calls (the spool:
// one decode per call shared by every listener). Subscribe returns a
// bounded queue that drops its oldest frame when full and counts it.
type FrameSource interface {
	Subscribe(ref uint64, depth int) (*audio.Subscription, error)
}

// ListenStreamCommand returns the `listen_stream` command, to be added
// through Config.Commands. It needs the AES key when one is configured
// (like listen). src nil answers `liveaudio is disabled`.
func ListenStreamCommand(src FrameSource) Command {
	return Command{
		Help: "stream a call's live audio: listen_stream <callreference> [stereo|mono] [depth]; 20 ms 8 kHz s16le frames pushed until the call ends",
		Run: func(ctx context.Context, w io.Writer, req *Request) error {
			return runListenStream(ctx, w, req, src)
		},
	}
}

type streamArgs struct {
	ref    uint64
	layout byte
	depth  int
}

func parseStreamArgs(args string) (streamArgs, bool) {
	f := strings.Fields(args)
	if len(f) == 0 {
		return streamArgs{}, false
	}
	ref, ok := parseRef(f[0])
	if !ok {
		return streamArgs{}, false
	}
	a := streamArgs{ref: ref, layout: StreamStereo}
	for _, s := range f[1:] {
		switch strings.ToLower(s) {
		case "stereo":
			a.layout = StreamStereo
		case "mono":
			a.layout = StreamMono
		default:
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 500 {
				return streamArgs{}, false
			}
			a.depth = n
		}
	}
	return a, true
}

type flusher interface{ Flush() error }

// Flush pushes the ciphertext written so far to the connection. Whole
// blocks are encrypted as they come, so only the bytes of an unfinished
// block (none when records are block multiples) stay behind.
func (a *aesWriter) Flush() error {
	if f, ok := a.w.(flusher); ok {
		return f.Flush()
	}
	return nil
}

func runListenStream(ctx context.Context, w io.Writer, req *Request, src FrameSource) error {
	if src == nil {
		_, err := io.WriteString(w, listenDisabled)
		return err
	}
	a, ok := parseStreamArgs(req.Args)
	if !ok {
		_, err := io.WriteString(w, listenNoCall)
		return err
	}
	sub, err := src.Subscribe(a.ref, a.depth)
	if err != nil {
		_, err := io.WriteString(w, listenNoCall)
		return err
	}
	defer sub.Close()
	flush := func() error {
		if f, ok := w.(flusher); ok {
			return f.Flush()
		}
		return nil
	}
	buf := make([]byte, 0, StreamHeaderSize+audio.FrameSamples*4)
	keep := time.NewTimer(streamKeepalive)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			buf = AppendStreamEnd(buf[:0], StreamReasonShutdown)
			if _, err := w.Write(buf); err != nil {
				return err
			}
			return flush()
		case f, ok := <-sub.Frames():
			if !ok {
				buf = AppendStreamEnd(buf[:0], StreamReasonCallEnded)
				if _, err := w.Write(buf); err != nil {
					return err
				}
				return flush()
			}
			buf = AppendStreamFrame(buf[:0], f, a.layout, sub.Dropped())
		case <-keep.C:
			buf = appendStreamHeader(buf[:0], StreamKeepalive, 0, 0, 0, uint32(sub.Dropped()), time.Time{})
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		keep.Reset(streamKeepalive)
	}
}

func appendStreamHeader(dst []byte, kind, layout byte, n int, seq, dropped uint32, at time.Time) []byte {
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
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
}

func padStream(dst []byte) []byte {
	for len(dst)%aes.BlockSize != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// AppendStreamFrame appends one audio record of f in layout (StreamMono or
// StreamStereo).
func AppendStreamFrame(dst []byte, f *audio.Frame, layout byte, dropped uint64) []byte {
	n := audio.FrameSamples * 2
	if layout == StreamStereo {
		n *= 2
	} else {
		layout = StreamMono
	}
	dst = appendStreamHeader(dst, StreamAudio, layout, n, uint32(f.Index), uint32(dropped), f.Time)
	if layout == StreamStereo {
		dst = f.AppendStereo(dst)
	} else {
		dst = f.AppendMono(dst)
	}
	return padStream(dst)
}

// AppendStreamEnd appends an end record with reason.
func AppendStreamEnd(dst []byte, reason string) []byte {
	if len(reason) > maxStreamPayload {
		reason = reason[:maxStreamPayload]
	}
	dst = appendStreamHeader(dst, StreamEnd, 0, len(reason), 0, 0, time.Time{})
	dst = append(dst, reason...)
	return padStream(dst)
}

// StreamRecord is one record of a listen_stream.
type StreamRecord struct {
	Kind    byte
	Layout  byte
	Seq     uint32
	Dropped uint32    // frames the server dropped for this stream so far
	Time    time.Time // capture time of the first sample (audio records)
	PCM     []byte    // audio payload; valid until the next Next
	Reason  string    // end records
}

// Frame fills f from an audio record (a mono record goes to both channels
// halved, so that mixing them again gives the mono signal back).
func (r *StreamRecord) Frame(f *audio.Frame) error {
	switch {
	case r.Kind != StreamAudio:
		return fmt.Errorf("%w: not an audio record (kind %d)", ErrBadReply, r.Kind)
	case r.Layout == StreamStereo && len(r.PCM) == audio.FrameSamples*4:
		for i := range f.Caller {
			f.Caller[i] = int16(binary.LittleEndian.Uint16(r.PCM[4*i:]))
			f.Callee[i] = int16(binary.LittleEndian.Uint16(r.PCM[4*i+2:]))
		}
	case r.Layout == StreamMono && len(r.PCM) == audio.FrameSamples*2:
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

// Stream is a client's listen_stream connection. Next is not safe for
// concurrent use; Close may be called from any goroutine.
type Stream struct {
	c     net.Conn
	r     io.Reader
	hdr   [StreamHeaderSize]byte
	body  []byte
	ended bool
	stop  func() bool
}

// DialStream connects to a manager server (network "tcp" or "unix"), asks
// for `listen_stream <ref> <layout>` (AES-encrypted with key when not nil)
// and returns the stream once the server accepted it. A refused request
// returns an error: wrapping ErrCallNotFound for an unknown call, else
// ErrBadReply with the server's text. ctx bounds the dial and the whole
// stream: cancelling it ends Next with an error.
func DialStream(ctx context.Context, network, addr string, ref uint64, layout byte, key *AESKey) (*Stream, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("manager: dial %s %s: %w", network, addr, err)
	}
	s := &Stream{c: c}
	s.stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	lay := "stereo"
	if layout == StreamMono {
		lay = "mono"
	}
	req := []byte(fmt.Sprintf("listen_stream 0x%x %s\r\n\r\n", ref, lay))
	if key != nil {
		req = key.EncryptRequest(req)
	}
	if _, err := c.Write(req); err != nil {
		s.Close()
		return nil, fmt.Errorf("manager: send: %w", err)
	}
	br := bufio.NewReaderSize(c, 16<<10)
	s.r = br
	if key != nil {
		p, err := br.Peek(len(aesReplyPrefix))
		if err == nil && string(p) == aesReplyPrefix {
			_, _ = br.Discard(len(aesReplyPrefix))
			s.r = &cbcReader{r: br, dec: cipher.NewCBCDecrypter(key.block(), key.IV[:])}
		}
	}
	if _, err := io.ReadFull(s.r, s.hdr[:len(StreamMagic)]); err != nil || string(s.hdr[:len(StreamMagic)]) != StreamMagic {
		text := append([]byte(nil), s.hdr[:len(StreamMagic)]...)
		if err == nil {
			rest, _ := io.ReadAll(io.LimitReader(s.r, 4096))
			text = append(text, rest...)
		}
		s.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		text = bytes.TrimSpace(text)
		if string(text) == listenNoCall {
			return nil, fmt.Errorf("%w: 0x%x", ErrCallNotFound, ref)
		}
		if err != nil && len(text) == 0 {
			return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
		}
		return nil, fmt.Errorf("%w: %q", ErrBadReply, text)
	}
	return s, nil
}

// Next reads the next record. After an end record it returns io.EOF; a
// connection cut without one returns io.ErrUnexpectedEOF.
func (s *Stream) Next() (StreamRecord, error) {
	var rec StreamRecord
	if s.ended {
		return rec, io.EOF
	}
	h := s.hdr[:]
	if s.body == nil {
		// The magic of the first record was consumed by DialStream.
		if _, err := io.ReadFull(s.r, h[len(StreamMagic):]); err != nil {
			return rec, s.readErr(err)
		}
		s.body = make([]byte, 0, maxStreamPayload)
	} else if _, err := io.ReadFull(s.r, h); err != nil {
		return rec, s.readErr(err)
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
	if n > maxStreamPayload {
		return rec, fmt.Errorf("%w: record payload %d bytes", ErrBadReply, n)
	}
	padded := (n + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	s.body = s.body[:padded]
	if _, err := io.ReadFull(s.r, s.body); err != nil {
		return rec, s.readErr(err)
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

func (s *Stream) readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return fmt.Errorf("manager: listen_stream: %w", err)
}

// Close ends the stream.
func (s *Stream) Close() error {
	s.stop()
	return s.c.Close()
}

// cbcReader decrypts an AES-CBC stream block by block as it arrives.
type cbcReader struct {
	r       io.Reader
	dec     cipher.BlockMode
	in      [4096]byte
	nin     int
	out     []byte
	outBuf  [4096]byte
	lastErr error
}

func (c *cbcReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.lastErr != nil {
			return 0, c.lastErr
		}
		n, err := c.r.Read(c.in[c.nin:])
		c.nin += n
		full := c.nin - c.nin%aes.BlockSize
		if full > 0 {
			c.dec.CryptBlocks(c.outBuf[:full], c.in[:full])
			c.out = c.outBuf[:full]
			c.nin = copy(c.in[:], c.in[full:c.nin])
		}
		if err != nil {
			c.lastErr = err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}
