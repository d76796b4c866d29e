package manager

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Small append-style JSON encoders: listcalls renders thousands of rows and
// VoIPmonitor's number formats (%f floats, IPv4 as integers) are not what
// encoding/json produces.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendOptString appends s, or null when s is empty.
func appendOptString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// appendFloatF formats like C's "%f" (6 decimals), VoIPmonitor's jitter/loss format.
func appendFloatF(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, v, 'f', 6, 64)
}

// appendFloatG formats like C's "%g" (6 significant digits).
func appendFloatG(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, v, 'g', 6, 64)
}

// appendIPNum appends an IPv4 address as its big-endian integer, an IPv6
// address as a string and an invalid address as null (listcalls' encoding).
func appendIPNum(b []byte, a netip.Addr) []byte {
	a = a.Unmap()
	switch {
	case a.Is4():
		v := a.As4()
		return strconv.AppendUint(b, uint64(v[0])<<24|uint64(v[1])<<16|uint64(v[2])<<8|uint64(v[3]), 10)
	case a.Is6():
		return appendJSONString(b, a.String())
	}
	return append(b, "null"...)
}

// appendCallRef appends a call reference the way VoIPmonitor prints its call pointer: "0x…".
func appendCallRef(b []byte, ref uint64) []byte {
	b = append(b, '"', '0', 'x')
	b = strconv.AppendUint(b, ref, 16)
	return append(b, '"')
}

// appendDateTimeMs appends "YYYY-MM-DD HH:MM:SS.mmm" as a JSON string.
func appendDateTimeMs(b []byte, t time.Time, loc *time.Location) []byte {
	b = append(b, '"')
	b = t.In(loc).AppendFormat(b, "2006-01-02 15:04:05.000")
	return append(b, '"')
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}
