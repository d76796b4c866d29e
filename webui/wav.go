package webui

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"pbx-agent/sniffer/audio"
)

// wavStream is one leg's recording (WAV or Ogg/Opus), read as a stream.
type wavStream struct {
	io.Reader
	size   int64 // bytes in all, -1 when unknown (then sent chunked)
	format audio.Format
	close  func() error
}

func (w *wavStream) Close() error {
	if w.close == nil {
		return nil
	}
	return w.close()
}

// maxWAVChunks bounds the chunks read before "data" in a WAV file.
const maxWAVChunks = 64

// wavFile streams a spool WAV file; with skip > 0 (saveaudio_afterconnect)
// its first skip is cut: the header is read, a new one written for the
// shorter data, the skipped bytes discarded and the rest passed through.
// Nothing but the header is held in memory.
func wavFile(f io.ReadCloser, skip time.Duration) (*wavStream, error) {
	fileSize := int64(-1)
	if st, ok := f.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil {
			fileSize = fi.Size()
		}
	}
	if skip <= 0 {
		return &wavStream{Reader: f, size: fileSize, format: audio.FormatWAV, close: f.Close}, nil
	}
	br := bufio.NewReader(f)
	var riff [12]byte
	if _, err := io.ReadFull(br, riff[:]); err != nil || string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: the recording is not a WAV file", ErrBadCapture)
	}
	consumed := int64(12)
	var channels, bits, rate int
	for range maxWAVChunks {
		var ch [8]byte
		if _, err := io.ReadFull(br, ch[:]); err != nil {
			break
		}
		consumed += 8
		id, size := string(ch[:4]), int64(binary.LittleEndian.Uint32(ch[4:]))
		switch id {
		case "fmt ":
			if size < 16 || size > 1024 {
				return nil, fmt.Errorf("%w: WAV fmt chunk of %d bytes", ErrBadCapture, size)
			}
			body := make([]byte, size+size&1)
			if _, err := io.ReadFull(br, body); err != nil {
				return nil, fmt.Errorf("%w: short WAV fmt chunk", ErrBadCapture)
			}
			consumed += int64(len(body))
			channels = int(binary.LittleEndian.Uint16(body[2:]))
			rate = int(binary.LittleEndian.Uint32(body[4:]))
			bits = int(binary.LittleEndian.Uint16(body[14:]))
		case "data":
			frame := channels * bits / 8
			if frame <= 0 || rate <= 0 {
				return nil, fmt.Errorf("%w: WAV data before its format", ErrBadCapture)
			}
			if fileSize >= 0 && size > fileSize-consumed {
				size = max(0, fileSize-consumed)
			}
			cut := min(int64(skip.Seconds()*float64(rate))*int64(frame), size)
			if _, err := io.CopyN(io.Discard, br, cut); err != nil {
				return nil, fmt.Errorf("%w: WAV shorter than its header says", ErrBadCapture)
			}
			data := size - cut
			hdr := fixFormat(audio.AppendWAVHeader(nil, rate, channels, uint32(data)), channels, rate, bits)
			return &wavStream{Reader: io.MultiReader(bytes.NewReader(hdr), io.LimitReader(br, data)), size: int64(len(hdr)) + data,
				format: audio.FormatWAV, close: f.Close}, nil
		default:
			if _, err := io.CopyN(io.Discard, br, size+size&1); err != nil {
				break
			}
			consumed += size + size&1
		}
	}
	return nil, fmt.Errorf("%w: WAV without a data chunk", ErrBadCapture)
}

func fixFormat(h []byte, channels, rate, bits int) []byte {
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*channels*bits/8))
	binary.LittleEndian.PutUint16(h[32:], uint16(channels*bits/8))
	binary.LittleEndian.PutUint16(h[34:], uint16(bits))
	return h
}

// piped runs produce in a goroutine writing into a pipe whose reading end
// is the stream; closing the stream stops it (its writes fail) and waits.
func piped(format audio.Format, closeSrc func() error, produce func(w io.Writer) error) *wavStream {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(produce(pw))
	}()
	return &wavStream{Reader: pr, size: -1, format: format, close: func() error {
		pr.Close()
		<-done
		return closeSrc()
	}}
}

// oggFile streams a spool Ogg/Opus file, without its first skip when
// skip > 0 (its pages re-written as they are read).
func oggFile(f io.ReadCloser, skip time.Duration) *wavStream {
	if skip <= 0 {
		ws, _ := wavFile(f, 0)
		ws.format = audio.FormatOgg
		return ws
	}
	return piped(audio.FormatOgg, f.Close, func(w io.Writer) error { return audio.CutOggOpus(w, f, skip) })
}

// wavToOgg encodes a 16-bit PCM WAV stream (the spool's, already cut) as
// Ogg/Opus while it is read. An error wrapping audio.ErrNoEncoder in a
// build without libopus.
func wavToOgg(ws *wavStream) (*wavStream, error) {
	var h [audio.WAVHeaderSize]byte
	if _, err := io.ReadFull(ws, h[:]); err != nil || string(h[0:4]) != "RIFF" || string(h[36:40]) != "data" {
		return nil, fmt.Errorf("%w: the recording is not a canonical WAV file", ErrBadCapture)
	}
	channels, rate := int(binary.LittleEndian.Uint16(h[22:])), int(binary.LittleEndian.Uint32(h[24:]))
	if bits := binary.LittleEndian.Uint16(h[34:]); bits != 16 || channels < 1 || channels > 2 {
		return nil, fmt.Errorf("%w: WAV of %d-bit, %d channels: only 16-bit mono or stereo is encoded as Ogg/Opus", ErrBadCapture, bits, channels)
	}
	enc, head, err := audio.NewOggOpusWriter(nil, rate, channels, uint32(rate))
	if err != nil {
		return nil, err
	}
	return piped(audio.FormatOgg, ws.Close, func(w io.Writer) error {
		defer enc.Close()
		out := head
		var raw [32 << 10]byte
		pcm := make([]int16, 0, len(raw)/2)
		for {
			n, rerr := io.ReadFull(ws, raw[:])
			n -= n % (2 * channels)
			pcm = pcm[:0]
			for i := 0; i < n; i += 2 {
				pcm = append(pcm, int16(binary.LittleEndian.Uint16(raw[i:])))
			}
			var err error
			if out, err = enc.Append(out, pcm); err != nil {
				return err
			}
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
					return rerr
				}
				if out, err = enc.Finish(out); err != nil {
					return err
				}
			}
			if _, err := w.Write(out); err != nil {
				return err
			}
			if rerr != nil {
				return nil
			}
			out = out[:0]
		}
	}), nil
}
