package cdr

import (
	"net/netip"
	"strings"
)

// NormaliseUA is cdr_ua_normalisation: a User-Agent loses the parts that
// make every device's string unique, so that one product and version is one
// cdr_ua row. Removed are whitespace-separated words that are an IPv4
// address (with an optional :port, and an optional leading '@'), as
// VoIPmonitor does: "Nero SIPPS IP Phone Version 2.0.51.16" is stored as
// "Nero SIPPS IP Phone Version", while "baresip v1.0.0 (x86_64/linux)" and
// "Asterisk PBX 20.20.1" stay as sent (voipmonitor-ref).
func NormaliseUA(ua string) string {
	if !strings.ContainsRune(ua, '.') {
		return ua
	}
	words := strings.Fields(ua)
	kept := words[:0]
	changed := false
	for _, w := range words {
		if isIPv4Word(w) {
			changed = true
			continue
		}
		kept = append(kept, w)
	}
	if !changed {
		return ua
	}
	return strings.Join(kept, " ")
}

// isIPv4Word reports whether w is a dotted-quad IPv4 address, optionally
// preceded by '@' and followed by ":port".
func isIPv4Word(w string) bool {
	w = strings.TrimPrefix(w, "@")
	if h, p, ok := strings.Cut(w, ":"); ok {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
		w = h
	}
	if strings.Count(w, ".") != 3 {
		return false
	}
	a, err := netip.ParseAddr(w)
	return err == nil && a.Is4()
}
