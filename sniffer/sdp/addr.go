package sdp

import "net/netip"

// parseAddr parses a dotted IPv4 or an IPv6 address (no zone) without
// allocating (netip.ParseAddr needs a string).
func parseAddr(b []byte) (netip.Addr, bool) {
	for _, c := range b {
		if c == ':' {
			return parseIPv6(b)
		}
	}
	a, ok := parseIPv4(b)
	if !ok {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

func parseIPv4(b []byte) ([4]byte, bool) {
	var a [4]byte
	n, digits, oct := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || oct == 4 {
				return a, false
			}
			a[oct] = byte(n)
			oct++
			n, digits = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || (digits == 1 && n == 0) { // no leading zeros
			return a, false
		}
		n = n*10 + int(c-'0')
		digits++
		if n > 255 {
			return a, false
		}
	}
	return a, oct == 4
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func parseIPv6(b []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // byte index where "::" was
	i, j := 0, 0   // i into b, j into ip
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis, i = 0, 2
		if i == len(b) {
			return netip.AddrFrom16(ip), true
		}
	}
	for i < len(b) {
		// a group, or a trailing dotted IPv4
		n, k := 0, 0
		for k < 4 && i+k < len(b) && hexVal(b[i+k]) >= 0 {
			n = n<<4 | hexVal(b[i+k])
			k++
		}
		if k == 0 {
			return netip.Addr{}, false
		}
		if i+k < len(b) && b[i+k] == '.' {
			if j > 12 {
				return netip.Addr{}, false
			}
			a, ok := parseIPv4(b[i:])
			if !ok {
				return netip.Addr{}, false
			}
			copy(ip[j:], a[:])
			j += 4
			i = len(b)
			break
		}
		if j > 14 {
			return netip.Addr{}, false
		}
		ip[j], ip[j+1] = byte(n>>8), byte(n)
		j += 2
		i += k
		if i == len(b) {
			break
		}
		if b[i] != ':' || i+1 == len(b) {
			return netip.Addr{}, false
		}
		i++
		if b[i] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = j
			i++
			if i == len(b) {
				break
			}
		}
	}
	if ellipsis >= 0 {
		if j == 16 {
			return netip.Addr{}, false
		}
		n := 16 - j
		copy(ip[ellipsis+n:], ip[ellipsis:j])
		for k := ellipsis; k < ellipsis+n; k++ {
			ip[k] = 0
		}
	} else if j != 16 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(ip), true
}
