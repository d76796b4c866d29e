package cdrquery

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// maxObject bounds a cdr_filter object (bytes).
const maxObject = 64 << 10

// ParseObject reads admin.php's cdr_filter value: a JavaScript object
// literal as people type it in a URL ({fcallid:"abc",limit:10}) or strict
// JSON. Keys may be bare words or quoted; values are strings ('…' or "…"),
// numbers, true/false or null (null = not set). Nested objects and arrays are
// refused. The result is usable as Params.
func ParseObject(s string) (url.Values, error) {
	if len(s) > maxObject {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadObject, maxObject)
	}
	p := &objParser{s: s}
	out := url.Values{}
	p.space()
	if !p.eat('{') {
		return nil, p.errf("expected '{'")
	}
	p.space()
	if p.eat('}') {
		return out, p.end()
	}
	for {
		p.space()
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		p.space()
		if !p.eat(':') {
			return nil, p.errf("expected ':' after key %q", key)
		}
		p.space()
		val, isNull, err := p.value()
		if err != nil {
			return nil, err
		}
		if !isNull {
			out.Set(key, val)
		}
		p.space()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return out, p.end()
		}
		return nil, p.errf("expected ',' or '}'")
	}
}

type objParser struct {
	s string
	i int
}

func (p *objParser) errf(format string, a ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrBadObject, p.i, fmt.Sprintf(format, a...))
}

func (p *objParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *objParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *objParser) end() error {
	p.space()
	if p.i != len(p.s) {
		return p.errf("text after the object")
	}
	return nil
}

func isWord(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (p *objParser) key() (string, error) {
	if p.i < len(p.s) && (p.s[p.i] == '"' || p.s[p.i] == '\'') {
		return p.quoted()
	}
	start := p.i
	for p.i < len(p.s) && isWord(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return "", p.errf("expected a key")
	}
	return p.s[start:p.i], nil
}

func (p *objParser) value() (string, bool, error) {
	if p.i >= len(p.s) {
		return "", false, p.errf("expected a value")
	}
	switch c := p.s[p.i]; {
	case c == '"' || c == '\'':
		v, err := p.quoted()
		return v, false, err
	case c == '{' || c == '[':
		return "", false, p.errf("nested objects and arrays are not filter values")
	}
	start := p.i
	for p.i < len(p.s) && (isWord(p.s[p.i]) || strings.IndexByte(".+-", p.s[p.i]) >= 0) {
		p.i++
	}
	w := p.s[start:p.i]
	switch w {
	case "":
		return "", false, p.errf("expected a value")
	case "null":
		return "", true, nil
	case "true", "false":
		return w, false, nil
	}
	if _, err := strconv.ParseFloat(w, 64); err != nil {
		return "", false, p.errf("bare value %q is not a number, true, false or null", w)
	}
	return w, false, nil
}

// quoted reads a '…' or "…" string with JSON-style backslash escapes.
func (p *objParser) quoted() (string, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == q:
			return b.String(), nil
		case c == '\\':
			if p.i >= len(p.s) {
				return "", p.errf("unterminated escape")
			}
			e := p.s[p.i]
			p.i++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				if p.i+4 > len(p.s) {
					return "", p.errf("short \\u escape")
				}
				n, err := strconv.ParseUint(p.s[p.i:p.i+4], 16, 16)
				if err != nil {
					return "", p.errf("bad \\u escape")
				}
				p.i += 4
				b.WriteRune(rune(n))
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errf("unterminated string")
}
