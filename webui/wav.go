package webui

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"time"

	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
)

const wavRate = 8000

// wavHeader returns a 44-byte PCM WAV header.
func wavHeader(channels, dataLen int) []byte {
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+dataLen))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], wavRate)
	binary.LittleEndian.PutUint32(h[28:], uint32(wavRate*2*channels))
	binary.LittleEndian.PutUint16(h[32:], uint16(2*channels))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(dataLen))
	return h
}

// wavStream is one leg's recording, read as a stream.
type wavStream struct {
	io.Reader
	size  int64 // bytes in all, -1 when unknown (then sent chunked)
	close func() error
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
		return &wavStream{Reader: f, size: fileSize, close: f.Close}, nil
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
			hdr := fixFormat(wavHeader(channels, int(data)), channels, rate, bits)
			return &wavStream{Reader: io.MultiReader(bytes.NewReader(hdr), io.LimitReader(br, data)), size: int64(len(hdr)) + data, close: f.Close}, nil
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

// rtpTrack is one SSRC's decoded audio placed on the call's time line.
type rtpTrack struct {
	ssrc    uint32
	first   time.Time
	firstTS uint32
	packets int
	pcm     []int16 // 8 kHz samples from the track's start
}

// wavFromRTP decodes the G.711 streams of an RTP pcap into a stereo WAV:
// the two busiest streams, the earlier-starting one left, less its first
// skip. Other codecs are refused. The decoded samples are held (one leg at
// a time); the WAV itself is produced as it is read.
func wavFromRTP(r io.Reader, skip time.Duration) (*wavStream, error) {
	pr, err := openCapture(r)
	if err != nil {
		return nil, err
	}
	dec, err := decode.New(pr.LinkType())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCapture, err)
	}
	tracks := map[uint32]*rtpTrack{}
	var pkt decode.Packet
	var hdr rtp.Header
	var buf [2048]int16
	const maxSamples = 4 * 3600 * wavRate
	for {
		data, ci, err := pr.ReadPacketData()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return nil, fmt.Errorf("%w: %v", ErrBadCapture, err)
		}
		ok, err := dec.Decode(data, ci.Timestamp, &pkt)
		if !ok || err != nil || pkt.Transport != decode.UDP || !rtp.LooksLikeRTP(pkt.Payload) {
			continue
		}
		n, err := hdr.Unmarshal(pkt.Payload)
		if err != nil || (hdr.PayloadType != 0 && hdr.PayloadType != 8) {
			continue
		}
		t := tracks[hdr.SSRC]
		if t == nil {
			t = &rtpTrack{ssrc: hdr.SSRC, first: ci.Timestamp, firstTS: hdr.Timestamp}
			tracks[hdr.SSRC] = t
		}
		t.packets++
		off := int(int32(hdr.Timestamp - t.firstTS))
		payload := hdr.Payload(pkt.Payload, n)
		if off < 0 || off+len(payload) > maxSamples || len(payload) > len(buf) {
			continue
		}
		k, _ := rtp.DecodeG711(hdr.PayloadType, buf[:], payload)
		if need := off + k; need > len(t.pcm) {
			t.pcm = append(t.pcm, make([]int16, need-len(t.pcm))...)
		}
		copy(t.pcm[off:], buf[:k])
	}
	list := make([]*rtpTrack, 0, len(tracks))
	for _, t := range tracks {
		list = append(list, t)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: no G.711 audio in the call's RTP", fs.ErrNotExist)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].packets > list[j].packets })
	if len(list) > 2 {
		list = list[:2]
	}
	sort.Slice(list, func(i, j int) bool { return list[i].first.Before(list[j].first) })
	start := list[0].first
	var total int
	offs := make([]int, len(list))
	for i, t := range list {
		offs[i] = int(t.first.Sub(start).Seconds() * wavRate)
		total = max(total, offs[i]+len(t.pcm))
	}
	total = min(total, maxSamples)
	from := min(max(0, int(skip.Seconds()*wavRate)), total)
	iv := &interleaver{tracks: list, offs: offs, pos: from, end: total}
	return &wavStream{Reader: io.MultiReader(bytes.NewReader(wavHeader(2, (total-from)*4)), iv), size: 44 + int64(total-from)*4}, nil
}

// interleaver writes the stereo samples of two tracks, sample pos to end,
// as 16-bit little-endian PCM, on demand.
type interleaver struct {
	tracks   []*rtpTrack
	offs     []int
	pos, end int
}

func (v *interleaver) Read(p []byte) (int, error) {
	if v.pos >= v.end {
		return 0, io.EOF
	}
	n := 0
	for ; n+4 <= len(p) && v.pos < v.end; n, v.pos = n+4, v.pos+1 {
		clear(p[n : n+4])
		for ch, t := range v.tracks {
			if i := v.pos - v.offs[ch]; i >= 0 && i < len(t.pcm) {
				binary.LittleEndian.PutUint16(p[n+ch*2:], uint16(t.pcm[i]))
			}
		}
	}
	if n == 0 {
		return 0, io.ErrShortBuffer
	}
	return n, nil
}
