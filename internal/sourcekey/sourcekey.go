// Package sourcekey says which client addresses count as one source for
// the per-source limits (the manager API's guard, the web login throttle).
package sourcekey

import "net/netip"

// IPv6Bits is the IPv6 prefix length counted as one source. A host
// picks its own 64-bit interface identifier (RFC 4291; privacy addresses
// change it daily), so one host, or one attacker, holds the 2^64
// addresses of its /64, and a new address in it must not start a fresh
// count; fail2ban and nginx limits are set up to group IPv6 so.
const IPv6Bits = 64

// Of is the address that stands for addr's source: an IPv4 address
// itself (an IPv4-mapped IPv6 address is its IPv4 address), the first
// address of an IPv6 address's /64 (without zone), the zero Addr for the
// zero Addr (a unix-socket peer).
func Of(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if !addr.Is6() {
		return addr
	}
	p, _ := addr.WithZone("").Prefix(IPv6Bits)
	return p.Addr()
}
