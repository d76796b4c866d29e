package sip

import "bytes"

// ParseNameAddr splits a From/To/Contact-style value:
//
//	"Alice" <sip:a@b>;tag=x   display "Alice" (quotes removed, escapes kept)
//	Alice <sip:a@b>;tag=x     display "Alice"
//	sip:a@b;tag=x             addr-spec: the params belong to the header
//
// params is what follows the URI, starting with ';' (or empty). It rejects
// unterminated quotes, non-token display names, spaces inside <...>, and an
// addr-spec holding '?' or ',' (RFC 3261 20.10; RFC 4475 3.1.2.6, 3.1.2.13-15).
func ParseNameAddr(v []byte) (display, uri, params []byte, err error) {
	v = trimLWS(v)
	if len(v) == 0 {
		return nil, nil, nil, ErrNameAddr
	}
	i := -1 // index of '<' when name-addr
	switch {
	case v[0] == '"':
		j := quotedEnd(v, 0)
		if j < 0 {
			return nil, nil, nil, ErrQuote
		}
		display = v[1 : j-1]
		i = skipLWS(v, j)
		if i >= len(v) || v[i] != '<' {
			return nil, nil, nil, ErrNameAddr
		}
	default:
		if lt := bytes.IndexByte(v, '<'); lt >= 0 {
			display = trimLWS(v[:lt])
			for _, c := range display {
				if !isTokenChar(c) && !isLWS(c) {
					return nil, nil, nil, ErrNameAddr
				}
			}
			i = lt
		}
	}
	if i >= 0 {
		gt := bytes.IndexByte(v[i:], '>')
		if gt < 0 {
			return nil, nil, nil, ErrNameAddr
		}
		uri = v[i+1 : i+gt]
		params = trimLWS(v[i+gt+1:])
	} else {
		end := bytes.IndexByte(v, ';')
		if end < 0 {
			end = len(v)
		}
		uri, params = trimLWS(v[:end]), v[end:]
		if bytes.IndexByte(uri, '?') >= 0 || bytes.IndexByte(uri, ',') >= 0 {
			return nil, nil, nil, ErrNameAddr
		}
	}
	if !checkURIChars(uri) {
		return nil, nil, nil, ErrURI
	}
	if len(params) > 0 && params[0] != ';' {
		return nil, nil, nil, ErrNameAddr
	}
	if !checkParams(params) {
		return nil, nil, nil, ErrParam
	}
	return display, uri, params, nil
}

// checkURIChars: a scheme, then no space or control characters.
func checkURIChars(uri []byte) bool {
	colon := bytes.IndexByte(uri, ':')
	if colon <= 0 || !isScheme(uri[:colon]) {
		return false
	}
	for _, c := range uri {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// nextParam reads ";name[=value]" at p[i:] (LWS allowed around ';' and '=').
// ok is false at the end or on malformed input (bad is then true).
func nextParam(p []byte, i int) (name, value []byte, next int, ok, bad bool) {
	i = skipLWS(p, i)
	if i >= len(p) {
		return nil, nil, i, false, false
	}
	if p[i] != ';' {
		return nil, nil, i, false, true
	}
	i = skipLWS(p, i+1)
	s := i
	for i < len(p) && isTokenChar(p[i]) {
		i++
	}
	if i == s {
		return nil, nil, i, false, true
	}
	name = p[s:i]
	i = skipLWS(p, i)
	if i < len(p) && p[i] == '=' {
		i = skipLWS(p, i+1)
		s = i
		if i < len(p) && p[i] == '"' {
			j := quotedEnd(p, i)
			if j < 0 {
				return nil, nil, i, false, true
			}
			i = j
		} else {
			for i < len(p) && !isLWS(p[i]) && p[i] != ';' && p[i] != ',' && p[i] != '"' {
				i++
			}
		}
		if i == s {
			return nil, nil, i, false, true
		}
		value = p[s:i]
	} else {
		value = p[i:i] // present without a value: empty, not nil
	}
	return name, value, i, true, false
}

func checkParams(p []byte) bool {
	for i := 0; ; {
		_, _, next, ok, bad := nextParam(p, i)
		if bad {
			return false
		}
		if !ok {
			return true
		}
		i = next
	}
}

// Param returns the value of the parameter name (case-insensitive) in a
// ";a=b;c" list: nil when absent, empty when present without a value.
// Quoted values keep their quotes.
func Param(params []byte, name string) []byte {
	for i := 0; ; {
		n, v, next, ok, _ := nextParam(params, i)
		if !ok {
			return nil
		}
		if equalFold(n, name) {
			return v
		}
		i = next
	}
}

// ParseURI splits sip:user:password@host:port;params?headers (also sips:,
// and other user@host schemes) and tel:number;params. host has no brackets
// for IPv6 references; port is 0 when absent.
func ParseURI(uri []byte) (scheme, user, host []byte, port uint16, err error) {
	colon := bytes.IndexByte(uri, ':')
	if colon <= 0 || !isScheme(uri[:colon]) {
		return nil, nil, nil, 0, ErrURI
	}
	scheme, rest := uri[:colon], uri[colon+1:]
	if equalFold(scheme, "tel") {
		if k := bytes.IndexByte(rest, ';'); k >= 0 {
			rest = rest[:k]
		}
		if len(rest) == 0 {
			return nil, nil, nil, 0, ErrURI
		}
		return scheme, rest, nil, 0, nil
	}
	rest = bytes.TrimPrefix(rest, []byte("//"))
	// The last '@' ends the userinfo: host, params and headers hold no
	// unescaped '@', while the user part may hold '?' and ';'.
	if at := bytes.LastIndexByte(rest, '@'); at >= 0 {
		user = rest[:at]
		if c := bytes.IndexByte(user, ':'); c >= 0 {
			user = user[:c]
		}
		rest = rest[at+1:]
	}
	if k := bytes.IndexAny(rest, ";?/"); k >= 0 {
		rest = rest[:k]
	}
	var after []byte
	if len(rest) > 0 && rest[0] == '[' {
		rb := bytes.IndexByte(rest, ']')
		if rb < 0 {
			return nil, nil, nil, 0, ErrURI
		}
		host, after = rest[1:rb], rest[rb+1:]
		if len(host) == 0 {
			return nil, nil, nil, 0, ErrURI
		}
	} else if c := bytes.IndexByte(rest, ':'); c >= 0 {
		host, after = rest[:c], rest[c:]
	} else {
		host = rest
	}
	if len(host) == 0 {
		return nil, nil, nil, 0, ErrURI
	}
	if len(after) > 0 {
		if after[0] != ':' {
			return nil, nil, nil, 0, ErrURI
		}
		n, ok := atoiBounded(after[1:], 65535)
		if !ok {
			return nil, nil, nil, 0, ErrURI
		}
		port = uint16(n)
	}
	return scheme, user, host, port, nil
}

// checkVia validates each via-parm: sent-protocol (SWS "/" SWS between the
// three tokens), LWS, sent-by, params (RFC 4475 3.1.2.1 has empty ones).
func checkVia(v []byte) error {
	bad := false
	err := splitList(v, func(e []byte) bool {
		i := 0
		for part := 0; part < 3; part++ {
			i = skipLWS(e, i)
			s := i
			for i < len(e) && isTokenChar(e[i]) {
				i++
			}
			if i == s {
				bad = true
				return false
			}
			i = skipLWS(e, i)
			if part < 2 {
				if i >= len(e) || e[i] != '/' {
					bad = true
					return false
				}
				i++
			}
		}
		rest := e[i:]
		end := bytes.IndexByte(rest, ';')
		if end < 0 {
			end = len(rest)
		}
		if len(trimLWS(rest[:end])) == 0 || !checkParams(rest[end:]) {
			bad = true
			return false
		}
		return true
	})
	if err != nil || bad {
		return ErrVia
	}
	return nil
}

// checkContact: "*" or a list of name-addr/addr-spec with params.
func checkContact(v []byte) error {
	if t := trimLWS(v); len(t) == 1 && t[0] == '*' {
		return nil
	}
	var perr error
	err := splitList(v, func(e []byte) bool {
		_, _, _, perr = ParseNameAddr(e)
		return perr == nil
	})
	if err != nil {
		return err
	}
	return perr
}
