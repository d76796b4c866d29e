package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"pbx-agent/sniffer/codec"
)

// Ogg/Opus (RFC 7845): an ID header page ("OpusHead"), a comment header
// page ("OpusTags"), then pages of Opus packets whose granule positions
// count 48 kHz samples, pre-skip included. The recordings are written as
// 20 ms packets, one page per second of audio.

const (
	// OggOpusPacketsPerPage is how many 20 ms packets a page holds (1 s):
	// the memory an Ogg/Opus writer holds beyond libopus's state.
	OggOpusPacketsPerPage = 50
	opusGranuleRate       = 48000
	opusMaxPacket         = 1500
	opusVendor            = "pbx-agent"
)

// OpusRates are the PCM rates libopus encodes.
var OpusRates = []int{8000, 12000, 16000, 24000, 48000}

// opusRate is the smallest rate libopus takes that is ≥ rate (48000 past
// all of them): a recording at another rate is resampled to it.
func opusRate(rate int) int {
	for _, r := range OpusRates {
		if r >= rate {
			return r
		}
	}
	return opusGranuleRate
}

// OpusBitrate is the bit rate a recording is encoded at: 16 kbit/s per
// channel for narrowband (8 kHz) audio, 24 kbit/s per channel above,
// transparent for speech.
func OpusBitrate(rate, channels int) int {
	if rate <= 8000 {
		return 16000 * channels
	}
	return 24000 * channels
}

// OggOpusWriter encodes interleaved PCM into an Ogg/Opus stream, page by
// page: Append returns the pages completed so far, Finish the last one.
// It holds one 20 ms frame of PCM, one page and libopus's state, however
// long the recording. Not safe for concurrent use.
type OggOpusWriter struct {
	enc      *codec.OpusEncoder
	ogg      *OggWriter
	rate     int
	channels int
	frame    []int16 // interleaved samples waiting for a whole 20 ms frame
	pkt      [opusMaxPacket]byte
	preskip  int64 // 48 kHz samples
	samples  int64 // per channel, at rate, given to Append
	encoded  int64 // per channel, at rate, encoded (padding included)
	done     bool
}

// NewOggOpusWriter returns a writer of channels (1 or 2) at rate (one of
// OpusRates) with the stream's serial number, its header pages already
// appended to dst. An error wrapping ErrNoEncoder in a build without
// libopus.
func NewOggOpusWriter(dst []byte, rate, channels int, serial uint32) (*OggOpusWriter, []byte, error) {
	if opusRate(rate) != rate {
		return nil, dst, fmt.Errorf("%w: Ogg/Opus at %d Hz", codec.ErrRate, rate)
	}
	enc, err := codec.NewOpusEncoder(rate, channels, OpusBitrate(rate, channels))
	if err != nil {
		if !codec.Built {
			err = fmt.Errorf("%w: Ogg/Opus: %w", ErrNoEncoder, err)
		}
		return nil, dst, err
	}
	w := &OggOpusWriter{enc: enc, ogg: NewOggWriter(serial), rate: rate, channels: channels,
		frame: make([]int16, 0, rate/50*channels)}
	w.preskip = int64(enc.Lookahead()) * opusGranuleRate / int64(rate)
	le := binary.LittleEndian
	head := make([]byte, 0, 19)
	head = append(head, "OpusHead"...)
	head = append(head, 1, byte(channels))
	head = le.AppendUint16(head, uint16(w.preskip))
	head = le.AppendUint32(head, uint32(rate))
	head = le.AppendUint16(head, 0) // output gain
	head = append(head, 0)          // channel mapping family 0: mono or stereo (left, right)
	dst = w.ogg.Packet(dst, head, 0)
	dst = w.ogg.Page(dst, 0)
	tags := make([]byte, 0, 64)
	tags = append(tags, "OpusTags"...)
	tags = le.AppendUint32(tags, uint32(len(opusVendor)))
	tags = append(tags, opusVendor...)
	tags = le.AppendUint32(tags, 0) // no user comments
	dst = w.ogg.Packet(dst, tags, 0)
	dst = w.ogg.Page(dst, 0)
	return w, dst, nil
}

// Rate is the PCM rate Append takes.
func (w *OggOpusWriter) Rate() int { return w.rate }

// Channels is the channel count of the PCM Append takes.
func (w *OggOpusWriter) Channels() int { return w.channels }

// Append encodes interleaved PCM (len(pcm) a multiple of Channels) and
// appends the pages it completed to dst.
func (w *OggOpusWriter) Append(dst []byte, pcm []int16) ([]byte, error) {
	if w.done {
		return dst, fmt.Errorf("%w: Ogg/Opus writer finished", ErrClosed)
	}
	w.samples += int64(len(pcm) / w.channels)
	for len(pcm) > 0 {
		n := min(cap(w.frame)-len(w.frame), len(pcm))
		w.frame = append(w.frame, pcm[:n]...)
		pcm = pcm[n:]
		if len(w.frame) < cap(w.frame) {
			break
		}
		var err error
		if dst, err = w.encodeFrame(dst); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func (w *OggOpusWriter) encodeFrame(dst []byte) ([]byte, error) {
	n, err := w.enc.Encode(w.frame, w.pkt[:])
	w.frame = w.frame[:0]
	if err != nil {
		return dst, err
	}
	w.encoded += int64(w.rate / 50)
	// A full page goes out when the next packet comes, so that the last
	// page, written by Finish, always ends a packet.
	if w.ogg.Packets() >= OggOpusPacketsPerPage {
		dst = w.ogg.Page(dst, 0)
	}
	return w.ogg.Packet(dst, w.pkt[:n], w.granule(w.encoded)), nil
}

// granule is the 48 kHz granule position after n samples at the rate.
func (w *OggOpusWriter) granule(n int64) int64 {
	return w.preskip + n*opusGranuleRate/int64(w.rate)
}

// Finish encodes the last partial frame (padded with silence; the final
// granule position trims the padding, RFC 7845 §4.5) and appends the last
// page, marked end of stream, then frees the encoder.
func (w *OggOpusWriter) Finish(dst []byte) ([]byte, error) {
	if w.done {
		return dst, nil
	}
	var err error
	if len(w.frame) > 0 {
		real := len(w.frame)
		w.frame = w.frame[:cap(w.frame)]
		clear(w.frame[real:])
		dst, err = w.encodeFrame(dst)
	}
	if err == nil {
		// The end is trimmed to the real length: the last page's granule
		// position says how many samples the stream has.
		if w.ogg.Packets() > 0 {
			w.ogg.granule = w.granule(w.samples)
		}
		dst = w.ogg.Page(dst, OggEOS)
	}
	w.Close()
	return dst, err
}

// Close frees the encoder without writing the end of the stream.
func (w *OggOpusWriter) Close() {
	w.done = true
	if w.enc != nil {
		w.enc.Close()
		w.enc = nil
	}
}

// CutOggOpus copies the Ogg/Opus stream r to w without its first skip of
// audio (saveaudio_afterconnect on a stored Ogg recording), page by page:
// the source's pages that end before the cut are left out, the rest are
// written again with their granule positions moved back, and the pre-skip
// grows by what is left of the cut inside the first page kept (RFC 7845
// §4.2 and §4.5), so players start at the cut. Memory: one page. An error
// wrapping ErrOgg when r is not Ogg/Opus.
func CutOggOpus(w io.Writer, r io.Reader, skip time.Duration) error {
	skip = max(skip, 0)
	rd := NewOggReader(r, OggMaxPage)
	var (
		head, tags []byte
		ow         *OggWriter
		out        []byte
		page       [][]byte // packets of the source page being read
		store      []byte   // their bytes
		dropped    int64    // granule position of the last page left out
		target     int64    // first sample to play, in the source's granule positions
	)
	for n := 0; ; n++ {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			if ow == nil {
				return fmt.Errorf("%w: no Ogg/Opus headers", ErrOgg)
			}
			// The whole stream was before the cut: an empty stream.
			if len(out) == 0 && !ow.started {
				out = ow.Packet(out, head, 0)
				out = ow.Page(out, 0)
				out = ow.Packet(out, tags, 0)
				out = ow.Page(out, 0)
				out = ow.Page(out, OggEOS)
			}
			_, err = w.Write(out)
			return err
		}
		if err != nil {
			return err
		}
		switch n {
		case 0:
			if len(p.Data) < 19 || string(p.Data[:8]) != "OpusHead" {
				return fmt.Errorf("%w: first packet is not OpusHead", ErrOgg)
			}
			head = bytes.Clone(p.Data)
			ow = NewOggWriter(p.Serial)
			target = int64(binary.LittleEndian.Uint16(head[10:])) + int64(skip)*opusGranuleRate/int64(time.Second)
			continue
		case 1:
			if len(p.Data) < 8 || string(p.Data[:8]) != "OpusTags" {
				return fmt.Errorf("%w: second packet is not OpusTags", ErrOgg)
			}
			tags = bytes.Clone(p.Data)
			continue
		}
		start := len(store)
		store = append(store, p.Data...)
		page = append(page, store[start:len(store):len(store)])
		if p.Granule < 0 {
			continue
		}
		if p.Granule <= target && !ow.started {
			dropped, page, store = p.Granule, page[:0], store[:0]
			continue
		}
		if !ow.started {
			pre := min(target-dropped, 65535)
			binary.LittleEndian.PutUint16(head[10:], uint16(pre))
			out = ow.Packet(out, head, 0)
			out = ow.Page(out, 0)
			out = ow.Packet(out, tags, 0)
			out = ow.Page(out, 0)
		}
		for _, d := range page {
			out = ow.Packet(out, d, p.Granule-dropped)
		}
		flags := byte(0)
		if p.EOS {
			flags = OggEOS
		}
		out = ow.Page(out, flags)
		if _, err := w.Write(out); err != nil {
			return err
		}
		out, page, store = out[:0], page[:0], store[:0]
	}
}
