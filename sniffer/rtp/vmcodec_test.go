package rtp

import "testing"

// TestVMCodecID: VoIPmonitor's ids (its codecs.h at 2026.04.0, the one that
// wrote ../shared/fixtures/voipmonitor-ref; seed 001's fcodec list) for
// static and SDP-named dynamic payload types.
func TestVMCodecID(t *testing.T) {
	type row struct {
		pt          int
		name        string
		clock, want int
		label       string
	}
	for _, tc := range []row{
		{0, "PCMU", 8000, 0, "G.711u"},
		{8, "PCMA", 8000, 8, "G.711a"},
		{3, "GSM", 8000, 3, "GSM"},
		{4, "G723", 8000, 4, "G723"},
		{9, "G722", 8000, 9, "G.722"},
		{18, "G729", 8000, 18, "G729"},
		{13, "CN", 8000, 13, "CN"},
		{2, "G726-32", 8000, 2, "G726-32"}, // static: the type itself
		{97, "iLBC", 8000, 97, "iLBC"},
		{102, "iLBC", 8000, 97, "iLBC"},
		{98, "speex", 8000, 98, "speex"},
		{99, "speex", 16000, 98, "speex"},
		{111, "opus", 48000, 316, "OPUS48"},
		{107, "OPUS", 16000, 314, "OPUS16"},
		{107, "opus", 44100, 311, "OPUS"},
		{112, "G726-32", 8000, 353, "G726-32"},
		{113, "G726-16", 8000, 351, "G726-16"},
		{114, "G726-40", 8000, 354, "G726-40"},
		{112, "AAL2-G726-32", 8000, 357, "AAL2-G726-32"},
		{96, "AMR-WB", 16000, 321, "AMR WB"},
		{96, "G7221", 16000, 333, "G722116"},
		{96, "G7221", 8000, 331, "G7221"},
		{96, "G7221", 11025, 331, "G7221"},
		{96, "SILK", 24000, 305, "SILK24"},
		{101, "telephone-event", 8000, 400, "telephone-event"},
		{96, "L16", 16000, 0, "G.711u"}, // unknown to VoIPmonitor: it writes 0
		{120, "", 0, 120, "PT 120"},     // no rtpmap seen
	} {
		got := VMCodecID(tc.pt, tc.name, tc.clock)
		if got != tc.want {
			t.Errorf("VMCodecID(%d, %q, %d) = %d, want %d", tc.pt, tc.name, tc.clock, got, tc.want)
		}
		if n := VMCodecName(got); n != tc.label {
			t.Errorf("VMCodecName(%d) = %q, want %q", got, n, tc.label)
		}
	}
	s := Summary{Payload: 111, Codec: "OPUS", ClockRate: 48000}
	if s.CodecID() != VMOpus+5 {
		t.Errorf("Summary.CodecID = %d", s.CodecID())
	}
}
