package sniffer

import (
	"fmt"
	"strconv"
	"strings"
)

// PortSet is a set of UDP/TCP ports, as voipmonitor.conf's sipport takes
// them: "5060", "5060,5070", "5060-5070", or several lines combined.
type PortSet struct{ bits [1024]uint64 }

// ParsePorts parses a comma/space separated list of ports and ranges.
func ParsePorts(s string) (PortSet, error) {
	var ps PortSet
	err := ps.Add(s)
	return ps, err
}

// Add adds the ports and ranges listed in s.
func (ps *PortSet) Add(s string) error {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == ';' || r == '\t' }) {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := port(lo)
		if err != nil {
			return fmt.Errorf("%w: %q: %v", ErrPorts, f, err)
		}
		b := a
		if isRange {
			if b, err = port(hi); err != nil {
				return fmt.Errorf("%w: %q: %v", ErrPorts, f, err)
			}
			if b < a {
				return fmt.Errorf("%w: %q: range end below start", ErrPorts, f)
			}
		}
		for p := a; p <= b; p++ {
			ps.bits[p/64] |= 1 << (p % 64)
		}
	}
	return nil
}

func port(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("not a port number (1-65535)")
	}
	return n, nil
}

// Has reports whether p is in the set.
func (ps *PortSet) Has(p uint16) bool { return ps.bits[p/64]&(1<<(p%64)) != 0 }

// Empty reports whether the set holds no port.
func (ps *PortSet) Empty() bool {
	for _, w := range ps.bits {
		if w != 0 {
			return false
		}
	}
	return true
}

// String lists the set compactly ("5060,5070-5080").
func (ps *PortSet) String() string {
	var parts []string
	for p := 1; p <= 65535; p++ {
		if !ps.Has(uint16(p)) {
			continue
		}
		q := p
		for q < 65535 && ps.Has(uint16(q+1)) {
			q++
		}
		if q == p {
			parts = append(parts, strconv.Itoa(p))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", p, q))
		}
		p = q
	}
	return strings.Join(parts, ",")
}
