package rtp

import (
	"net/netip"
	"time"
)

// Summary is the finished figures of one RTP stream (one SSRC in one
// direction of one call), named after VoIPmonitor's cdr_rtp and cdr a_/b_
// columns so the CDR writer and the APIs can map them one to one.
// Jitter and delays are in milliseconds; MOS values are plain (4.3, not 43).
type Summary struct {
	Src, Dst   netip.AddrPort
	SSRC       uint32
	Payload    int // RTP payload type of the media (not telephone-event)
	Codec      string
	ClockRate  int
	FirstTime  time.Time
	LastTime   time.Time
	Received   int // packets received
	Expected   int // highest seq - base seq + 1 (with wrap)
	Lost       int
	Duplicates int
	Reordered  int
	AvgJitter  float64 // RFC 3550 interarrival jitter, mean over packets (ms)
	MaxJitter  float64
	MaxDelta   float64 // largest arrival gap between consecutive packets (ms)
	// Consecutive-loss histogram: SL[0] counts single lost packets ... SL[9] 10 or more.
	SL [10]int
	// Delay-variation buckets d50, d70, d90, d120, d150, d200, d300.
	D [7]int
	// MOS from the jitter-buffer simulation (fixed 50 ms, fixed 200 ms, adaptive).
	MOSF1, MOSF2, MOSAdapt float64
	// Caller is true when the stream flows from the caller towards the callee (A leg).
	Caller bool
}
