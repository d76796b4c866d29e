package sip

import (
	"bytes"
	"fmt"
	"io"

	"pbx-agent/internal/eol"
)

// DefaultStreamMax is the buffer bound of a Stream with MaxSize 0.
const DefaultStreamMax = 64 << 10

// Stream frames SIP messages from one TCP flow. Write the flow's bytes in
// order; Next returns each complete message (framed by Content-Length; a
// head with no Content-Length has an empty body). The zero value is ready.
// Not safe for concurrent use.
type Stream struct {
	// MaxSize bounds the buffered bytes (DefaultStreamMax when 0). A message
	// that cannot fit is dropped: Next returns ErrTooLarge and resyncs.
	MaxSize int

	buf       []byte
	r         int // start of unconsumed bytes
	discarded int
	// How far the message at r was scanned, so that its head arriving in
	// small segments is scanned once rather than again after each Write
	// (a 64 KiB head in 10-byte segments cost 387 ms, 1-byte ones seconds).
	scanned int // bytes from r holding no line end, while no start line is complete
	start   int // > 0: the start line's length (it is complete and valid)
	headAt  int // the head's scan resumes here (from r), once start > 0
	headCL  int // the Content-Length the head gave so far (-1: none)
}

func (s *Stream) max() int {
	if s.MaxSize > 0 {
		return s.MaxSize
	}
	return DefaultStreamMax
}

// Write appends the next bytes of the flow. Slices returned by Next before
// this call may be overwritten.
func (s *Stream) Write(b []byte) {
	if s.r > 0 {
		n := copy(s.buf, s.buf[s.r:])
		s.buf = s.buf[:n]
		s.r = 0
	}
	if len(s.buf) > s.max() { // caller did not drain with Next
		s.discarded += len(s.buf)
		s.buf = s.buf[:0]
		s.forget()
	}
	s.buf = append(s.buf, b...)
}

// Discarded returns how many bytes were skipped as garbage or overflow.
func (s *Stream) Discarded() int { return s.discarded }

// Buffered returns how many bytes wait for the rest of their message.
func (s *Stream) Buffered() int { return len(s.buf) - s.r }

// Reset drops buffered bytes (e.g. after a TCP gap); the counter is kept.
func (s *Stream) Reset() {
	s.buf = s.buf[:0]
	s.r = 0
	s.forget()
}

// forget drops the scan state: the message at r is another one.
func (s *Stream) forget() { s.scanned, s.start, s.headAt, s.headCL = 0, 0, 0, -1 }

func (s *Stream) drop(n int) {
	s.forget()
	s.discarded += n
	s.r += n
	if s.r >= len(s.buf) {
		s.buf, s.r = s.buf[:0], 0
	}
}

// Next returns the next complete message, which aliases the Stream's buffer
// until the next Write or Reset. io.ErrUnexpectedEOF means more bytes are
// needed. Bytes that do not start with a SIP start line are skipped up to
// the next line that does (counted in Discarded); a bad Content-Length makes
// the head garbage; ErrTooLarge reports a message over MaxSize (dropped).
func (s *Stream) Next() ([]byte, error) {
	for {
		p := s.buf[s.r:]
		k := eol.EmptyLines(p) // keep-alives (RFC 5626 §4.4.1)
		if k > 0 {
			s.r += k
			p = p[k:]
			s.forget()
		}
		if len(p) == 0 {
			s.buf, s.r = s.buf[:0], 0
			return nil, io.ErrUnexpectedEOF
		}
		if len(p) == 1 && p[0] == '\r' {
			return nil, io.ErrUnexpectedEOF // CR of a CRLF keep-alive, or of a garbage line
		}
		if s.start == 0 {
			nl := bytes.IndexByte(p[s.scanned:], '\n')
			if nl < 0 {
				s.scanned = len(p)
				return nil, s.needMore(len(p))
			}
			nl += s.scanned
			if !isStartLine(p[:nl+1]) {
				s.drop(resync(p, nl+1))
				continue
			}
			s.start, s.headAt, s.headCL = nl+1, nl+1, -1
		}
		head, cl, err := s.frameHead(p)
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				return nil, s.needMore(len(p))
			}
			s.drop(s.start)
			return nil, err
		}
		if cl > s.max() {
			s.drop(s.start)
			return nil, fmt.Errorf("%w: Content-Length %d > %d", ErrTooLarge, cl, s.max())
		}
		if len(p) < head+cl {
			return nil, s.needMore(len(p))
		}
		msg := p[:head+cl]
		s.r += head + cl
		s.forget()
		return msg, nil
	}
}

// needMore returns io.ErrUnexpectedEOF, or ErrTooLarge (dropping the
// pending bytes) once they exceed the bound.
func (s *Stream) needMore(pending int) error {
	if pending > s.max() {
		s.drop(pending)
		return fmt.Errorf("%w: %d bytes pending > %d", ErrTooLarge, pending, s.max())
	}
	return io.ErrUnexpectedEOF
}

// resync returns how many bytes of p to skip: up to the next line that
// starts a SIP message, or everything but an unterminated last line.
func resync(p []byte, from int) int {
	i := from
	for {
		nl := bytes.IndexByte(p[i:], '\n')
		if nl < 0 {
			return i // keep the partial line: it may become a start line
		}
		if isStartLine(p[i : i+nl+1]) {
			return i
		}
		i += nl + 1
	}
}

// isStartLine reports whether line (ending in LF) looks like a SIP
// Request-Line or Status-Line.
func isStartLine(line []byte) bool {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) >= 11 && equalFold(line[:8], "SIP/2.0 ") {
		return isDigit(line[8]) && isDigit(line[9]) && isDigit(line[10]) && (len(line) == 11 || line[11] == ' ')
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) || len(line) < sp+10 {
		return false
	}
	return equalFold(line[len(line)-8:], " SIP/2.0") && line[sp+1] != ' '
}

// frameHead finds the end of the head (after the empty line) and the
// Content-Length value (0 when absent), scanning p (the pending bytes) from
// the first header line not scanned yet; with the head incomplete it
// records where the next call resumes.
func (s *Stream) frameHead(p []byte) (head, cl int, err error) {
	cl = s.headCL
	for i := s.headAt; ; {
		end, next, ok := lineEnd(p, i)
		if !ok {
			s.headAt, s.headCL = i, cl
			return 0, 0, io.ErrUnexpectedEOF
		}
		if end == i {
			return next, max(cl, 0), nil
		}
		if p[i] != ' ' && p[i] != '\t' {
			line := p[i:end]
			if c := bytes.IndexByte(line, ':'); c > 0 {
				if id := lookupID(bytes.TrimRight(line[:c], " \t")); id == hContentLength {
					n, ok := atoiBounded(line[c+1:], 1<<30)
					if !ok {
						return 0, 0, fmt.Errorf("%w: %.40q", ErrContentLength, line[c+1:])
					}
					if cl >= 0 && cl != n { // RFC 4475 3.3.9: cannot frame
						return 0, 0, fmt.Errorf("%w: two values, %d and %d", ErrContentLength, cl, n)
					}
					cl = n
				}
			}
		}
		i = next
	}
}
