package sip

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzParse: any input either parses into a self-consistent Message or
// returns a *ParseError; never a panic.
func FuzzParse(f *testing.F) {
	f.Add(crlf(invite))
	f.Add([]byte(tcpInvite + tcpOK))
	f.Add([]byte("SIP/2.0 100 \r\ni: x\r\nf: <sip:a@b>;tag=1\r\nt: <sip:a@b>\r\nCSeq: 1 INVITE\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		n, err := Parse(b, &m)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		if n > len(b) || len(m.Body) > n || m.CallID == nil || m.CSeqMethod == nil {
			t.Fatalf("inconsistent: n=%d len=%d body=%d", n, len(b), len(m.Body))
		}
		if m.ContentLength >= 0 && m.ContentLength != len(m.Body) {
			t.Fatalf("Content-Length %d, body %d", m.ContentLength, len(m.Body))
		}
		_ = m.Header("Via")
		_ = m.UserAgent()
		m.Headers("Contact", func(v []byte) bool {
			_, u, p, err := ParseNameAddr(v)
			if err == nil {
				_ = Param(p, "expires")
				_, _, _, _, _ = ParseURI(u)
			}
			return true
		})
		_ = SDPBody(&m)
		_, _, _, _, _ = ParseURI(m.RequestURI)
	})
}

// FuzzStream: the input is split at a fuzzed point and written in two
// parts; every framed message starts with a start line, the stream never
// holds more than its bound plus one write, and splitting does not change
// the framing.
func FuzzStream(f *testing.F) {
	f.Add([]byte(tcpInvite+tcpOK+tcpNoCL), uint16(17))
	f.Add([]byte("\r\n\r\ngarbage\r\n"+tcpOK), uint16(3))
	f.Add(crlf(invite), uint16(200))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		frame := func(parts ...[]byte) [][]byte {
			s := Stream{MaxSize: 4096}
			var out [][]byte
			for _, p := range parts {
				s.Write(p)
				for {
					msg, err := s.Next()
					if errors.Is(err, io.ErrUnexpectedEOF) {
						break
					}
					if err != nil {
						continue
					}
					if !isStartLine(msg[:bytes.IndexByte(msg, '\n')+1]) {
						t.Fatalf("framed message without start line: %q", msg)
					}
					out = append(out, bytes.Clone(msg))
				}
				if s.Buffered() > s.MaxSize+len(p) {
					t.Fatalf("buffered %d", s.Buffered())
				}
			}
			return out
		}
		c := int(cut) % (len(b) + 1)
		whole := frame(b)
		split := frame(b[:c], b[c:])
		if len(b) < 4096 && len(whole) != len(split) {
			t.Fatalf("whole %d messages, split %d", len(whole), len(split))
		}
	})
}
