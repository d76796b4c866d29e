package sdp

type staticCodec struct {
	name  string
	clock int
}

// static holds the RTP/AVP static payload types (RFC 3551 tables 4 and 5).
var static = [35]staticCodec{
	0: {"PCMU", 8000}, 3: {"GSM", 8000}, 4: {"G723", 8000}, 5: {"DVI4", 8000},
	6: {"DVI4", 16000}, 7: {"LPC", 8000}, 8: {"PCMA", 8000}, 9: {"G722", 8000},
	10: {"L16", 44100}, 11: {"L16", 44100}, 12: {"QCELP", 8000}, 13: {"CN", 8000},
	14: {"MPA", 90000}, 15: {"G728", 8000}, 16: {"DVI4", 11025}, 17: {"DVI4", 22050},
	18: {"G729", 8000}, 25: {"CelB", 90000}, 26: {"JPEG", 90000}, 28: {"nv", 90000},
	31: {"H261", 90000}, 32: {"MPV", 90000}, 33: {"MP2T", 90000}, 34: {"H263", 90000},
}

// known encoding names, returned without allocating when an rtpmap matches
// one case-insensitively.
var known = [...]string{
	"PCMU", "PCMA", "G722", "G729", "G723", "GSM", "CN", "opus", "telephone-event",
	"speex", "iLBC", "AMR", "AMR-WB", "G726-16", "G726-24", "G726-32", "G726-40",
	"G7221", "L16", "SILK", "EVS", "red", "ulpfec", "rtx", "H261", "H263",
	"H263-1998", "H263-2000", "H264", "H265", "VP8", "VP9", "AV1", "t140",
}

func fold(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if fold(a[i]) != fold(b[i]) {
			return false
		}
	}
	return true
}

// Codec returns the encoding name and clock rate of payload type pt: from
// a=rtpmap when present, else the static table; "" and 0 when unknown.
func (m *Media) Codec(pt uint8) (name string, clock int) {
	for i := 0; i < m.NRTPMap; i++ {
		r := &m.RTPMap[i]
		if r.PT != pt {
			continue
		}
		for _, k := range known {
			if equalFold(r.Encoding, k) {
				return k, r.ClockRate
			}
		}
		return string(r.Encoding), r.ClockRate
	}
	if int(pt) < len(static) {
		return static[pt].name, static[pt].clock
	}
	return "", 0
}
