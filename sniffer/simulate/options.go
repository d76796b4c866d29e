package simulate

import (
	"fmt"
	"slices"
	"time"
)

// Codec names accepted in Options.Codec.
const (
	CodecPCMU  = "pcmu"  // G.711 µ-law, RTP payload type 0
	CodecPCMA  = "pcma"  // G.711 A-law, RTP payload type 8
	CodecMixed = "mixed" // each call picks PCMU or PCMA from the seed
)

// Transport names accepted in Options.Transport (for SIP; RTP is always UDP).
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	// TransportSCTP sends each SIP message as SCTP DATA chunks (RFC 4168),
	// in fragments of at most MTU bytes of IP.
	TransportSCTP = "sctp"
)

// Limits of the address plan (see Options).
const (
	MaxCalls     = 1 << 23
	MaxRegisters = 1 << 16
	// PBX RTP ports 10000+2*(i%25000) stay unique among active calls; with
	// more than portBlock calls at once the PBX's media address moves on by
	// one (192.0.2.11, …) every 25,000 calls, so 100,000 can be active.
	portBlock      = 25000
	MaxConcurrency = 4 * portBlock
	minMTU         = 296 // an IPv6 RTP frame (40+8+12+160 bytes) plus room for headers
)

// Ptime is the RTP packetisation interval: 160 G.711 samples per packet.
const Ptime = 20 * time.Millisecond

// Options describe the traffic to generate. The zero value is usable: 10
// calls of 10 s media each, all allowed at once, started at 10 calls/s, PCMU,
// SIP over UDP/IPv4, no loss, no jitter, no VLAN, MTU 1500, seed 0.
//
// Address plan: the PBX is 192.0.2.10 (2001:db8::10) with SIP on 5060 and RTP
// on 10000+2*(i%25000) for call i (above 25,000 concurrent calls, on
// 192.0.2.10+(i/25000)%(concurrency/25000 rounded up)); caller i is 10.x.y.z = 10.0.0.0+65536+i
// (2001:db8:1::/64 + i+1), SIP on 5060 (TCP: source port 40000+i%20000), RTP
// on 20000+2*(i%20000). REGISTER j comes from 172.16.0.0+j+1
// (2001:db8:2::/64 + j+1).
type Options struct {
	Calls       int           // number of calls; 0 = 10
	Concurrency int           // most calls active at once; 0 = Calls
	Duration    time.Duration // RTP time of an answered call (ringing time of an unanswered one); 0 = 10 s
	CPS         float64       // call attempts per second; 0 = 10
	Codec       string        // CodecPCMU (default), CodecPCMA, CodecMixed, or an encoded one (CodecG722, CodecOpus, …)

	Loss      float64       // percent of RTP packets dropped independently
	BurstRate float64       // percent of RTP packets that start a loss burst
	BurstLen  int           // RTP packets lost per burst; 0 = 5
	Jitter    time.Duration // each RTP packet arrives 0..Jitter late (uniform, 1 µs steps)
	// Tones are the frequencies (Hz) the caller and the callee send: a
	// multiple of 50 below 4000 each (whole periods per 20 ms frame); 0 =
	// 400 (caller) and 1000 (callee).
	Tones [2]float64

	Seed int64
	// Start is the time of the first packet; zero = 2024-01-01 00:00:00 UTC.
	Start time.Time

	VLAN uint16 // 802.1Q VLAN id on every frame, 0 = untagged
	// MTU bounds IP packets: UDP SIP over IPv4 bigger than MTU is sent as IPv4
	// fragments; TCP SIP is cut into segments of at most MTU bytes of IP.
	// IPv6 UDP is never fragmented. 0 = 1500.
	MTU       int
	Transport string // TransportUDP (default), TransportTCP or TransportSCTP
	// Encap wraps every frame in a tunnel or mirror encapsulation (EncapGRE,
	// EncapERSPAN2, …; see Encaps); "" = none.
	Encap string
	// TCPCoalesce sends the PBX's 100 Trying in the same TCP segment as its
	// next message (180, 486, …), and 200-for-CANCEL together with the 487.
	TCPCoalesce bool
	IPv6        bool

	// Failure mix, in percent of calls (sum at most 100); the rest are answered.
	Busy       float64 // INVITE → 100 → 486 → ACK
	Cancelled  float64 // INVITE → 100 → 180 → CANCEL → 200 → 487 → ACK
	Unanswered float64 // INVITE → 100 → 180 → (Duration) → 480 → ACK

	// REGISTERs, spread like call attempts (j-th at (j+0.5)/CPS s).
	Registers         int
	RegisterAuth      float64 // percent answered 401 then 200 after an Authorization retry
	RegisterForbidden float64 // percent answered 401 then 403 after the retry; the rest get 200 at once
}

// withDefaults returns o with zero fields replaced by their defaults, or an
// error wrapping ErrOption.
func (o Options) withDefaults() (Options, error) {
	if o.Calls == 0 {
		o.Calls = 10
	}
	if o.Concurrency == 0 {
		o.Concurrency = min(o.Calls, portBlock)
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.CPS == 0 {
		o.CPS = 10
	}
	if o.Codec == "" {
		o.Codec = CodecPCMU
	}
	if o.BurstLen == 0 {
		o.BurstLen = 5
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.MTU == 0 {
		o.MTU = 1500
	}
	if o.Transport == "" {
		o.Transport = TransportUDP
	}
	defTones := [2]float64{400, 1000}
	if o.Codec == CodecILBC {
		defTones = [2]float64{700, 1300} // its recorded frames
	}
	for i, def := range defTones {
		if o.Tones[i] == 0 {
			o.Tones[i] = def
		}
		if hz := o.Tones[i]; hz < 0 || hz >= 4000 || hz != float64(int(hz/50))*50 {
			return o, fmt.Errorf("%w: tone %v Hz (want a multiple of 50 below 4000)", ErrOption, hz)
		}
	}
	pct := func(name string, v float64) error {
		if v < 0 || v > 100 || v != v {
			return fmt.Errorf("%w: %s %v not in 0..100", ErrOption, name, v)
		}
		return nil
	}
	switch {
	case o.Calls < 0 || o.Calls > MaxCalls:
		return o, fmt.Errorf("%w: calls %d not in 0..%d", ErrOption, o.Calls, MaxCalls)
	case o.Concurrency < 0 || o.Concurrency > MaxConcurrency:
		return o, fmt.Errorf("%w: concurrency %d not in 0..%d", ErrOption, o.Concurrency, MaxConcurrency)
	case o.Duration < Ptime:
		return o, fmt.Errorf("%w: duration %v < %v", ErrOption, o.Duration, Ptime)
	case o.CPS < 0 || o.CPS != o.CPS || o.CPS > 1e6:
		return o, fmt.Errorf("%w: cps %v not in 0..1e6", ErrOption, o.CPS)
	case !slices.Contains(Codecs, o.Codec):
		return o, fmt.Errorf("%w: codec %q (want one of %v)", ErrOption, o.Codec, Codecs)
	case o.BurstLen < 0:
		return o, fmt.Errorf("%w: burst length %d < 0", ErrOption, o.BurstLen)
	case o.Jitter < 0 || o.Jitter > time.Minute:
		return o, fmt.Errorf("%w: jitter %v not in 0..1m", ErrOption, o.Jitter)
	case o.VLAN > 4094:
		return o, fmt.Errorf("%w: vlan %d > 4094", ErrOption, o.VLAN)
	case o.MTU < minMTU || o.MTU > 65535:
		return o, fmt.Errorf("%w: mtu %d not in %d..65535", ErrOption, o.MTU, minMTU)
	case o.Transport != TransportUDP && o.Transport != TransportTCP && o.Transport != TransportSCTP:
		return o, fmt.Errorf("%w: transport %q (want udp, tcp or sctp)", ErrOption, o.Transport)
	case o.Encap != EncapNone && !slices.Contains(Encaps, o.Encap):
		return o, fmt.Errorf("%w: encap %q (want one of %v)", ErrOption, o.Encap, Encaps)
	case o.Registers < 0 || o.Registers > MaxRegisters:
		return o, fmt.Errorf("%w: registers %d not in 0..%d", ErrOption, o.Registers, MaxRegisters)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"loss", o.Loss}, {"burst rate", o.BurstRate}, {"busy", o.Busy},
		{"cancelled", o.Cancelled}, {"unanswered", o.Unanswered},
		{"register auth", o.RegisterAuth}, {"register forbidden", o.RegisterForbidden},
	} {
		if err := pct(p.name, p.v); err != nil {
			return o, err
		}
	}
	if s := o.Busy + o.Cancelled + o.Unanswered; s > 100 {
		return o, fmt.Errorf("%w: busy+cancelled+unanswered %v%% > 100%%", ErrOption, s)
	}
	if s := o.RegisterAuth + o.RegisterForbidden; s > 100 {
		return o, fmt.Errorf("%w: register auth+forbidden %v%% > 100%%", ErrOption, s)
	}
	return o, nil
}
