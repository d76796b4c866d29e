// Package simulate generates deterministic SIP and RTP traffic for tests and
// benchmarks: calls from many callers to one PBX (INVITE with SDP → 100 → 180
// → 200 with SDP → ACK → G.711 RTP both ways at 20 ms ptime → BYE → 200),
// failure mixes (486 busy, CANCEL/487, unanswered 480) and REGISTERs
// (200, 401-then-200, 401-then-403), with optional packet loss, arrival
// jitter, 802.1Q tags, IPv4 fragmentation, SIP over TCP and IPv6.
//
// A Generator is a gopacket packet source: it yields Ethernet frames in
// arrival order (timestamps never go backwards) with bounded memory, so it can
// feed a decoder directly or be written to a pcap with WritePcap. The same
// Options (including Seed) always give the same bytes. After the last packet,
// Truth reports what was generated: every RTP stream with the packets sent and
// dropped, every call with its final response, every REGISTER.
package simulate
