package call

import (
	"bytes"
	"strings"

	"pbx-agent/sniffer/sip"
)

// userHost returns the user and host parts of a SIP or tel URI. Real
// phones send URIs the grammar rejects (bare IPv6 hosts without brackets);
// a sniffer still wants the user, so those are split by hand.
func userHost(uri []byte) (user, host string) {
	if _, u, h, _, err := sip.ParseURI(uri); err == nil {
		return string(u), string(h)
	}
	if i := bytes.IndexByte(uri, ':'); i >= 0 {
		uri = uri[i+1:]
	}
	if i := bytes.IndexAny(uri, ";?>"); i >= 0 {
		uri = uri[:i]
	}
	if i := bytes.LastIndexByte(uri, '@'); i >= 0 {
		return string(uri[:i]), string(uri[i+1:])
	}
	return "", string(uri)
}

// unquote removes the quotes of a display name or parameter and its escapes;
// spaces inside the quotes are part of the value (VoIPmonitor keeps them).
func unquote(b []byte) string {
	if t := bytes.TrimSpace(b); len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
		b = t[1 : len(t)-1]
	}
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			i++
		}
		sb.WriteByte(b[i])
	}
	return sb.String()
}

// splitToken splits "Q.850;cause=16;text=x" into the token and its params.
func splitToken(v []byte) (string, []byte) {
	v = bytes.TrimSpace(v)
	if i := bytes.IndexByte(v, ';'); i >= 0 {
		return string(bytes.TrimSpace(v[:i])), v[i:]
	}
	return string(v), nil
}

func atoi(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' || n > 1e8 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// infoDigit reads a DTMF digit from a SIP INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5").
func infoDigit(m *sip.Message) (DTMF, bool) {
	ct := bytes.ToLower(bytes.TrimSpace(m.ContentType))
	body := bytes.TrimSpace(m.Body)
	var v []byte
	switch {
	case bytes.HasPrefix(ct, []byte("application/dtmf-relay")):
		for _, line := range bytes.Split(body, []byte("\n")) {
			k, val, ok := bytes.Cut(line, []byte("="))
			if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte("signal")) {
				v = bytes.TrimSpace(val)
			}
		}
	case bytes.HasPrefix(ct, []byte("application/dtmf")):
		v = body
	}
	if len(v) != 1 {
		if len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '1' { // 10 = *, 11 = #
			return DTMF{Digit: "*#"[v[1]-'0'], Source: "sipinfo"}, true
		}
		return DTMF{}, false
	}
	c := v[0]
	if c >= 'a' && c <= 'd' {
		c -= 'a' - 'A'
	}
	if (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D') {
		return DTMF{Digit: c, Source: "sipinfo"}, true
	}
	return DTMF{}, false
}
