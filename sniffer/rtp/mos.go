package rtp

import "math"

// MOSMax is the MOS of a stream without impairments in VoIPmonitor's model.
const MOSMax = 4.5

// IntervalMOS computes the MOS of one measurement interval from its
// loss-burst histogram the way VoIPmonitor does (spec §4): lost packets
// (Σ k·loss[k]) and bursts (Σ loss[k]) give the packet-loss probability and
// the BurstR of ITU-T G.107, which feed the E-model with the codec's Ie and
// Bpl; R is mapped to MOS with VoIPmonitor's cubic.
func IntervalMOS(lost, bursts, received int, c Codec) float64 {
	if lost < 5 || received <= 0 || bursts <= 0 {
		return MOSMax
	}
	ppl := float64(lost) / float64(received)
	if ppl > 0.5 {
		return 1
	}
	burstR := (float64(lost) / float64(bursts)) / (1 / (1 - ppl))
	if burstR < 1 {
		burstR = 1
	}
	p := ppl * 100
	bpl := c.Bpl
	if bpl == 0 {
		bpl = 17.2647
	}
	r := 93.2062077233 - c.Ie - (95-c.Ie)*(p/(p/burstR+bpl))
	return RToMOS(r)
}

// RToMOS maps an E-model rating to MOS with VoIPmonitor's regression,
// clamped to [1, 4.5].
func RToMOS(r float64) float64 {
	m := 2.06405 + 0.031738*r - 0.000356641*r*r + 2.93143e-6*r*r*r
	return math.Max(1, math.Min(MOSMax, m))
}
