package simulate

import (
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
)

// encodedCodec is how a codec other than G.711 goes on the wire.
type encodedCodec struct {
	name   string // sniffer/codec's canonical name
	pt     uint8
	rtpmap string // SDP rtpmap encoding/clock[/channels]
	clock  int    // RTP timestamp units per second
}

var encodedCodecs = map[string]encodedCodec{
	CodecG722: {codec.G722, 9, "G722/8000", 8000},
	CodecGSM:  {codec.GSM, 3, "GSM/8000", 8000},
	CodecG729: {codec.G729, 18, "G729/8000", 8000},
	CodecOpus: {codec.Opus, 111, "opus/48000/2", 48000},
}

// encodedTones holds one second of each direction's tone encoded
// (payloads replayed in a loop: the tones have whole periods per second,
// and the second loop of the encoder is kept, so the loop joins smoothly).
type encodedTones struct {
	encodedCodec
	ptime   time.Duration
	tsStep  uint32
	payload [2][][]byte
}

func newEncodedTones(name string, tones [2]float64) (*encodedTones, error) {
	ec, ok := encodedCodecs[name]
	if !ok {
		return nil, fmt.Errorf("%w: codec %q", ErrOption, name)
	}
	et := &encodedTones{encodedCodec: ec}
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
		n := int(time.Second / et.ptime)
		pcm := make([]int16, fs)
		for loop := 0; loop < 2; loop++ {
			for k := 0; k < n; k++ {
				for i := range pcm {
					pcm[i] = int16(math.Round(amp * math.Sin(2*math.Pi*hz*float64(k*fs+i)/float64(rate))))
				}
				m, err := e.Encode(pcm, buf)
				if err != nil {
					e.Close()
					return nil, fmt.Errorf("%w: codec %q: %w", ErrOption, name, err)
				}
				if loop == 1 {
					et.payload[dir] = append(et.payload[dir], append([]byte(nil), buf[:m]...))
				}
			}
		}
		e.Close()
	}
	return et, nil
}

// ptimeOf is the packet time of a call's RTP.
func ptimeOf(et *encodedTones) time.Duration {
	if et == nil {
		return Ptime
	}
	return et.ptime
}
