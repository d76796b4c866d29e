package manager

import (
	"bytes"
	"errors"
	"net"
	"os"
	"time"

	"pbx-agent/agent/manager/wire"
)

// firstReadSize is VoIPmonitor's first recv() size.
const firstReadSize = 4095

// rawRequest is one request as it came off the wire, split into its parts.
type rawRequest struct {
	encrypted  bool
	sealed     bool   // pbx-agent's authenticated scheme (wire.SealedName)
	cipherName string // text before the first ':' of an AES request
	ciphertext []byte // AES request body (without prefix and trailer)
	line       []byte // plaintext command line, cut at the first CR or LF
}

// aesPrefixEnd returns the index of the ':' that ends an AES request's cipher
// name ("aes-128-cbc:"), or -1 when buf is not (yet) an AES request: the
// prefix must start with "aes" (any case) and the colon come within 20 bytes.
func aesPrefixEnd(buf []byte) int {
	if len(buf) < 4 || !bytes.EqualFold(buf[:3], []byte("aes")) {
		return -1
	}
	i := bytes.IndexByte(buf[:min(len(buf), wire.MaxCipherNameLen)], ':')
	return i
}

// isSealed reports whether a request's cipher name is pbx-agent's
// authenticated scheme.
func isSealed(name []byte) bool { return bytes.EqualFold(name, []byte(wire.SealedName)) }

// aesTrailer returns the index of the ":sea" trailer that ends the ciphertext
// starting at start, or -1. Only positions after whole 16-byte blocks count,
// so a ciphertext that contains ":sea" by chance is not cut short.
func aesTrailer(buf []byte, start int) int {
	for off := start; ; {
		i := bytes.Index(buf[off:], []byte(wire.RequestSuffix))
		if i < 0 {
			return -1
		}
		p := off + i
		if n := p - start; n >= 16 && n%16 == 0 {
			return p
		}
		off = p + 1
	}
}

// requestComplete reports whether buf holds a whole request. first is true
// after the first read only: like VoIPmonitor, the first read needs CRLF CRLF
// (plaintext) while later reads are satisfied by a single CRLF.
func requestComplete(buf []byte, first bool) bool {
	if c := aesPrefixEnd(buf); c >= 0 {
		if isSealed(buf[:c]) {
			return bytes.Contains(buf[c+1:], []byte("\r\n"))
		}
		return aesTrailer(buf, c+1) >= 0
	}
	if first {
		return bytes.Contains(buf, []byte("\r\n\r\n"))
	}
	return bytes.Contains(buf, []byte("\r\n"))
}

// parseRequest splits a complete (or idle-ended) buffer into a rawRequest.
func parseRequest(buf []byte) rawRequest {
	if c := aesPrefixEnd(buf); c >= 0 {
		r := rawRequest{encrypted: true, cipherName: string(buf[:c])}
		body := buf[c+1:]
		if isSealed(buf[:c]) {
			r.sealed = true
			if i := bytes.Index(body, []byte("\r\n")); i >= 0 {
				body = body[:i]
			}
			r.ciphertext = body
			return r
		}
		if t := aesTrailer(buf, c+1); t >= 0 {
			body = buf[c+1 : t]
		} else {
			body, _ = bytes.CutSuffix(body, []byte(wire.RequestSuffix))
		}
		r.ciphertext = body
		return r
	}
	return rawRequest{line: commandLine(buf)}
}

// commandLine drops anything after the first CRLF CRLF and cuts at the first CR or LF.
func commandLine(b []byte) []byte {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		b = b[:i]
	}
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	return b
}

// readRequest reads one request from c: up to CRLF CRLF (or the AES trailer)
// in the first read, else until CRLF, EOF, idle for idle, the whole-request
// deadline total, or max bytes. The first byte must come within firstByte
// (an idle connection holds a slot for no longer). It returns what was
// read; an empty buffer with a nil error means the peer closed without
// sending anything.
func readRequest(c net.Conn, buf []byte, max int, idle, total, firstByte time.Duration) ([]byte, error) {
	deadline := time.Now().Add(total)
	if err := c.SetReadDeadline(time.Now().Add(min(total, firstByte))); err != nil {
		return nil, err
	}
	buf = buf[:0]
	first := true
	for {
		if len(buf) >= max {
			return buf, ErrRequestTooLarge
		}
		if cap(buf)-len(buf) < 512 {
			nb := make([]byte, len(buf), min(max+1, 2*cap(buf)+firstReadSize))
			copy(nb, buf)
			buf = nb
		}
		want := cap(buf)
		if first {
			want = min(want, firstReadSize)
		}
		n, err := c.Read(buf[len(buf):want])
		buf = buf[:len(buf)+n]
		if n > 0 && requestComplete(buf, first) {
			return buf, nil
		}
		if n > 0 {
			if first {
				if err := c.SetReadDeadline(deadline); err != nil {
					return buf, err
				}
			}
			first = false
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if len(buf) == 0 || !time.Now().Before(deadline) {
					return buf, ErrRequestTimeout
				}
				return buf, nil // idle after some data: run what we have
			}
			if len(buf) > 0 {
				return buf, nil // EOF or reset after data: half-closed clients
			}
			return buf, err
		}
		if !first {
			d := time.Now().Add(idle)
			if d.After(deadline) {
				d = deadline
			}
			if err := c.SetReadDeadline(d); err != nil {
				return buf, err
			}
		}
	}
}
