package rtp

import (
	"net/netip"
	"time"
)

// Summary is the finished figures of one RTP stream (one SSRC in one
// direction of one call), named after VoIPmonitor's cdr_rtp and cdr a_/b_
// columns so the CDR writer and the APIs can map them one to one.
// Jitter and delays are in milliseconds; MOS values are plain (4.3, not 43).
//
// VoIPmonitor's column rounding (spec §4, checked against its rows):
// a_avgjitter_mult10 = ceil(CDRAvgJitter×10), a_maxjitter =
// ceil(CDRMaxJitter), cdr_rtp.maxjitter_mult10 = floor(CDRMaxJitter×10), a_mos_*_mult10 =
// round(MOS×10). See the helper methods.
type Summary struct {
	Src, Dst   netip.AddrPort
	SSRC       uint32
	Payload    int // RTP payload type of the media (not telephone-event)
	Codec      string
	ClockRate  int
	FirstTime  time.Time
	LastTime   time.Time
	Received   int   // packets received (duplicates included, as RFC 3550 and tshark)
	Bytes      int64 // payload bytes
	Expected   int   // highest seq - base seq + 1 (with wrap)
	Lost       int   // Expected - Received, never negative
	LostRaw    int   // Expected - Received, negative with duplicates (tshark's figure)
	Duplicates int
	Reordered  int
	AvgJitter  float64 // RFC 3550 interarrival jitter, mean over voice packets (ms)
	MaxJitter  float64
	// CDRAvgJitter and CDRMaxJitter are VoIPmonitor's jitter (rtp.cpp
	// RTP::update_stats), what its CDR columns hold: the same recurrence
	// started from 0 after RFC 3550's probation (its first two packets)
	// and the first voice packet after it, so the start of a stream (a
	// first packet sent in a burst with the second) does not count; the
	// mean is over the packets counted since. AvgJitter and MaxJitter are
	// tshark's figures.
	CDRAvgJitter, CDRMaxJitter float64
	MaxDelta                   float64 // largest arrival gap between consecutive packets (ms)
	PTime                      int     // packetization time seen in the stream (ms), 0 if unknown
	Events                     int     // telephone-event packets
	// Consecutive-loss histogram: SL[0] counts single lost packets ... SL[9] 10 or more.
	SL [10]int
	// Delay-variation buckets d50, d70, d90, d120, d150, d200, d300.
	D [7]int
	// MOS from the jitter-buffer simulation (fixed 50 ms, fixed 200 ms,
	// adaptive): time-weighted mean of the 10 s interval values, the
	// lowest interval value and the last one (the open interval's, closed
	// when the summary was taken).
	MOSF1, MOSF2, MOSAdapt             float64
	MOSF1Min, MOSF2Min, MOSAdaptMin    float64
	MOSF1Last, MOSF2Last, MOSAdaptLast float64
	// RTCP is what the peer reported about this stream.
	RTCP RTCPStats
	// Caller is true when the stream flows from the caller towards the callee (A leg).
	Caller bool
	// Series is the quality per second (Stream.Series); filled when the
	// call ends, empty in the figures of an active call.
	Series Series `json:",omitzero"`
}

// Mult10 returns round(v×10) as VoIPmonitor stores MOS (4.1 → 41).
func Mult10(v float64) int { return int(v*10 + 0.5) }

// AvgJitterMult10 is VoIPmonitor's a_avgjitter_mult10: ceil(avg×10) of
// its jitter (CDRAvgJitter).
func (s *Summary) AvgJitterMult10() int { return ceilInt(s.CDRAvgJitter * 10) }

// MaxJitterMs is VoIPmonitor's a_maxjitter: ceil(max) in whole ms.
func (s *Summary) MaxJitterMs() int { return ceilInt(s.CDRMaxJitter) }

// MaxJitterMult10 is VoIPmonitor's cdr_rtp.maxjitter_mult10: floor(max×10).
func (s *Summary) MaxJitterMult10() int { return int(s.CDRMaxJitter * 10) }

// LossPercentMult1000 is a_packet_loss_perc_mult1000: lost/(received+lost)×100000, rounded.
func (s *Summary) LossPercentMult1000() int {
	if s.Received+s.Lost == 0 {
		return 0
	}
	return int(float64(s.Lost)*100000/float64(s.Received+s.Lost) + 0.5)
}

func ceilInt(v float64) int {
	i := int(v)
	if float64(i) < v {
		i++
	}
	return i
}
