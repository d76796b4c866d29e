package discover

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// iface picks the capture interfaces carrying Asterisk's SIP listeners:
// loopback for 127.0.0.1 / ::1 binds, the interface holding a specific
// address, the default-route interface for 0.0.0.0 / ::. Non-loopback
// interfaces come first (the daemon captures on the first one).
func (d *discoverer) iface() {
	if len(d.res.SIP) == 0 {
		return
	}
	ifs, err := d.opts.Interfaces()
	if err != nil {
		d.errs = append(d.errs, fmt.Errorf("%w: listing interfaces: %w", ErrInterface, err))
		return
	}
	var names, srcs []string
	for _, b := range d.res.SIP {
		name, why := pickInterface(ifs, b.Addr)
		if name == "" {
			d.errs = append(d.errs, fmt.Errorf("%w: %s (%s)", ErrInterface, b.Addr, b.Source))
			continue
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
			srcs = append(srcs, fmt.Sprintf("%s: %s", name, why))
		}
	}
	if len(names) == 0 {
		return
	}
	loop := func(n string) bool {
		for _, i := range ifs {
			if i.Name == n {
				return i.Loopback
			}
		}
		return false
	}
	slices.SortStableFunc(names, func(a, b string) int {
		switch la, lb := loop(a), loop(b); {
		case la == lb:
			return 0
		case lb:
			return -1
		}
		return 1
	})
	d.res.Interfaces = names
	d.add("interface", strings.Join(names, ","), strings.Join(srcs, "; "))
}

func pickInterface(ifs []Interface, a netip.Addr) (name, why string) {
	switch {
	case a.IsLoopback():
		for _, i := range ifs {
			if i.Loopback {
				return i.Name, "SIP bound to loopback " + a.String()
			}
		}
		return "lo", "SIP bound to loopback " + a.String()
	case a.IsUnspecified():
		for _, i := range ifs {
			if i.Default {
				return i.Name, "SIP bound to " + a.String() + ": default-route interface"
			}
		}
		for _, i := range ifs {
			if i.Up && !i.Loopback && len(i.Addrs) > 0 {
				return i.Name, "SIP bound to " + a.String() + ": first interface that is up (no default route)"
			}
		}
		return "", ""
	}
	for _, i := range ifs {
		if slices.Contains(i.Addrs, a) {
			return i.Name, "holds SIP bind address " + a.String()
		}
	}
	return "", ""
}

// HostInterfaces lists the host's interfaces and marks the IPv4 default
// route's (from /proc/net/route).
func HostInterfaces() ([]Interface, error) {
	nis, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	def := ""
	if b, err := os.ReadFile("/proc/net/route"); err == nil {
		def = defaultRoute(b)
	}
	out := make([]Interface, 0, len(nis))
	for _, ni := range nis {
		i := Interface{Name: ni.Name, Loopback: ni.Flags&net.FlagLoopback != 0, Up: ni.Flags&net.FlagUp != 0, Default: ni.Name == def}
		addrs, _ := ni.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					i.Addrs = append(i.Addrs, ip.Unmap())
				}
			}
		}
		out = append(out, i)
	}
	return out, nil
}

// defaultRoute returns the interface of the first 0.0.0.0/0 route in a
// /proc/net/route table.
func defaultRoute(table []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			return f[0]
		}
	}
	return ""
}
