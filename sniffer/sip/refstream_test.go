package sip

// refStream is refStream as it was before it kept its scan state between
// Writes (rescanning the pending head each time): the reference
// TestStreamSameAsRescan compares with.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"pbx-agent/internal/eol"
)

type refStream struct {
	// MaxSize bounds the buffered bytes (DefaultStreamMax when 0). A message
	// that cannot fit is dropped: Next returns ErrTooLarge and resyncs.
	MaxSize int

	buf       []byte
	r         int // start of unconsumed bytes
	discarded int
}

func (s *refStream) max() int {
	if s.MaxSize > 0 {
		return s.MaxSize
	}
	return DefaultStreamMax
}

// Write appends the next bytes of the flow. Slices returned by Next before
// this call may be overwritten.
func (s *refStream) Write(b []byte) {
	if s.r > 0 {
		n := copy(s.buf, s.buf[s.r:])
		s.buf = s.buf[:n]
		s.r = 0
	}
	if len(s.buf) > s.max() { // caller did not drain with Next
		s.discarded += len(s.buf)
		s.buf = s.buf[:0]
	}
	s.buf = append(s.buf, b...)
}

// Discarded returns how many bytes were skipped as garbage or overflow.
func (s *refStream) Discarded() int { return s.discarded }

// Buffered returns how many bytes wait for the rest of their message.
func (s *refStream) Buffered() int { return len(s.buf) - s.r }

// Reset drops buffered bytes (e.g. after a TCP gap); the counter is kept.
func (s *refStream) Reset() {
	s.buf = s.buf[:0]
	s.r = 0
}

func (s *refStream) drop(n int) {
	s.discarded += n
	s.r += n
	if s.r >= len(s.buf) {
		s.buf, s.r = s.buf[:0], 0
	}
}

// Next returns the next complete message, which aliases the refStream's buffer
// until the next Write or Reset. io.ErrUnexpectedEOF means more bytes are
// needed. Bytes that do not start with a SIP start line are skipped up to
// the next line that does (counted in Discarded); a bad Content-Length makes
// the head garbage; ErrTooLarge reports a message over MaxSize (dropped).
func (s *refStream) Next() ([]byte, error) {
	for {
		p := s.buf[s.r:]
		k := eol.EmptyLines(p) // keep-alives (RFC 5626 §4.4.1)
		s.r += k
		p = p[k:]
		if len(p) == 0 {
			s.buf, s.r = s.buf[:0], 0
			return nil, io.ErrUnexpectedEOF
		}
		if len(p) == 1 && p[0] == '\r' {
			return nil, io.ErrUnexpectedEOF // CR of a CRLF keep-alive, or of a garbage line
		}
		nl := bytes.IndexByte(p, '\n')
		if nl < 0 {
			return nil, s.needMore(len(p))
		}
		if !isStartLine(p[:nl+1]) {
			s.drop(resync(p, nl+1))
			continue
		}
		head, cl, err := refFrameHead(p)
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				return nil, s.needMore(len(p))
			}
			s.drop(nl + 1)
			return nil, err
		}
		if cl > s.max() {
			s.drop(nl + 1)
			return nil, fmt.Errorf("%w: Content-Length %d > %d", ErrTooLarge, cl, s.max())
		}
		if len(p) < head+cl {
			return nil, s.needMore(len(p))
		}
		msg := p[:head+cl]
		s.r += head + cl
		return msg, nil
	}
}

// needMore returns io.ErrUnexpectedEOF, or ErrTooLarge (dropping the
// pending bytes) once they exceed the bound.
func (s *refStream) needMore(pending int) error {
	if pending > s.max() {
		s.drop(pending)
		return fmt.Errorf("%w: %d bytes pending > %d", ErrTooLarge, pending, s.max())
	}
	return io.ErrUnexpectedEOF
}

// resync returns how many bytes of p to skip: up to the next line that
// starts a SIP message, or everything but an unterminated last line.
// refFrameHead finds the end of the head (after the empty line) and the
// Content-Length value (0 when absent).
func refFrameHead(p []byte) (head, cl int, err error) {
	cl = -1
	for i := 0; ; {
		end, next, ok := lineEnd(p, i)
		if !ok {
			return 0, 0, io.ErrUnexpectedEOF
		}
		if end == i {
			return next, max(cl, 0), nil
		}
		if i > 0 && p[i] != ' ' && p[i] != '\t' {
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

// TestStreamSameAsRescan: the stream frames the same messages, errors and
// discarded counts as when it rescanned the pending head after every
// Write, for the test messages and garbage cut in segments of every size
// from 1 byte.
func TestStreamSameAsRescan(t *testing.T) {
	inputs := []string{
		tcpInvite + tcpOK + tcpNoCL,
		"\r\n\r\ngarbage\r\n" + tcpOK,
		string(crlf(invite)),
		"INVITE sip:a@b SIP/2.0\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello" + tcpOK,
		"INVITE sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n" + tcpOK,
		"INVITE sip:a@b SIP/2.0\r\nContent-Length: 99999\r\n\r\n" + tcpOK,
		"SIP/2.0 200 OK\nl: 3\n\nabc\r\n\r\nBYE sip:x SIP/2.0\r\nX: " + strings.Repeat("y", 5000) + "\r\n\r\n" + tcpOK,
		"INVITE sip:a@b SIP/2.0\r\n" + strings.Repeat("X-Pad: 0123456789\r\n", 300) + "\r\n" + tcpOK,
		"garbage\rmore\r\n\r" + tcpInvite,
	}
	for n, in := range inputs {
		for _, seg := range []int{1, 2, 3, 7, 16, 100, 1460, len(in)} {
			if got, want := bothStreams(in, seg); !slices.Equal(got, want) {
				t.Errorf("input %d in %d-byte segments:\n got %+v\nwant %+v", n, seg, got, want)
			}
		}
	}
}

// FuzzStreamSameAsRescan is TestStreamSameAsRescan on any bytes, cut in
// segments of any size.
func FuzzStreamSameAsRescan(f *testing.F) {
	f.Add([]byte(tcpInvite+tcpOK+tcpNoCL), uint8(1))
	f.Add([]byte("\r\n\r\ngarbage\r\n"+tcpOK), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, seg uint8) {
		if got, want := bothStreams(string(b), int(seg)+1); !slices.Equal(got, want) {
			t.Fatalf("in %d-byte segments:\n got %+v\nwant %+v", int(seg)+1, got, want)
		}
	})
}

type streamStep struct {
	msg  string
	err  string
	disc int
}

// bothStreams frames in, written seg bytes at a time, with Stream and with
// refStream.
func bothStreams(in string, seg int) (got, want []streamStep) {
	run := func(write func([]byte), next func() ([]byte, error), disc func() int) []streamStep {
		var out []streamStep
		for i := 0; i < len(in); i += seg {
			write([]byte(in[i:min(i+seg, len(in))]))
			for {
				msg, err := next()
				if errors.Is(err, io.ErrUnexpectedEOF) {
					break
				}
				st := streamStep{msg: string(msg), disc: disc()}
				if err != nil {
					st.err = err.Error()
				}
				out = append(out, st)
			}
		}
		return out
	}
	s, r := Stream{MaxSize: 4096}, refStream{MaxSize: 4096}
	return run(s.Write, s.Next, s.Discarded), run(r.Write, r.Next, r.Discarded)
}
