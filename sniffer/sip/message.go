// Package sip is a zero-copy SIP message parser for a passive sniffer: it
// indexes the header lines of one message in place and extracts the fields a
// call table needs, without allocating. Stream frames SIP over TCP.
package sip

import (
	"bytes"
	"fmt"
)

// MaxHeaders is how many header lines a Message indexes. Lines past it are
// still scanned for the well-known fields but Header cannot return them.
const MaxHeaders = 64

type hdr struct {
	id     hdrID
	ns, ne uint32 // name [ns:ne] in raw
	vs, ve uint32 // value [vs:ve] in raw (may span folded lines)
}

// Message is a parsed SIP message; all []byte fields alias the input buffer
// (zero-copy): copy what must outlive it.
type Message struct {
	Request       bool
	Method        []byte // request method; for responses the CSeq method
	RequestURI    []byte
	StatusCode    int
	Reason        []byte
	CallID        []byte
	From, To      []byte // full header values
	FromTag       []byte // nil when absent
	ToTag         []byte
	CSeq          uint32
	CSeqMethod    []byte
	ContentType   []byte
	ContentLength int // -1 when absent
	Body          []byte

	// HeadersDropped counts header lines beyond MaxHeaders (not indexed).
	HeadersDropped int

	raw  []byte // the message (head and body)
	hdrs [MaxHeaders]hdr
	nh   int
}

// Raw returns the bytes of the whole message (head and body).
func (m *Message) Raw() []byte { return m.raw }

func errAt(err error, off int, header, detail string) error {
	return &ParseError{Err: err, Offset: off, Header: header, Detail: detail}
}

// Parse parses one message at b[0:] into m (which it resets) and returns the
// number of bytes consumed: head plus body. Without Content-Length the body
// is the rest of b (a UDP datagram). Leading CRLFs (keep-alives) are skipped
// and counted in n. Bad bytes give a *ParseError wrapping a sentinel.
//
// Parse rejects what RFC 4475 section 3.1.2 lists as syntactically invalid,
// and (section 3.3.1, 3.3.8, 3.3.9) messages missing Call-ID, From, To or
// CSeq or carrying two values of Call-ID, From, To, CSeq or Content-Length:
// a sniffer cannot attribute them to a dialog, or cannot frame them. Other
// semantic oddities of section 3.3 (unknown schemes, Require, zero
// Max-Forwards, ...) parse, as a sniffer only watches.
func Parse(b []byte, m *Message) (n int, err error) {
	m.ContentLength = -1
	m.Request, m.Method, m.RequestURI, m.StatusCode, m.Reason = false, nil, nil, 0, nil
	m.CallID, m.From, m.To, m.FromTag, m.ToTag = nil, nil, nil, nil, nil
	m.CSeq, m.CSeqMethod, m.ContentType, m.Body = 0, nil, nil, nil
	m.HeadersDropped, m.nh, m.raw = 0, 0, nil

	start := 0
	for start < len(b) && (b[start] == '\r' || b[start] == '\n') {
		start++
	}
	if start == len(b) {
		return len(b), errAt(ErrEmpty, start, "", "")
	}
	b = b[start:]
	if err := m.parseStartLine(b); err != nil {
		return 0, shift(err, start)
	}
	head, err := m.parseHeaders(b)
	if err != nil {
		return 0, shift(err, start)
	}
	if err := m.extract(b); err != nil {
		return 0, shift(err, start)
	}
	rest := b[head:]
	if m.ContentLength >= 0 {
		if m.ContentLength > len(rest) {
			return 0, errAt(ErrBodyTruncated, start+head, "Content-Length",
				fmt.Sprintf("%d > %d", m.ContentLength, len(rest)))
		}
		rest = rest[:m.ContentLength]
	}
	m.Body = rest
	m.raw = b[:head+len(rest)]
	return start + head + len(rest), nil
}

func shift(err error, by int) error {
	if pe, ok := err.(*ParseError); ok {
		pe.Offset += by
	}
	return err
}

// lineEnd returns the index of the LF ending the line starting at i, and the
// end of the line content (before CR LF). ok is false without an LF.
func lineEnd(b []byte, i int) (content, next int, ok bool) {
	j := bytes.IndexByte(b[i:], '\n')
	if j < 0 {
		return len(b), len(b), false
	}
	j += i
	c := j
	if c > i && b[c-1] == '\r' {
		c--
	}
	return c, j + 1, true
}

var sipVersion = []byte("SIP/2.0")

func (m *Message) parseStartLine(b []byte) error {
	end, _, ok := lineEnd(b, 0)
	if !ok {
		return errAt(ErrStartLine, 0, "", "no line end")
	}
	line := b[:end]
	if len(line) >= 4 && equalFold(line[:4], "SIP/") {
		// Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return errAt(ErrStartLine, 0, "", "no status code")
		}
		if !equalFold(line[:sp], sipVersion) {
			return errAt(ErrVersion, 0, "", fmt.Sprintf("%q", line[:sp]))
		}
		code := line[sp+1:]
		reason := code[len(code):]
		if k := bytes.IndexByte(code, ' '); k >= 0 {
			code, reason = code[:k], code[k+1:]
		}
		if len(code) != 3 || !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) || code[0] < '1' || code[0] > '6' {
			return errAt(ErrStatusCode, sp+1, "", fmt.Sprintf("%.20q", code))
		}
		m.StatusCode = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
		m.Reason = reason
		return nil
	}
	// Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP
	// each (RFC 4475 3.1.2.9, 3.1.2.10).
	m.Request = true
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errAt(ErrStartLine, 0, "", "no method")
	}
	if !isToken(line[:sp1]) {
		return errAt(ErrMethod, 0, "", fmt.Sprintf("%.20q", line[:sp1]))
	}
	m.Method = line[:sp1]
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return errAt(ErrStartLine, sp1+1, "", "no SIP version")
	}
	uri, ver := rest[:sp2], rest[sp2+1:]
	if !equalFold(ver, sipVersion) {
		return errAt(ErrVersion, sp1+sp2+2, "", fmt.Sprintf("%.20q", ver))
	}
	if err := checkRequestURI(uri); err != nil {
		return errAt(ErrRequestURI, sp1+1, "", err.Error())
	}
	m.RequestURI = uri
	return nil
}

func checkRequestURI(uri []byte) error {
	if len(uri) == 0 {
		return errString("empty")
	}
	if uri[0] == '<' {
		return errString("enclosed in <>") // RFC 4475 3.1.2.7
	}
	colon := bytes.IndexByte(uri, ':')
	if colon <= 0 || !isScheme(uri[:colon]) {
		return errString("no scheme")
	}
	for _, c := range uri {
		if c <= ' ' || c == 0x7f {
			return errString("control or space character")
		}
	}
	// SIP and SIPS Request-URIs carry no headers (RFC 3261 19.1.1, RFC 4475
	// 3.1.2.11). '?' may appear in the user part (RFC 4475 3.1.1.2); the
	// last '@' ends it, as host, params and headers hold no unescaped '@'.
	if (equalFold(uri[:colon], "sip") || equalFold(uri[:colon], "sips")) && bytes.IndexByte(uri[bytes.LastIndexByte(uri, '@')+1:], '?') >= 0 {
		return errString("headers in a SIP Request-URI")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// parseHeaders indexes header lines and returns the offset of the body.
func (m *Message) parseHeaders(b []byte) (int, error) {
	_, i, _ := lineEnd(b, 0)
	cur := -1 // index in hdrs of the header being continued, -2 when dropped
	for {
		end, next, ok := lineEnd(b, i)
		if !ok {
			if i == len(b) && i > 0 {
				// A datagram that ends after a complete header line but
				// lacks the empty line: accept it with no body (a sniffer
				// sees such truncated senders).
				return i, nil
			}
			return 0, errAt(ErrNoHeaderEnd, i, "", "")
		}
		if end == i { // empty line
			return next, nil
		}
		if b[i] == ' ' || b[i] == '\t' { // folded continuation
			if cur == -1 {
				return 0, errAt(ErrHeader, i, "", "continuation before any header")
			}
			if h := &m.hdrs[max(cur, 0)]; cur >= 0 {
				if h.ve == h.vs { // value so far empty: it starts here
					vs := skipWSP(b, i, end)
					h.vs, h.ve = uint32(vs), uint32(vs)
				}
				if ve := trimRightEnd(b, int(h.vs), end); ve > int(h.vs) {
					h.ve = uint32(ve)
				}
			}
			i = next
			continue
		}
		ne := i
		for ne < end && isTokenChar(b[ne]) {
			ne++
		}
		if ne == i {
			return 0, errAt(ErrHeader, i, "", fmt.Sprintf("bad name %.20q", b[i:end]))
		}
		c := ne
		for c < end && (b[c] == ' ' || b[c] == '\t') {
			c++
		}
		if c == end || b[c] != ':' {
			return 0, errAt(ErrHeader, i, "", fmt.Sprintf("no colon in %.20q", b[i:end]))
		}
		vs := skipWSP(b, c+1, end)
		ve := trimRightEnd(b, vs, end)
		if m.nh == MaxHeaders {
			m.HeadersDropped++
			cur = -2
			// The well-known fields are still needed: a key header (Call-ID,
			// From, To, CSeq, Content-*) takes the slot of the last unknown
			// or list header; other headers are dropped.
			if id := lookupID(b[i:ne]); id == hCallID || id == hFrom || id == hTo || id == hCSeq || id == hContentLength || id == hContentType {
				// Replace the last unknown header so key fields survive.
				for k := m.nh - 1; k >= 0; k-- {
					if m.hdrs[k].id == hUnknown || hdrNames[m.hdrs[k].id].list {
						m.hdrs[k] = hdr{id: id, ns: uint32(i), ne: uint32(ne), vs: uint32(vs), ve: uint32(ve)}
						cur = k
						break
					}
				}
			}
		} else {
			m.hdrs[m.nh] = hdr{id: lookupID(b[i:ne]), ns: uint32(i), ne: uint32(ne), vs: uint32(vs), ve: uint32(ve)}
			cur = m.nh
			m.nh++
		}
		i = next
	}
}

func trimRightEnd(b []byte, start, end int) int {
	for end > start && (b[end-1] == ' ' || b[end-1] == '\t' || b[end-1] == '\r' || b[end-1] == '\n') {
		end--
	}
	return end
}

// extract fills the well-known fields and validates the headers a sniffer
// relies on.
func (m *Message) extract(b []byte) error {
	var seen [numHdrIDs]bool
	for k := 0; k < m.nh; k++ {
		h := &m.hdrs[k]
		v := b[h.vs:h.ve]
		name := hdrNames[h.id].full
		switch h.id {
		case hCallID, hFrom, hTo, hCSeq, hContentLength, hContentType:
			if seen[h.id] {
				return errAt(ErrDuplicateHeader, int(h.ns), name, "")
			}
			seen[h.id] = true
		}
		switch h.id {
		case hCallID:
			if len(v) == 0 || bytes.ContainsAny(v, " \t\r\n") {
				return errAt(ErrHeader, int(h.vs), name, "bad Call-ID")
			}
			m.CallID = v
		case hFrom, hTo:
			_, _, params, err := ParseNameAddr(v)
			if err != nil {
				return errAt(err, int(h.vs), name, "")
			}
			tag := Param(params, "tag")
			if h.id == hFrom {
				m.From, m.FromTag = v, tag
			} else {
				m.To, m.ToTag = v, tag
			}
		case hCSeq:
			if err := m.parseCSeq(v); err != nil {
				return errAt(err, int(h.vs), name, fmt.Sprintf("%.40q", v))
			}
		case hContentLength:
			n, ok := atoiBounded(v, 1<<30)
			if !ok {
				return errAt(ErrContentLength, int(h.vs), name, fmt.Sprintf("%.40q", v))
			}
			m.ContentLength = n
		case hContentType:
			m.ContentType = v
		case hVia:
			if err := checkVia(v); err != nil {
				return errAt(err, int(h.vs), name, "")
			}
		case hContact:
			if err := checkContact(v); err != nil {
				return errAt(err, int(h.vs), name, "")
			}
		case hDate:
			// rfc1123-date ends in "GMT" (RFC 3261 20.17, RFC 4475 3.1.2.12).
			if !bytes.HasSuffix(v, []byte(" GMT")) {
				return errAt(ErrDate, int(h.vs), name, "time zone is not GMT")
			}
		}
	}
	switch {
	case m.CallID == nil:
		return errAt(ErrMissingHeader, 0, "Call-ID", "")
	case m.From == nil:
		return errAt(ErrMissingHeader, 0, "From", "")
	case m.To == nil:
		return errAt(ErrMissingHeader, 0, "To", "")
	case m.CSeqMethod == nil:
		return errAt(ErrMissingHeader, 0, "CSeq", "")
	}
	if m.Request {
		// RFC 3261 8.1.1.5 and 12.2.1.1: the CSeq method matches the
		// request's (RFC 4475 3.1.2.17, 3.1.2.18).
		if !bytes.Equal(m.Method, m.CSeqMethod) {
			return errAt(ErrCSeqMethod, 0, "CSeq", fmt.Sprintf("%.20q vs %.20q", m.Method, m.CSeqMethod))
		}
	} else {
		m.Method = m.CSeqMethod
	}
	return nil
}

// parseCSeq: CSeq = 1*DIGIT LWS Method; the number is below 2**31
// (RFC 3261 8.1.1.5).
func (m *Message) parseCSeq(v []byte) error {
	i := 0
	for i < len(v) && isDigit(v[i]) {
		i++
	}
	n, ok := atoiBounded(v[:i], 1<<31-1)
	if !ok {
		return ErrCSeq
	}
	j := skipLWS(v, i)
	if j == i || j == len(v) {
		return ErrCSeq
	}
	meth := v[j:]
	if !isToken(meth) {
		return ErrCSeq
	}
	m.CSeq, m.CSeqMethod = uint32(n), meth
	return nil
}

// atoiBounded parses 1*DIGIT (surrounding LWS allowed) no larger than max.
func atoiBounded(v []byte, max int) (int, bool) {
	v = trimLWS(v)
	if len(v) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > max {
			return 0, false
		}
	}
	return n, true
}
