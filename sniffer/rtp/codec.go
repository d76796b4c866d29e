package rtp

import "strings"

// Codec describes a payload format as far as the statistics need it: clock
// rate for jitter, and the E-model equipment impairment (Ie) and packet-loss
// robustness (Bpl) for MOS.
type Codec struct {
	Name      string // rtpmap encoding name, upper case ("PCMU", "OPUS")
	ClockRate int    // RTP timestamp units per second
	// Ie and Bpl are the ITU-T G.107 / G.113 Appendix I impairment values.
	// G.711 uses VoIPmonitor's Bpl 17.2647 (spec §4) so MOS matches its CDRs.
	Ie, Bpl float64
}

// Known payload formats. Values for non-G.711 codecs are G.113 Appendix I
// figures (G.729A Ie 11 / Bpl 19, G.723.1 6.3k Ie 15 / Bpl 16.1, GSM-EFR
// Ie 5 / Bpl 10, GSM-FR Ie 20); Opus, G.722 and iLBC have no G.113 entry
// and are given G.711-like values.
var (
	CodecPCMU  = Codec{Name: "PCMU", ClockRate: 8000, Ie: 0, Bpl: 17.2647}
	CodecPCMA  = Codec{Name: "PCMA", ClockRate: 8000, Ie: 0, Bpl: 17.2647}
	CodecGSM   = Codec{Name: "GSM", ClockRate: 8000, Ie: 20, Bpl: 10}
	CodecG723  = Codec{Name: "G723", ClockRate: 8000, Ie: 15, Bpl: 16.1}
	CodecG722  = Codec{Name: "G722", ClockRate: 8000, Ie: 0, Bpl: 17.2647}
	CodecG729  = Codec{Name: "G729", ClockRate: 8000, Ie: 11, Bpl: 19}
	CodecCN    = Codec{Name: "CN", ClockRate: 8000}
	CodecOpus  = Codec{Name: "OPUS", ClockRate: 48000, Ie: 0, Bpl: 17.2647}
	CodecILBC  = Codec{Name: "ILBC", ClockRate: 8000, Ie: 11, Bpl: 32}
	CodecEvent = Codec{Name: "TELEPHONE-EVENT", ClockRate: 8000}
)

// Static payload types (RFC 3551 table 4) that matter here.
const (
	PTPCMU = 0
	PTGSM  = 3
	PTG723 = 4
	PTPCMA = 8
	PTG722 = 9
	PTCN   = 13
	PTG729 = 18
)

// StaticCodec returns the codec of a static payload type.
func StaticCodec(pt uint8) (Codec, bool) {
	switch pt {
	case PTPCMU:
		return CodecPCMU, true
	case PTGSM:
		return CodecGSM, true
	case PTG723:
		return CodecG723, true
	case PTPCMA:
		return CodecPCMA, true
	case PTG722:
		return CodecG722, true
	case PTCN:
		return CodecCN, true
	case PTG729:
		return CodecG729, true
	}
	return Codec{}, false
}

// CodecByName returns the codec for an SDP rtpmap encoding name and clock
// rate ("opus", 48000). Unknown names get G.711-like impairment values and
// the given clock rate.
func CodecByName(name string, clockRate int) Codec {
	var c Codec
	switch strings.ToUpper(name) {
	case "PCMU":
		c = CodecPCMU
	case "PCMA":
		c = CodecPCMA
	case "GSM":
		c = CodecGSM
	case "G723":
		c = CodecG723
	case "G722":
		c = CodecG722
	case "G729":
		c = CodecG729
	case "CN":
		c = CodecCN
	case "OPUS":
		c = CodecOpus
	case "ILBC":
		c = CodecILBC
	case "TELEPHONE-EVENT":
		c = CodecEvent
	default:
		c = Codec{Name: strings.ToUpper(name), Bpl: 17.2647}
	}
	if clockRate > 0 {
		c.ClockRate = clockRate
	}
	return c
}

// SilenceByte returns the payload byte that encodes silence for codecs whose
// frames are one byte per sample (G.711): 0xFF for µ-law, 0xD5 for A-law.
func SilenceByte(pt uint8) (byte, bool) {
	switch pt {
	case PTPCMU:
		return 0xFF, true
	case PTPCMA:
		return 0xD5, true
	}
	return 0, false
}

// FillSilence overwrites payload with the codec's silence in place and
// reports whether it could (only G.711 has a byte-wise silence; for other
// codecs the caller truncates the payload, as VoIPmonitor does when paused).
func FillSilence(pt uint8, payload []byte) bool {
	b, ok := SilenceByte(pt)
	if !ok {
		return false
	}
	for i := range payload {
		payload[i] = b
	}
	return true
}
