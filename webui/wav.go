package webui

import (
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

// trimWAV drops the first d of a PCM WAV (saveaudio_afterconnect).
func trimWAV(b []byte, d time.Duration) ([]byte, error) {
	if d <= 0 {
		return b, nil
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: the recording is not a WAV file", ErrBadCapture)
	}
	var channels, bits, rate int
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:]))
		body := off + 8
		if size < 0 || body+size > len(b) {
			size = len(b) - body
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, fmt.Errorf("%w: short WAV fmt chunk", ErrBadCapture)
			}
			channels = int(binary.LittleEndian.Uint16(b[body+2:]))
			rate = int(binary.LittleEndian.Uint32(b[body+4:]))
			bits = int(binary.LittleEndian.Uint16(b[body+14:]))
		case "data":
			frame := channels * bits / 8
			if frame <= 0 || rate <= 0 {
				return nil, fmt.Errorf("%w: WAV data before its format", ErrBadCapture)
			}
			skip := min(int(d.Seconds()*float64(rate))*frame, size)
			data := b[body+skip : body+size]
			out := wavHeader(channels, len(data))
			out = fixFormat(out, channels, rate, bits)
			return append(out, data...), nil
		}
		off = body + size + size&1
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
// the two busiest streams, the earlier-starting one left. Other codecs are
// refused.
func wavFromRTP(r io.Reader, _ time.Time) ([]byte, error) {
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
	out := wavHeader(2, total*4)
	out = append(out, make([]byte, total*4)...)
	data := out[44:]
	for ch, t := range list {
		for i, s := range t.pcm {
			pos := offs[ch] + i
			if pos >= total {
				break
			}
			binary.LittleEndian.PutUint16(data[pos*4+ch*2:], uint16(s))
		}
	}
	return out, nil
}
