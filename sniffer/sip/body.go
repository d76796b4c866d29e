package sip

import "bytes"

// maxMultipartDepth bounds nested multipart bodies.
const maxMultipartDepth = 3

// SDPBody returns the application/sdp part of m's body: the whole body when
// Content-Type is application/sdp (or absent and the body starts "v=0"),
// the first application/sdp part of a multipart/* body, else nil.
func SDPBody(m *Message) []byte {
	if len(m.Body) == 0 {
		return nil
	}
	if m.ContentType == nil {
		if bytes.HasPrefix(m.Body, []byte("v=0")) {
			return m.Body
		}
		return nil
	}
	return sdpPart(m.ContentType, m.Body, 0)
}

func mediaType(ct []byte) (mt, params []byte) {
	if k := bytes.IndexByte(ct, ';'); k >= 0 {
		return trimLWS(ct[:k]), ct[k:]
	}
	return trimLWS(ct), nil
}

func sdpPart(ct, body []byte, depth int) []byte {
	mt, params := mediaType(ct)
	if equalFold(mt, "application/sdp") {
		return body
	}
	if depth >= maxMultipartDepth || len(mt) < 10 || !equalFold(mt[:10], "multipart/") {
		return nil
	}
	bnd := Param(params, "boundary")
	if len(bnd) >= 2 && bnd[0] == '"' && bnd[len(bnd)-1] == '"' {
		bnd = bnd[1 : len(bnd)-1]
	}
	if len(bnd) == 0 {
		return nil
	}
	var found []byte
	eachPart(body, bnd, func(pct, pbody []byte) bool {
		if p := sdpPart(pct, pbody, depth+1); p != nil {
			found = p
			return false
		}
		return true
	})
	return found
}

// delimiter finds "--"+bnd at a line start in b from i; it returns the index
// of the "--" or -1.
func delimiter(b, bnd []byte, i int) int {
	for i < len(b) {
		k := bytes.Index(b[i:], bnd)
		if k < 0 {
			return -1
		}
		d := i + k - 2
		if d >= 0 && b[d] == '-' && b[d+1] == '-' && (d == 0 || b[d-1] == '\n') {
			return d
		}
		i += k + 1
	}
	return -1
}

// eachPart calls fn with each body part's Content-Type value and content.
func eachPart(body, bnd []byte, fn func(ct, content []byte) bool) {
	d := delimiter(body, bnd, 0)
	for d >= 0 {
		after := d + 2 + len(bnd)
		if after+2 <= len(body) && body[after] == '-' && body[after+1] == '-' {
			return // close-delimiter
		}
		nl := bytes.IndexByte(body[after:], '\n')
		if nl < 0 {
			return
		}
		start := after + nl + 1
		next := delimiter(body, bnd, start)
		end := next
		if end < 0 {
			end = len(body)
		} else {
			// the CRLF before the delimiter belongs to it
			if end > start && body[end-1] == '\n' {
				end--
			}
			if end > start && body[end-1] == '\r' {
				end--
			}
		}
		ct, content := partHeaders(body[start:end])
		if !fn(ct, content) {
			return
		}
		d = next
	}
}

// partHeaders splits a MIME part into its Content-Type value and content.
func partHeaders(p []byte) (ct, content []byte) {
	i := 0
	for i < len(p) {
		end, next, ok := lineEnd(p, i)
		if end == i {
			return ct, p[next:]
		}
		line := p[i:end]
		if c := bytes.IndexByte(line, ':'); c > 0 && lookupID(trimLWS(line[:c])) == hContentType {
			ct = trimLWS(line[c+1:])
		}
		if !ok {
			break
		}
		i = next
	}
	return ct, nil // no empty line: headers only
}
