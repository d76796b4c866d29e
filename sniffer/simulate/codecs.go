package simulate

import (
	"embed"
	"fmt"
	"math"
	"time"

	"pbx-agent/sniffer/codec"
)

// Codecs beyond G.711 accepted in Options.Codec: every call sends the
// caller's and the callee's tone encoded with the codec's library
// (sniffer/codec's Encoder, so a build without cgo has none of them).
const (
	CodecG722 = "g722" // payload type 9, 16 kHz audio on an 8000 RTP clock
	CodecGSM  = "gsm"  // payload type 3
	CodecG729 = "g729" // payload type 18
	CodecOpus = "opus" // dynamic payload type 111, opus/48000/2
	CodecG726 = "g726" // dynamic payload type 112, G726-32/8000 (RFC 3551 packing)
	CodecG723 = "g723" // payload type 4, G.723.1 at 6.3 kbit/s, 30 ms packets
	// CodecSpeex and CodecSpeexWB are Speex narrow- and wideband on dynamic
	// payload types 98 and 99.
	CodecSpeex   = "speex"
	CodecSpeexWB = "speexwb"
	// CodecILBC is iLBC's 30 ms mode on dynamic payload type 97. Debian has
	// no iLBC encoder: its calls send recorded frames (ilbc/, RFC 3951's
	// reference encoder) of 700 Hz (caller) and 1300 Hz (callee) only.
	CodecILBC = "ilbc"
)

// Codecs lists the names Options.Codec takes.
var Codecs = []string{CodecPCMU, CodecPCMA, CodecMixed, CodecG722, CodecGSM, CodecG729, CodecOpus,
	CodecG726, CodecG723, CodecSpeex, CodecSpeexWB, CodecILBC}

//go:embed ilbc/ilbc30-700.raw ilbc/ilbc30-1300.raw
var ilbcFrames embed.FS

// encodedCodec is how a codec other than G.711 goes on the wire.
type encodedCodec struct {
	name   string // sniffer/codec's canonical name
	pt     uint8
	rtpmap string // SDP rtpmap encoding/clock[/channels]
	clock  int    // RTP timestamp units per second
	fmtp   string // SDP fmtp parameters, if any
}

var encodedCodecs = map[string]encodedCodec{
	CodecG722:    {codec.G722, 9, "G722/8000", 8000, ""},
	CodecGSM:     {codec.GSM, 3, "GSM/8000", 8000, ""},
	CodecG729:    {codec.G729, 18, "G729/8000", 8000, ""},
	CodecOpus:    {codec.Opus, 111, "opus/48000/2", 48000, ""},
	CodecG726:    {codec.G726, 112, "G726-32/8000", 8000, ""},
	CodecG723:    {codec.G723, 4, "G723/8000", 8000, "annexa=no"},
	CodecSpeex:   {codec.Speex, 98, "speex/8000", 8000, ""},
	CodecSpeexWB: {codec.SpeexWB, 99, "speex/16000", 16000, ""},
	CodecILBC:    {codec.ILBC, 97, "iLBC/8000", 8000, "mode=30"},
}

// encodedTones holds each direction's tone encoded for the length of a
// call (payloads replayed in a loop past maxEncoded: the tones have whole
// periods per second).
type encodedTones struct {
	encodedCodec
	ptime   time.Duration
	tsStep  uint32
	payload [2][][]byte
}

// maxEncoded bounds the tone encoded per direction: longer calls replay it.
const maxEncoded = 5 * time.Minute

func newEncodedTones(name string, tones [2]float64, dur time.Duration) (*encodedTones, error) {
	ec, ok := encodedCodecs[name]
	if !ok {
		return nil, fmt.Errorf("%w: codec %q", ErrOption, name)
	}
	et := &encodedTones{encodedCodec: ec}
	if ec.name == codec.ILBC {
		return et, et.recorded(tones)
	}
	amp := 32767 * math.Pow(10, -10.0/20) // -10 dBFS, as the G.711 tones
	buf := make([]byte, 1500)
	for dir, hz := range tones {
		e, err := codec.NewEncoder(ec.name)
		if err != nil {
			return nil, fmt.Errorf("%w: codec %q: %w", ErrOption, name, err)
		}
		rate, fs := codec.NativeRate(ec.name), e.FrameSamples()
		et.ptime = time.Duration(fs) * time.Second / time.Duration(rate)
		et.tsStep = uint32(int64(fs) * int64(ec.clock) / int64(rate))
		// The call's length (at most maxEncoded, whole seconds), encoded
		// from the encoder's start as the decoder starts with the call: a
		// CELP decoder (Speex) fed a stream whose encoder had a past it
		// lacks drifts and grows, also at the join of a short loop.
		keep := int((min(dur, maxEncoded) + time.Second - 1) / time.Second * time.Second / et.ptime)
		pcm := make([]int16, fs)
		for k := 0; k < keep; k++ {
			for i := range pcm {
				pcm[i] = int16(math.Round(amp * math.Sin(2*math.Pi*hz*float64(k*fs+i)/float64(rate))))
			}
			m, err := e.Encode(pcm, buf)
			if err != nil {
				e.Close()
				return nil, fmt.Errorf("%w: codec %q: %w", ErrOption, name, err)
			}
			et.payload[dir] = append(et.payload[dir], append([]byte(nil), buf[:m]...))
		}
		e.Close()
	}
	return et, nil
}

// recorded loads the iLBC frames of the two tones: 66 frames, 1.98 s
// holding whole periods of 700 and 1300 Hz, replayed in a loop.
func (et *encodedTones) recorded(tones [2]float64) error {
	const size = 50 // bytes of a 30 ms frame
	et.ptime, et.tsStep = 30*time.Millisecond, 240
	for dir, hz := range tones {
		raw, err := ilbcFrames.ReadFile(fmt.Sprintf("ilbc/ilbc30-%d.raw", int(hz)))
		if err != nil || hz != float64(int(hz)) {
			return fmt.Errorf("%w: codec ilbc sends recorded tones of 700 and 1300 Hz only, not %v Hz", ErrOption, hz)
		}
		for i := 0; i+size <= len(raw); i += size {
			et.payload[dir] = append(et.payload[dir], raw[i:i+size])
		}
	}
	return nil
}

// ptimeOf is the packet time of a call's RTP.
func ptimeOf(et *encodedTones) time.Duration {
	if et == nil {
		return Ptime
	}
	return et.ptime
}
