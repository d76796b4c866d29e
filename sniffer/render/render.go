// Package render renders a stored call's audio on demand: its RTP pcap
// decoded (every codec the codec package decodes, dynamic payload types
// named by the SDP in its SIP pcap) into a WAV or Ogg/Opus stream at the
// call's native rate, caller left and callee right, for calls whose audio
// was not saved (saveaudio = no) or was saved in the other format.
//
// The stream is produced as it is read: the pcap is read once to size the
// recording (its span and codecs) and once more to decode it through an
// audio.Call (the live path's timeline: reordering, comfort noise, codec
// changes, paused stretches silent) into an audio.Recorder. Memory is
// bounded by the call's audio ring and one Ogg page, however long the call.
package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sdp"
	"pbx-agent/sniffer/sip"
)

// Opener opens one of a call's stored pcaps (decompressed); an error
// wrapping fs.ErrNotExist when the call has none.
type Opener func() (io.ReadCloser, error)

// Input is a stored call.
type Input struct {
	// RTP opens the call's RTP pcap. It is opened twice.
	RTP Opener
	// SIP opens the call's SIP pcap (nil or missing: dynamic payload types
	// stay unnamed, and the stream that starts first is the caller's).
	SIP Opener
}

// Options say what to render.
type Options struct {
	Format audio.Format
	Mono   bool          // one mixed channel (saveaudio_stereo = no)
	Skip   time.Duration // cut from the start (saveaudio_afterconnect)
	Log    *slog.Logger  // hears of codecs that cannot be decoded
}

// maxDuration bounds a rendered recording (VoIPmonitor's absolute_timeout
// default): a pcap spanning more is cut there.
const maxDuration = 4 * time.Hour

// maxSSRC bounds the streams the sizing pass tracks (garbage on media
// ports must not grow memory).
const maxSSRC = 64

// Stream is a rendered recording, read as it is made. Close it (it stops
// the decoding).
type Stream struct {
	io.Reader
	// Size is the stream's length in bytes, -1 when not known in advance
	// (Ogg/Opus).
	Size   int64
	Rate   int // sample rate of the recording
	Format audio.Format
	pr     *io.PipeReader
	done   chan struct{}
	stop   atomic.Bool
}

// Close stops the decoding and waits for it.
func (s *Stream) Close() error {
	s.stop.Store(true)
	s.pr.Close()
	<-s.done
	return nil
}

// sides are the media addresses each side's SDP announced.
type sides struct {
	names  [32]string
	caller []netip.AddrPort
	callee []netip.AddrPort
}

// Render returns the recording of in as opt asks. An error wrapping
// fs.ErrNotExist when the RTP pcap is missing or holds no decodable
// audio; wrapping audio.ErrNoEncoder for Ogg in a build without libopus.
func Render(ctx context.Context, in Input, opt Options) (*Stream, error) {
	if opt.Format != audio.FormatWAV && opt.Format != audio.FormatOgg {
		return nil, fmt.Errorf("%w: render %v", audio.ErrFormat, opt.Format)
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	sd, err := readSDP(in.SIP)
	if err != nil {
		return nil, err
	}
	sz, err := size(in.RTP, sd)
	if err != nil {
		return nil, err
	}
	skip := min(int64(opt.Skip.Seconds()*float64(sz.rate)), sz.samples)
	rec, err := audio.NewRecorder(audio.RecorderConfig{Format: opt.Format, Mono: opt.Mono, Rate: sz.rate,
		Samples: sz.samples - skip, Serial: uint32(sz.first.UnixNano())})
	if err != nil {
		return nil, err
	}
	// Ogg needs its encoder: fail now, not after the response started.
	head, err := rec.Start(nil, sz.rate)
	if err != nil {
		return nil, err
	}
	rf, err := in.RTP()
	if err != nil {
		rec.Close()
		return nil, err
	}
	pr, pw := io.Pipe()
	s := &Stream{Reader: pr, Size: -1, Rate: sz.rate, Format: opt.Format, pr: pr, done: make(chan struct{})}
	if opt.Format == audio.FormatWAV {
		ch := int64(2)
		if opt.Mono {
			ch = 1
		}
		s.Size = audio.WAVHeaderSize + (sz.samples-skip)*2*ch
	}
	go func() {
		defer close(s.done)
		defer rf.Close()
		err := decodeInto(ctx, rf, sd, rec, head, skip, pw, &s.stop, opt.Log)
		pw.CloseWithError(err)
	}()
	return s, nil
}

// readSDP collects the dynamic payload type names and each side's media
// addresses from the call's SIP pcap: SDP sent from the address and port
// the first request came from is the caller's, the rest the callee's
// (by port too: on one host, a PBX and its phones share the address).
func readSDP(open Opener) (*sides, error) {
	sd := &sides{}
	if open == nil {
		return sd, nil
	}
	f, err := open()
	if errors.Is(err, fs.ErrNotExist) {
		return sd, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := capture.NewReader(f)
	if err != nil {
		return sd, nil // an unreadable SIP pcap costs the names, not the audio
	}
	dec, err := decode.New(src.LinkType())
	if err != nil {
		return sd, nil
	}
	var (
		pkt    decode.Packet
		m      sip.Message
		ss     sdp.Session
		caller netip.AddrPort // who sent the first request
	)
	for range 10000 {
		data, ci, err := src.ReadPacket()
		if err != nil {
			break
		}
		if ok, err := dec.Decode(data, ci.Timestamp, &pkt); !ok || err != nil {
			continue
		}
		if n, err := sip.Parse(pkt.Payload, &m); err != nil || n <= 0 {
			continue
		}
		if m.Request && !caller.IsValid() {
			caller = pkt.Src
		}
		body := sip.SDPBody(&m)
		if len(body) == 0 || sdp.Parse(body, &ss) != nil {
			continue
		}
		fromCaller := pkt.Src == caller
		for i := 0; i < ss.NMedia; i++ {
			md := &ss.Media[i]
			if !md.Audio() {
				continue
			}
			for j := 0; j < md.NRTPMap; j++ {
				if r := &md.RTPMap[j]; r.PT >= 96 && r.PT <= 127 {
					sd.names[r.PT-96] = codec.SDPName(string(r.Encoding), r.ClockRate)
				}
			}
			if !md.Conn.IsValid() || md.Port == 0 {
				continue
			}
			ap := netip.AddrPortFrom(md.Conn.Unmap(), md.Port)
			if fromCaller {
				sd.caller = appendNew(sd.caller, ap)
			} else {
				sd.callee = appendNew(sd.callee, ap)
			}
		}
	}
	return sd, nil
}

func appendNew(l []netip.AddrPort, ap netip.AddrPort) []netip.AddrPort {
	for _, a := range l {
		if a == ap {
			return l
		}
	}
	if len(l) >= 16 {
		return l
	}
	return append(l, ap)
}

// name is the encoding name of payload type pt in this call.
func (sd *sides) name(pt uint8) string {
	if pt >= 96 && pt <= 127 {
		return sd.names[pt-96]
	}
	return codec.StaticName(pt)
}

// direction tells who sent an RTP packet: by the SDP addresses, else the
// first sender seen is the caller.
func (sd *sides) direction(src, dst netip.AddrPort, first *netip.AddrPort) audio.Dir {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	switch {
	case contains(sd.caller, src), contains(sd.callee, dst):
		return audio.FromCaller
	case contains(sd.callee, src), contains(sd.caller, dst):
		return audio.FromCallee
	}
	if !first.IsValid() {
		*first = src
	}
	if src == *first {
		return audio.FromCaller
	}
	return audio.FromCallee
}

func contains(l []netip.AddrPort, ap netip.AddrPort) bool {
	for _, a := range l {
		if a == ap {
			return true
		}
	}
	return false
}

// sizing is what the first pass learns.
type sizing struct {
	first, last time.Time
	rate        int   // the highest native rate of the decodable codecs
	samples     int64 // the recording's length at rate
}

// rtpPackets calls fn for each RTP packet of the pcap until fn returns
// false or the file ends.
func rtpPackets(r io.Reader, fn func(pkt *decode.Packet, h *rtp.Header, payload []byte) bool) error {
	src, err := capture.NewReader(r)
	if err != nil {
		return fmt.Errorf("%w: RTP pcap: %w", ErrCapture, err)
	}
	dec, err := decode.New(src.LinkType())
	if err != nil {
		return fmt.Errorf("%w: RTP pcap: %w", ErrCapture, err)
	}
	var pkt decode.Packet
	var h rtp.Header
	for {
		data, ci, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: RTP pcap: %w", ErrCapture, err)
		}
		if ok, err := dec.Decode(data, ci.Timestamp, &pkt); !ok || err != nil || pkt.Transport != decode.UDP || !rtp.LooksLikeRTP(pkt.Payload) {
			continue
		}
		n, err := h.Unmarshal(pkt.Payload)
		if err != nil || h.PayloadType >= 72 && h.PayloadType <= 76 { // RTCP, not RTP
			continue
		}
		if !fn(&pkt, &h, h.Payload(pkt.Payload, n)) {
			return nil
		}
	}
}

// size reads the RTP pcap once: the span of its audio packets and the
// highest native rate among the codecs this build decodes.
func size(open Opener, sd *sides) (sizing, error) {
	f, err := open()
	if err != nil {
		return sizing{}, err
	}
	defer f.Close()
	var sz sizing
	decodable := map[string]bool{}
	ssrcs := map[uint32]bool{}
	err = rtpPackets(f, func(pkt *decode.Packet, h *rtp.Header, _ []byte) bool {
		name := sd.name(h.PayloadType)
		ok, seen := decodable[name]
		if !seen {
			ok = decodes(name)
			decodable[name] = ok
		}
		if !ok || (!ssrcs[h.SSRC] && len(ssrcs) >= maxSSRC) {
			return true
		}
		ssrcs[h.SSRC] = true
		if sz.first.IsZero() {
			sz.first = pkt.Time
		}
		if pkt.Time.After(sz.last) {
			sz.last = pkt.Time
		}
		if name != codec.CN {
			sz.rate = max(sz.rate, codec.NativeRate(name))
		}
		return true
	})
	if err != nil {
		return sz, err
	}
	if sz.first.IsZero() {
		return sz, fmt.Errorf("%w: no decodable audio in the call's RTP", fs.ErrNotExist)
	}
	if sz.rate == 0 {
		sz.rate = audio.SampleRate
	}
	span := min(sz.last.Sub(sz.first)+audio.FrameDuration, maxDuration)
	sz.samples = int64(span.Seconds() * float64(sz.rate))
	return sz, nil
}

var (
	decodesMu sync.Mutex
	decodesOK = map[string]bool{}
)

// decodes says whether this build decodes the codec (cached).
func decodes(name string) bool {
	switch name {
	case "", codec.Event:
		return false
	}
	decodesMu.Lock()
	defer decodesMu.Unlock()
	ok, seen := decodesOK[name]
	if !seen {
		d, err := codec.New(name, codec.NativeRate(name))
		if err == nil {
			d.Close()
		}
		ok = err == nil
		decodesOK[name] = ok
	}
	return ok
}

// decodeInto is the second pass: every RTP packet through an audio.Call
// whose frames the recorder turns into the file's bytes, written to w.
func decodeInto(ctx context.Context, r io.Reader, sd *sides, rec *audio.Recorder, head []byte, skip int64,
	w io.Writer, stop *atomic.Bool, log *slog.Logger) error {
	defer rec.Close()
	var werr error
	buf := head
	flush := func() {
		if werr == nil && len(buf) > 0 {
			_, werr = w.Write(buf)
		}
		buf = buf[:0]
	}
	flush()
	rate := int64(rec.Rate())
	pos := int64(0) // samples of the timeline seen, at the recording's rate
	var part audio.Frame
	call := audio.NewCall(audio.Config{Log: log, Rate: int(rate), Sink: func(f *audio.Frame) {
		if werr != nil || f.Rate <= 0 {
			return
		}
		n := int64(f.Samples()) * rate / int64(f.Rate)
		if cut := skip - pos; cut > 0 {
			// saveaudio_afterconnect: the frames before the answer are
			// left out, the one it falls in is cut there.
			pos += n
			if cut >= n {
				return
			}
			k := int(cut * int64(f.Rate) / rate)
			part = audio.Frame{Index: f.Index, Time: f.Time, Rate: f.Rate, Caller: f.Caller[k:], Callee: f.Callee[k:]}
			f = &part
		} else {
			pos += n
		}
		var err error
		if buf, err = rec.Frame(buf, f); err != nil {
			werr = err
			return
		}
		if len(buf) >= 32<<10 {
			flush()
		}
	}})
	for pt, name := range sd.names {
		if name != "" {
			call.MapPayloadType(uint8(96+pt), name)
		}
	}
	var first netip.AddrPort
	var count int
	err := rtpPackets(r, func(pkt *decode.Packet, h *rtp.Header, payload []byte) bool {
		if count++; count%1024 == 0 && (ctx.Err() != nil || stop.Load()) {
			return false
		}
		call.Feed(sd.direction(pkt.Src, pkt.Dst, &first), h, payload, pkt.Time, false)
		return werr == nil && !stop.Load()
	})
	call.Close()
	if err == nil {
		err = werr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil || stop.Load() {
		return err
	}
	// The timeline may end short of the size the first pass measured:
	// silence up to it, a second at a time.
	var quiet audio.Frame
	for left := rec.Left(); left > 0 && werr == nil; left = rec.Left() {
		quiet.Reset(int(rate))
		quiet.Caller, quiet.Callee = quiet.Caller[:min(left, rate/50)], quiet.Callee[:min(left, rate/50)]
		if buf, err = rec.Frame(buf, &quiet); err != nil {
			return err
		}
		if len(buf) >= 32<<10 {
			flush()
		}
	}
	buf, _, err = rec.Finish(buf)
	if err != nil {
		return err
	}
	flush()
	return werr
}
