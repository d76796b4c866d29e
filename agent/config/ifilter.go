package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"pbx-agent/sniffer/capture"
)

// InterfaceFilter is one interface_libpcap_filter entry: a capture socket
// of its own on Interface keeping the frames of Filter (a pcap-filter
// expression).
type InterfaceFilter struct {
	Interface string
	Filter    string
}

// parseInterfaceFilters reads one interface_libpcap_filter value: entries
// "<interface> : <expression>" separated by ';' (a pcap-filter expression
// has no ';'). The interface ends at the first ':', both sides trimmed, as
// VoIPmonitor's cConfigItem_dstrings (config_param.cpp:2333-2343); an empty
// piece between ';' is skipped. Where VoIPmonitor drops an entry without
// ':' or without an expression unnoticed, the agent refuses it.
func parseInterfaceFilters(v string) ([]InterfaceFilter, error) {
	var out []InterfaceFilter
	for _, e := range strings.Split(v, ";") {
		if strings.TrimSpace(e) == "" {
			continue
		}
		name, expr, ok := strings.Cut(e, ":")
		name, expr = strings.TrimSpace(name), strings.TrimSpace(expr)
		if !ok || name == "" || expr == "" {
			return out, fmt.Errorf("entry %q: want <interface> : <pcap-filter expression>", strings.TrimSpace(e))
		}
		if _, err := capture.CompileFilter(expr); err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, InterfaceFilter{Interface: name, Filter: expr})
	}
	return out, nil
}

// CaptureExpr is the expression an entry's socket keeps frames by: the
// entry's, ANDed with filter when that is set, spelled as VoIPmonitor
// joins them before pcap_compile, "(filter) and (entry)" (pcap_queue.cpp:
// 4075-4084), so a vlan in filter shifts the entry's primitives as there.
func (c *Config) CaptureExpr(f InterfaceFilter) string {
	if strings.TrimSpace(c.Filter) == "" {
		return f.Filter
	}
	return "(" + c.Filter + ") and (" + f.Filter + ")"
}

// validateInterfaceFilters: every entry names an interface of interface
// (VoIPmonitor ignores the others unnoticed, pcap_queue.cpp:7106-7117),
// and its expression joined with filter still compiles (bounds).
func (c *Config) validateInterfaceFilters() []error {
	var errs []error
	for _, f := range c.InterfaceFilters {
		key := "interface_libpcap_filter"
		file, line := c.where(key)
		if !slices.Contains(c.Interface, f.Interface) {
			errs = append(errs, &Error{File: file, Line: line, Key: key, Err: ErrBadValue,
				Msg:  fmt.Sprintf("interface %q is not in interface (%s)", f.Interface, strings.Join(c.Interface, ",")),
				Hint: "name an interface listed in interface; each entry splits that interface's capture"})
			continue
		}
		if _, err := capture.CompileFilter(c.CaptureExpr(f)); err != nil {
			errs = append(errs, &Error{File: file, Line: line, Key: key, Err: ErrBadValue,
				Msg: fmt.Sprintf("%s: with filter: %v", f.Interface, err), Hint: "shorten filter or the entry's expression"})
		}
	}
	return errs
}

// mysqlZone is what mysql_timezone may hold: an offset (+02:00), SYSTEM or
// a zone name. The value goes into SET time_zone = '…', so no quotes.
var mysqlZone = regexp.MustCompile(`^(?:[+-](?:[0-9]|0[0-9]|1[0-4]):[0-5][0-9]|[A-Za-z][A-Za-z0-9_+/-]{0,63})$`)

var errMySQLZone = errors.New("want an offset such as +02:00, SYSTEM, or a zone name such as Europe/Prague")

// checkMySQLZone refuses a mysql_timezone the server could not take.
// Whether a zone name is known is the server's (its time zone tables):
// the first connection says so.
func checkMySQLZone(v string) error {
	if v != "" && !mysqlZone.MatchString(v) {
		return errMySQLZone
	}
	return nil
}
