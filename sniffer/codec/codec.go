// Package codec decodes RTP audio payloads into signed 16-bit mono PCM.
//
// The decoders are Debian's maintained libraries through cgo: G.722 and
// G.726-32 (spandsp), GSM 06.10 (libgsm), Opus (libopus, with its own loss
// concealment and in-band FEC), G.729/A/B (bcg729, Annex B SID frames
// included), Speex NB/WB (libspeex), and iLBC and G.723.1 (libavcodec's
// native decoders: Debian ships no libilbc, and no other G.723.1 decoder).
// G.711 and comfort noise (RFC 3389) are decoded in Go. A build without
// cgo (CGO_ENABLED=0, or the nocodecs tag where the libraries' -dev
// packages are missing) still has G.711 and CN, one with the noavcodec tag
// lacks iLBC and G.723.1 only; New returns ErrUnsupported for what a build
// lacks, so callers can say once which codec they cannot play and play it
// as silence.
//
// A Decoder keeps the codec's state between packets of one stream and is
// not safe for concurrent use. Decode and Conceal do not allocate.
package codec

import (
	"fmt"
	"math"
	"strings"

	"pbx-agent/sniffer/rtp"
)

// MaxSamples bounds the PCM one payload can decode to (120 ms at 48 kHz,
// Opus's longest packet): an out buffer this long always suffices.
const MaxSamples = 5760

// Decoder turns one stream's payloads into PCM at Rate().
type Decoder interface {
	// Name is the codec's encoding name as in SDP ("G722", "opus", …).
	Name() string
	// Rate is the sample rate of the PCM written to out.
	Rate() int
	// Decode decodes one RTP payload into out and returns the number of
	// samples written.
	Decode(payload []byte, out []int16) (int, error)
	// Conceal writes n samples standing for a lost packet (the codec's own
	// concealment where it has one, else silence) and returns how many it
	// wrote (at most len(out)).
	Conceal(out []int16, n int) int
	// Close frees the decoder's state; it must not be used afterwards.
	Close()
}

// Canonical encoding names, as SDP rtpmap writes them.
const (
	PCMU  = "PCMU"
	PCMA  = "PCMA"
	G722  = "G722"
	GSM   = "GSM"
	G729  = "G729"
	Opus  = "opus"
	CN    = "CN"
	Event = "telephone-event"
	// G726 is G.726 at 32 kbit/s packed as RFC 3551 says; G726AAL2 packed
	// as AAL2 (ITU-T I.366.2), as some devices still send it.
	G726     = "G726-32"
	G726AAL2 = "AAL2-G726-32"
	ILBC     = "iLBC"
	G723     = "G723" // G.723.1
	// Speex is narrowband Speex ("speex/8000"); SpeexWB wideband
	// ("speex/16000"): SDP tells them apart by the clock rate only, so
	// SDPName names the wideband one after it.
	Speex   = "speex"
	SpeexWB = "speex/16000"
)

// names are the canonical spellings Canonical knows.
var names = [...]string{PCMU, PCMA, G722, GSM, G729, Opus, CN, Event, G726, G726AAL2, ILBC, G723, Speex, SpeexWB}

// NeedsHistory reports whether codec name's decoder must run from the
// stream's first packet to give sound. libavcodec's G.723.1 decoder started
// even one frame into a stream drifts within 1–2 s to noise near full scale
// and never recovers (ffmpeg -f g723_1 does the same on a file cut at a
// frame boundary); libspeex started mid-stream on a steady tone stays
// up to 15 dB too loud; libavcodec's iLBC decoder settles at some join
// points and not at others (a listener joining a generated iLBC call in
// Chromium heard the other direction's tone only 23 dB under); libgsm
// started cold on a steady tone stays 9–22 dB quieter for seconds (its
// long-term predictor rebuilds the excitation from silence). The state
// that diverges is built from the whole stream, so warming a cold decoder
// on the last few packets cannot help: such calls are decoded from their
// first packet. G.711, G.722, G.726, G.729 and Opus keep their tone and
// level.
func NeedsHistory(name string) bool {
	switch name {
	case G723, Speex, SpeexWB, ILBC, GSM:
		return true
	}
	return false
}

// StaticName returns the encoding name of a static payload type ("" when
// the type is dynamic or not audio decoded here).
func StaticName(pt uint8) string {
	switch pt {
	case rtp.PTPCMU:
		return PCMU
	case rtp.PTPCMA:
		return PCMA
	case rtp.PTGSM:
		return GSM
	case rtp.PTG722:
		return G722
	case rtp.PTCN:
		return CN
	case rtp.PTG729:
		return G729
	case rtp.PTG723:
		return G723
	case ptG721:
		return G726
	}
	return ""
}

// ptG721 is RFC 1890's static payload type of G.721, which is G.726-32;
// RFC 3551 withdrew it, yet Asterisk and others still send G.726-32 on it.
const ptG721 = 2

// SDPName returns the canonical name of an SDP rtpmap encoding at its clock
// rate: Canonical(encoding), except that speex at 16000 Hz is SpeexWB.
func SDPName(encoding string, clock int) string {
	n := Canonical(encoding)
	if n == Speex && clock == 16000 {
		return SpeexWB
	}
	return n
}

// Canonical returns the canonical spelling of an SDP encoding name
// (case-insensitive), or name upper-cased when it is not known.
func Canonical(name string) string {
	for _, k := range names {
		if strings.EqualFold(name, k) {
			return k
		}
	}
	return strings.ToUpper(name)
}

// NativeRate is the rate a codec's decoder produces natively (16 kHz for
// G.722, 48 kHz for Opus, 8 kHz for the narrowband codecs).
func NativeRate(name string) int {
	switch Canonical(name) {
	case G722, SpeexWB:
		return 16000
	case Opus:
		return 48000
	}
	return 8000
}

// New returns a decoder for the named codec producing PCM at rate (0 =
// 8000). G.722 decodes at 16000 or 8000 (low band only); Opus at 8000,
// 12000, 16000, 24000 or 48000; Speex (narrow- or wideband) at 8000 or
// 16000; the other narrowband codecs at 8000 only. An RFC 4733 event
// stream is never audio: ErrUnsupported.
func New(name string, rate int) (Decoder, error) {
	if rate == 0 {
		rate = 8000
	}
	switch n := Canonical(name); n {
	case PCMU, PCMA:
		if rate != 8000 {
			return nil, fmt.Errorf("%w: %s at %d Hz", ErrRate, n, rate)
		}
		if n == PCMU {
			return &g711{name: n, table: &ulawTable}, nil
		}
		return &g711{name: n, table: &alawTable}, nil
	case CN:
		return newComfortNoise(rate), nil
	case G722:
		return newG722(rate)
	case GSM:
		if rate != 8000 {
			return nil, fmt.Errorf("%w: %s at %d Hz", ErrRate, n, rate)
		}
		return newGSM()
	case G729:
		if rate != 8000 {
			return nil, fmt.Errorf("%w: %s at %d Hz", ErrRate, n, rate)
		}
		return newG729()
	case Opus:
		return newOpus(rate)
	case Speex, SpeexWB:
		return newSpeex(n, rate)
	case G726, G726AAL2:
		if rate != 8000 {
			return nil, fmt.Errorf("%w: %s at %d Hz", ErrRate, n, rate)
		}
		return newG726(n)
	case ILBC, G723:
		return newAV(n, rate)
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, n)
	}
}

// Decodable reports which audio codecs this build decodes (New succeeds at
// the codec's native rate) and which it plays as silence, in a fixed
// order; `pbx-agent version` prints them so a package can be checked.
func Decodable() (yes, no []string) {
	for _, n := range names {
		if n == Event {
			continue
		}
		d, err := New(n, NativeRate(n))
		if err != nil {
			no = append(no, n)
			continue
		}
		d.Close()
		yes = append(yes, n)
	}
	return yes, no
}

// g711 decodes µ-law or A-law through a 256-entry table.
type g711 struct {
	name  string
	table *[256]int16
	prev  int16 // last sample, faded over a lost packet
}

func (g *g711) Name() string { return g.name }
func (g *g711) Rate() int    { return 8000 }
func (g *g711) Close()       {}

func (g *g711) Decode(p []byte, out []int16) (int, error) {
	if len(out) < len(p) {
		return 0, ErrShort
	}
	for i, b := range p {
		out[i] = g.table[b]
	}
	if len(p) > 0 {
		g.prev = out[len(p)-1]
	}
	return len(p), nil
}

// Conceal fades the last sample out (G.711 has no concealment of its own).
func (g *g711) Conceal(out []int16, n int) int { return fade(out, n, &g.prev) }

// fade writes n samples decaying from *prev to zero within a few
// milliseconds: the concealment of codecs without their own (no click).
func fade(out []int16, n int, prev *int16) int {
	n = min(n, len(out))
	v := int32(*prev)
	for i := range out[:n] {
		v = v * 7 / 8
		out[i] = int16(v)
	}
	*prev = 0
	return n
}

var ulawTable, alawTable = func() (u, a [256]int16) {
	for i := range u {
		u[i] = rtp.ULawToLinear(byte(i))
		a[i] = rtp.ALawToLinear(byte(i))
	}
	return u, a
}()

// comfortNoise plays RFC 3389 comfort noise: white noise at the level the
// packet's first byte gives in -dBov, for one packet time (20 ms) per CN
// packet, and again for each concealed stretch until speech resumes.
type comfortNoise struct {
	rate  int
	amp   float64 // peak of the uniform noise
	state uint32
}

func newComfortNoise(rate int) *comfortNoise {
	return &comfortNoise{rate: rate, state: 0x12345678}
}

func (c *comfortNoise) Name() string { return CN }
func (c *comfortNoise) Rate() int    { return c.rate }
func (c *comfortNoise) Close()       {}

// CNAmplitude is the peak of uniform noise whose RMS is level -dBov (0 dBov
// being a full-scale square wave's RMS, 32767).
func CNAmplitude(level byte) float64 {
	rms := 32767 * math.Pow(10, -float64(level&0x7f)/20)
	return rms * math.Sqrt(3)
}

func (c *comfortNoise) Decode(p []byte, out []int16) (int, error) {
	if len(p) < 1 {
		return 0, fmt.Errorf("%w: empty CN payload", ErrPayload)
	}
	c.amp = CNAmplitude(p[0])
	return c.Conceal(out, c.rate/50), nil
}

func (c *comfortNoise) Conceal(out []int16, n int) int {
	n = min(n, len(out))
	for i := range out[:n] {
		c.state = c.state*1664525 + 1013904223
		u := float64(int32(c.state)) / (1 << 31) // [-1, 1)
		out[i] = int16(max(min(u*c.amp, 32767), -32768))
	}
	return n
}
