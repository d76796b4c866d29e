package sip

import "bytes"

// maxDetectLine bounds how far LooksLikeMessage looks for the end of a
// Request-Line (a Request-URI longer than this is not worth guessing at).
const maxDetectLine = 2048

// LooksLikeMessage reports whether b begins like a SIP message: a
// Status-Line ("SIP/2.0 NNN ") or a Request-Line whose URI is sip:, sips: or
// tel: and which ends in " SIP/2.0". It is the cheap test that finds SIP on
// ports nobody configured (a few byte comparisons; RTP, whose first byte is
// 0x80-0xbf, fails on the first one). Parse still has the last word.
func LooksLikeMessage(b []byte) bool {
	if len(b) < 12 {
		return false
	}
	c := b[0]
	if c < 'A' || c > 'Z' {
		return false
	}
	if c == 'S' && b[1] == 'I' && b[2] == 'P' && b[3] == '/' {
		return string(b[4:8]) == "2.0 " && isDigit(b[8]) && isDigit(b[9]) && isDigit(b[10]) &&
			(b[11] == ' ' || b[11] == '\n' || b[11] == '\r' && len(b) > 12 && b[12] == '\n')
	}
	// Method: an upper-case token (INVITE, REGISTER, ...), then one space.
	sp := 1
	for sp < len(b) && sp <= 32 && ('A' <= b[sp] && b[sp] <= 'Z' || b[sp] == '-' || b[sp] == '_') {
		sp++
	}
	if sp >= len(b) || b[sp] != ' ' {
		return false
	}
	uri := b[sp+1:]
	switch {
	case len(uri) > 4 && equalFold(uri[:4], "sip:"), len(uri) > 5 && equalFold(uri[:5], "sips:"),
		len(uri) > 4 && equalFold(uri[:4], "tel:"):
	default:
		return false
	}
	line := uri[:min(len(uri), maxDetectLine)]
	nl := bytes.IndexByte(line, '\n')
	if nl < 0 {
		return false
	}
	line = line[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return len(line) > 8 && string(line[len(line)-8:]) == " SIP/2.0"
}
