package rtp

// Fax tone detection in G.711 audio, as VoIPmonitor's faxdetect: its
// per-stream DSP (dsp.cpp, Asterisk's dsp.c) looks for the calling tone CNG
// (1100 Hz, 0.5 s on, 3 s off, sent by the calling fax) and the answer tone
// CED (2100 Hz, 2.6-4 s, sent by the answering fax) with a Goertzel filter
// per 20 ms block, and one tone of either kind marks the call a T.30 fax.
// The figures below are VoIPmonitor's (dsp.h, tone_detect_init); the level
// floor is this package's own.

// FaxTone is a fax tone FaxTones found.
type FaxTone uint8

// The tones FaxTones reports.
const (
	NoFaxTone FaxTone = iota
	FaxCNG            // calling tone, 1100 Hz
	FaxCED            // answer tone, 2100 Hz
)

func (t FaxTone) String() string {
	switch t {
	case FaxCNG:
		return "CNG"
	case FaxCED:
		return "CED"
	}
	return "none"
}

const (
	// faxBlock is the analysis block: 20 ms at 8 kHz, 22 whole periods of
	// 1100 Hz and 42 of 2100 Hz (VoIPmonitor rounds its block to whole
	// periods; at 8 kHz both come out at 160 samples).
	faxBlock = 160
	// A tone is found when its run is this many blocks long: 90 % of its
	// nominal length less one block (the first and last may be partial),
	// in whole blocks, as tone_detect_init computes them:
	// (500 ms·8·0.9 − 159) / 160 = 21 for CNG, (2600 ms·8·0.9 − 159) / 160
	// = 116 for CED. A run starts at the second of two blocks in a row
	// with the tone and counts every block after until it ends (below),
	// so 21 blocks of CNG and one more block, or 115 of CED and two more,
	// are enough: 0.42 s of CNG, 2.3 s of CED, when the tone starts on a
	// block's edge.
	cngBlocks = 21
	cedBlocks = 116
	// A run ends at its cngMisses-th (cedMisses-th) pair of successive
	// blocks without the tone (tone_detect's nohit_limit: 1 for CNG, 2
	// for CED); a single block without it does not break a run.
	cngMisses = 1
	cedMisses = 2
	// faxToneShare: a block holds the tone when the tone has more than
	// this share of the block's energy: VoIPmonitor's 16 dB over the rest,
	// 10^1.6 / (10^1.6 + 1). Speech, DTMF (two tones) and noise never get
	// there; a pure tone within about 4 Hz of 1100 or 2100 Hz does.
	faxToneShare = 0.9754966
	// faxFloor is the least mean square (of the decoded 16-bit samples) a
	// block with a tone must have: -40 dBm0 (a 0 dBm0 sine peaks at 22,700,
	// 3.17 dB (µ-law) or 3.14 dB (A-law) below the codec's overload
	// point). Fax machines send their tones tens of dB louder; the floor
	// keeps a faint hum in a silent stream from counting. VoIPmonitor has
	// no floor.
	faxFloor = 22700 * 22700 / 2 * 1e-4
	// Goertzel coefficients 2·cos(2π·f/8000).
	cngCoef = 1.2988960966603673   // f = 1100
	cedCoef = -0.15691819145568975 // f = 2100
	// c² − 1, for two samples a step
	cngCoef2 = cngCoef*cngCoef - 1
	cedCoef2 = cedCoef*cedCoef - 1
)

// FaxTones finds CNG and CED in one stream's G.711 audio. Feed it every
// voice packet's payload in arrival order, as VoIPmonitor does (no loss or
// reordering repair); Reset it on anything else. The zero value is ready
// for µ-law; ALaw selects A-law. 28 bytes; Feed allocates nothing.
type FaxTones struct {
	// the current block's Goertzel states (…1 the last output, …2 the one
	// before) and energy
	cng1, cng2, ced1, ced2 float32
	energy                 float32
	n                      uint8 // samples in the current block
	ALaw                   bool
	cng, ced               toneRun
}

// toneRun is tone_detect's run state for one tone.
type toneRun struct {
	blocks uint8 // blocks since the run started, 0 = no run; stops past the tone's count
	misses uint8 // pairs of successive blocks without the tone in this run
	last   bool  // the previous block held the tone
}

// Reset forgets the audio so far (VoIPmonitor drops its DSP state when a
// stream's packet is not G.711 voice); ALaw is kept.
func (d *FaxTones) Reset() { *d = FaxTones{ALaw: d.ALaw} }

// Feed analyses one packet's G.711 payload and returns the tone whose
// length was reached in it (once per tone: a long tone is reported once),
// CED when both were.
func (d *FaxTones) Feed(payload []byte) FaxTone {
	tab := &ulawTable
	if d.ALaw {
		tab = &alawTable
	}
	found := NoFaxTone
	c1, c2, e1, e2, en := d.cng1, d.cng2, d.ced1, d.ced2, d.energy
	for len(payload) > 0 {
		k := min(len(payload), faxBlock-int(d.n))
		seg := payload[:k]
		// Two samples a step: s[n] = c·s[n-1] − s[n-2] + x[n] applied
		// twice, written so that each output waits for one multiply and
		// one add of the last (the rest is computed beside them).
		for ; len(seg) >= 2; seg = seg[2:] {
			x0, x1 := float32(tab[seg[0]]), float32(tab[seg[1]])
			c1, c2 = cngCoef2*c1+((cngCoef*x0+x1)-cngCoef*c2), cngCoef*c1+(x0-c2)
			e1, e2 = cedCoef2*e1+((cedCoef*x0+x1)-cedCoef*e2), cedCoef*e1+(x0-e2)
			en += x0*x0 + x1*x1
		}
		if len(seg) == 1 {
			x := float32(tab[seg[0]])
			c1, c2 = cngCoef*c1+(x-c2), c1
			e1, e2 = cedCoef*e1+(x-e2), e1
			en += x * x
		}
		payload = payload[k:]
		if d.n += uint8(k); d.n < faxBlock {
			break
		}
		// The block's power at each frequency, scaled as its energy: a
		// pure tone at the frequency has all of it.
		et := en * faxBlock * faxToneShare
		loud := en >= faxFloor*faxBlock
		cng := 2*(c1*c1+c2*c2-cngCoef*c1*c2) > et && loud
		ced := 2*(e1*e1+e2*e2-cedCoef*e1*e2) > et && loud
		if d.cng.block(cng, cngBlocks, cngMisses) {
			found = FaxCNG
		}
		if d.ced.block(ced, cedBlocks, cedMisses) {
			found = FaxCED
		}
		c1, c2, e1, e2, en, d.n = 0, 0, 0, 0, 0, 0
	}
	d.cng1, d.cng2, d.ced1, d.ced2, d.energy = c1, c2, e1, e2, en
	return found
}

// block takes one block's verdict and reports whether the run has just
// reached want blocks. A run starts at the second of two blocks in a row
// with the tone and ends at the limit-th pair of blocks in a row without
// it; blocks in between count whatever they hold (tone_detect).
func (r *toneRun) block(hit bool, want, limit uint8) bool {
	if r.blocks > 0 && r.blocks <= want {
		r.blocks++
	}
	if hit == r.last {
		switch {
		case !hit:
			if r.misses < limit {
				r.misses++
			}
			if r.misses >= limit {
				r.blocks = 0
			}
		case r.blocks == 0:
			r.blocks, r.misses = 1, 0
		}
	}
	r.last = hit
	return r.blocks == want
}
