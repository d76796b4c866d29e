package asteriskconf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Rule is one permit/deny entry (Asterisk's struct ast_ha). A leading '!' on the
// address flips the rule's sense, as Asterisk's ast_append_ha does.
type Rule struct {
	Permit bool
	Prefix netip.Prefix
}

// MarshalText renders "permit 127.0.0.1/32".
func (r Rule) MarshalText() ([]byte, error) {
	s := "deny "
	if r.Permit {
		s = "permit "
	}
	return []byte(s + r.Prefix.String()), nil
}

// ACL is the local permit/deny list of a user plus the named ACLs (acl.conf)
// it refers to. An address is allowed when every ACL allows it.
type ACL struct {
	Rules []Rule `json:",omitempty"`
	// Named are acl= references in order; Resolved holds the rules of each
	// one found in acl.conf (nil when acl.conf was not given or lacks it).
	Named    []string `json:",omitempty"`
	Resolved [][]Rule `json:",omitempty"`
}

// AppendRules parses a permit/deny value ("addr[/mask][,addr[/mask]...]").
func AppendRules(rules []Rule, permit bool, value string) ([]Rule, error) {
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		sense := permit
		if strings.HasPrefix(item, "!") {
			sense, item = !permit, strings.TrimSpace(item[1:])
		}
		p, err := parseNet(item)
		if err != nil {
			return rules, err
		}
		rules = append(rules, Rule{Permit: sense, Prefix: p})
	}
	return rules, nil
}

func parseNet(s string) (netip.Prefix, error) {
	a, m, hasMask := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(strings.TrimSpace(a))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: address %q", ErrValue, s)
	}
	addr = addr.Unmap()
	bits := addr.BitLen()
	if hasMask {
		m = strings.TrimSpace(m)
		if strings.ContainsAny(m, ".:") {
			mask, err := netip.ParseAddr(m)
			if err != nil || mask.BitLen() != addr.BitLen() {
				return netip.Prefix{}, fmt.Errorf("%w: mask %q", ErrValue, s)
			}
			if bits, err = maskBits(mask); err != nil {
				return netip.Prefix{}, fmt.Errorf("%w: mask %q: %v", ErrValue, s, err)
			}
		} else {
			n, err := strconv.Atoi(m)
			if err != nil || n < 0 || n > addr.BitLen() {
				return netip.Prefix{}, fmt.Errorf("%w: CIDR %q", ErrValue, s)
			}
			bits = n
		}
	}
	return netip.PrefixFrom(addr, bits).Masked(), nil
}

func maskBits(mask netip.Addr) (int, error) {
	b := mask.AsSlice()
	n, seenZero := 0, false
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			if x&(1<<i) != 0 {
				if seenZero {
					return 0, fmt.Errorf("non-contiguous")
				}
				n++
			} else {
				seenZero = true
			}
		}
	}
	return n, nil
}

// applyRules is ast_apply_ha: allowed by default, the last matching rule wins.
// It also returns the rule that decided (nil when none matched).
func applyRules(rules []Rule, addr netip.Addr) (bool, *Rule) {
	addr = addr.Unmap()
	allow := true
	var hit *Rule
	for i := range rules {
		r := &rules[i]
		a := addr
		if r.Prefix.Addr().Is4() != a.Is4() {
			if a.Is4() {
				a = netip.AddrFrom16(a.As16()) // v4-mapped form against an IPv6 rule
			} else {
				continue // IPv6 address, IPv4 rule
			}
		}
		if r.Prefix.Contains(a) {
			allow, hit = r.Permit, r
		}
	}
	return allow, hit
}

// Allows reports whether addr may connect, and why not when it may not.
func (a ACL) Allows(addr netip.Addr) (bool, string) {
	if ok, hit := applyRules(a.Rules, addr); !ok {
		txt, _ := hit.MarshalText()
		return false, fmt.Sprintf("%s refused by %q", addr, txt)
	}
	for i, name := range a.Named {
		if i >= len(a.Resolved) || a.Resolved[i] == nil {
			return false, fmt.Sprintf("named acl %q is not defined (acl.conf)", name)
		}
		if ok, hit := applyRules(a.Resolved[i], addr); !ok {
			txt, _ := hit.MarshalText()
			return false, fmt.Sprintf("%s refused by acl %q rule %q", addr, name, txt)
		}
	}
	return true, ""
}
