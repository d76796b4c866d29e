package rtp

import (
	"strconv"
	"strings"
)

// VoIPmonitor numbers codecs with its own ids (PAYLOAD_* in its codecs.h,
// and the fcodec list of its web API): a static payload type is its own id
// (PCMU 0, GSM 3, G.723 4, PCMA 8, G.722 9, G.729 18), a dynamic one is
// numbered after its SDP rtpmap name and rate (iLBC 97, Speex 98, Opus at
// 48 kHz 316, …). Its CDRs (a_payload, b_payload, payload, cdr_rtp.payload)
// and listcalls' callercodec/calledcodec hold these ids.
const (
	VMPCMU      = 0
	VMGSM       = 3
	VMG723      = 4
	VMPCMA      = 8
	VMG722      = 9
	VMCN        = 13
	VMG729      = 18
	VMILBC      = 97
	VMSpeex     = 98
	VMClearMode = 100
	VMSILK      = 301 // +1..+4: SILK at 8, 12, 16, 24 kHz
	VMISAC      = 306 // +1, +2: iSAC at 16, 32 kHz
	VMOpus      = 311 // +1..+5: Opus at 8, 12, 16, 24, 48 kHz
	VMAMR       = 320
	VMAMRWB     = 321
	VMG7221     = 331 // G.722.1 at 8 kHz is 331 too, then 12, 16, 24, 32, 48 kHz: 332..336
	VMXOpus     = 337 // X-OPUS, +1..+5 by rate
	VMVXOpus    = 343 // VX-OPUS, +1..+5 by rate
	VMMP4ALATM  = 349 // MP4A-LATM at 128 kbit/s; 350 at 64
	VMG72616    = 351 // G726-16, -24, -32, -40: 351..354
	VMAAL2G726  = 355 // AAL2-G726-16..40: 355..358
	VMEVS       = 359
	VMEvent     = 400 // telephone-event
)

// VMCodecID is VoIPmonitor's id of a stream's codec: the payload type pt
// when static (0–95), else the id of the SDP rtpmap encoding name at its
// clock rate. An rtpmap name VoIPmonitor does not know is 0, as it writes
// it; a dynamic type no rtpmap named (name "") keeps its number.
func VMCodecID(pt int, name string, clock int) int {
	if pt < 96 || pt > 127 || name == "" {
		return pt
	}
	byRate := func(base int, rates ...int) int {
		for i, r := range rates {
			if r == clock {
				return base + 1 + i
			}
		}
		return base
	}
	opusRates := []int{8000, 12000, 16000, 24000, 48000}
	switch n := strings.ToUpper(name); n {
	case "G729":
		return VMG729
	case "GSM":
		return VMGSM
	case "G723":
		return VMG723
	case "PCMA":
		return VMPCMA
	case "PCMU":
		return VMPCMU
	case "ILBC":
		return VMILBC
	case "SPEEX":
		return VMSpeex
	case "CLEARMODE":
		return VMClearMode
	case "SILK":
		return byRate(VMSILK, 8000, 12000, 16000, 24000)
	case "ISAC":
		return byRate(VMISAC, 16000, 32000)
	case "OPUS":
		return byRate(VMOpus, opusRates...)
	case "X-OPUS":
		return byRate(VMXOpus, opusRates...)
	case "VX-OPUS":
		return byRate(VMVXOpus, opusRates...)
	case "AMR":
		return VMAMR
	case "AMR-WB":
		return VMAMRWB
	case "G7221":
		// VoIPmonitor numbers G.722.1 at 8 kHz (and at a rate it does not
		// list) like plain G7221: 331.
		return max(VMG7221, byRate(VMG7221-1, 8000, 12000, 16000, 24000, 32000, 48000))
	case "TELEPHONE-EVENT":
		return VMEvent
	case "MP4A-LATM":
		if clock == 64000 {
			return VMMP4ALATM + 1
		}
		return VMMP4ALATM
	case "EVS":
		return VMEVS
	case "G726-16", "G726-24", "G726-32", "G726-40":
		return VMG72616 + g726Step(n[5:])
	case "AAL2-G726-16", "AAL2-G726-24", "AAL2-G726-32", "AAL2-G726-40":
		return VMAAL2G726 + g726Step(n[10:])
	}
	return 0
}

// g726Step is 0..3 for G.726's "16", "24", "32", "40" kbit/s.
func g726Step(kbit string) int {
	return (int(kbit[0]-'0')*10 + int(kbit[1]-'0') - 16) / 8
}

// VMCodecName is the codec's name as VoIPmonitor's GUI shows an id
// ("G.711u", "G.722", "OPUS48"), or "PT n" for an id it does not name.
func VMCodecName(id int) string {
	if n, ok := vmNames[id]; ok {
		return n
	}
	switch {
	case id >= VMG72616 && id < VMG72616+4:
		return "G726-" + g726Rates[id-VMG72616]
	case id >= VMAAL2G726 && id < VMAAL2G726+4:
		return "AAL2-G726-" + g726Rates[id-VMAAL2G726]
	case id >= VMOpus && id <= VMOpus+5:
		return "OPUS" + rateSuffix[id-VMOpus]
	case id >= VMXOpus && id <= VMXOpus+5:
		return "XOPUS" + rateSuffix[id-VMXOpus]
	case id >= VMVXOpus && id <= VMVXOpus+5:
		return "VXOPUS" + rateSuffix[id-VMVXOpus]
	}
	return "PT " + strconv.Itoa(id)
}

var (
	g726Rates  = [4]string{"16", "24", "32", "40"}
	rateSuffix = [6]string{"", "8", "12", "16", "24", "48"}
	vmNames    = map[int]string{
		VMPCMU: "G.711u", 2: "G726-32", VMGSM: "GSM", VMG723: "G723", VMPCMA: "G.711a", VMG722: "G.722",
		12: "QCELP", VMCN: "CN", VMG729: "G729", VMILBC: "iLBC", VMSpeex: "speex", VMClearMode: "CLEARMODE",
		VMSILK: "SILK", VMSILK + 1: "SILK8", VMSILK + 2: "SILK12", VMSILK + 3: "SILK16", VMSILK + 4: "SILK24",
		VMISAC: "ISAC", VMISAC + 1: "ISAC16", VMISAC + 2: "ISAC32", VMAMR: "AMR", VMAMRWB: "AMR WB",
		VMG7221: "G7221", VMG7221 + 1: "G722112", VMG7221 + 2: "G722116", VMG7221 + 3: "G722124",
		VMG7221 + 4: "G722132", VMG7221 + 5: "G722148", VMMP4ALATM: "MP4A-LATM", VMMP4ALATM + 1: "MP4A-LATM64",
		VMEVS: "EVS", VMEvent: "telephone-event", 1000: "FAX T.38", 1001: "FAX T.30",
	}
)

// CodecID is VoIPmonitor's id of the stream's codec (VMCodecID).
func (s *Summary) CodecID() int { return VMCodecID(s.Payload, s.Codec, s.ClockRate) }
