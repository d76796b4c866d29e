package sip

import (
	"errors"
	"io"
	"strings"
	"testing"

	"pbx-agent/internal/testkit"
)

const (
	tcpInvite = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\nt: <sip:b@h>\r\ni: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 5\r\n\r\nhello"
	tcpOK     = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\nt: <sip:b@h>;tag=2\r\ni: c1\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"
	tcpNoCL   = "ACK sip:b@h SIP/2.0\r\nf: <sip:a@h>;tag=1\r\nt: <sip:b@h>;tag=2\r\ni: c1\r\nCSeq: 1 ACK\r\n\r\n"
)

// drain returns every message Next yields until it needs more bytes.
func drain(t *testing.T, s *Stream) (msgs []string, errs []error) {
	t.Helper()
	for i := 0; i < 100; i++ {
		b, err := s.Next()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return msgs, errs
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var m Message
		if _, perr := Parse(b, &m); perr != nil {
			t.Errorf("framed message does not parse: %v: %q", perr, b)
		}
		msgs = append(msgs, string(b))
	}
	t.Fatal("Next never asked for more bytes")
	return nil, nil
}

func TestStream(t *testing.T) {
	tests := []struct {
		name      string
		writes    []string
		max       int
		want      []string
		wantErrs  []error
		discarded int
		buffered  int
	}{
		{name: "several in one write", writes: []string{tcpInvite + tcpOK + tcpNoCL}, want: []string{tcpInvite, tcpOK, tcpNoCL}},
		{name: "split across writes", writes: []string{tcpInvite[:10], tcpInvite[10:60], tcpInvite[60 : len(tcpInvite)-2], tcpInvite[len(tcpInvite)-2:] + tcpOK[:3], tcpOK[3:]}, want: []string{tcpInvite, tcpOK}},
		{name: "byte by byte", writes: strings.Split(tcpOK+tcpInvite, ""), want: []string{tcpOK, tcpInvite}},
		{name: "keep-alives skipped", writes: []string{"\r\n\r\n", tcpOK, "\r\n", "\r\n\r\n" + tcpNoCL}, want: []string{tcpOK, tcpNoCL}},
		{name: "garbage resync", writes: []string{"junk line\r\nmore junk\r\n" + tcpOK}, want: []string{tcpOK}, discarded: len("junk line\r\nmore junk\r\n")},
		{name: "garbage mid-stream (lost segment)", writes: []string{tcpInvite, "=audio 1 RTP/AVP 0\r\na=x\r\n" + tcpOK}, want: []string{tcpInvite, tcpOK}, discarded: len("=audio 1 RTP/AVP 0\r\na=x\r\n")},
		{name: "partial garbage line kept until complete", writes: []string{"xx", "x\r\n", tcpNoCL}, want: []string{tcpNoCL}, discarded: 5},
		{name: "bad content-length", writes: []string{strings.Replace(tcpOK, "l: 0", "l: x", 1) + tcpNoCL}, want: []string{tcpNoCL}, wantErrs: []error{ErrContentLength}, discarded: len(tcpOK)},
		{name: "conflicting content-lengths", writes: []string{strings.Replace(tcpOK, "l: 0", "l: 0\r\nContent-Length: 4", 1) + tcpNoCL}, want: []string{tcpNoCL}, wantErrs: []error{ErrContentLength}, discarded: len(tcpOK) + len("Content-Length: 4\r\n")},
		{name: "content-length over max", max: 100, writes: []string{strings.Replace(tcpInvite, "Content-Length: 5", "Content-Length: 500", 1)}, wantErrs: []error{ErrTooLarge}, discarded: len(tcpInvite) + 2 - 5, buffered: 5},
		{name: "head over max", max: 64, writes: []string{tcpOK[:70]}, wantErrs: []error{ErrTooLarge}, discarded: 70},
		{name: "incomplete body waits", writes: []string{tcpInvite[:len(tcpInvite)-1]}, buffered: len(tcpInvite) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Stream{MaxSize: tt.max}
			var got []string
			var errs []error
			for _, w := range tt.writes {
				s.Write([]byte(w))
				m, e := drain(t, &s)
				got, errs = append(got, m...), append(errs, e...)
			}
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
				t.Errorf("messages:\n got %q\nwant %q", got, tt.want)
			}
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("errors %v, want %v", errs, tt.wantErrs)
			}
			for i := range errs {
				if !errors.Is(errs[i], tt.wantErrs[i]) {
					t.Errorf("error %d = %v, want %v", i, errs[i], tt.wantErrs[i])
				}
			}
			if tt.discarded != 0 && s.Discarded() != tt.discarded {
				t.Errorf("discarded %d, want %d", s.Discarded(), tt.discarded)
			}
			if s.Buffered() != tt.buffered {
				t.Errorf("buffered %d, want %d", s.Buffered(), tt.buffered)
			}
		})
	}
}

func TestStreamReset(t *testing.T) {
	var s Stream
	s.Write([]byte(tcpInvite[:20]))
	s.Reset()
	s.Write([]byte(tcpOK))
	b, err := s.Next()
	if err != nil || string(b) != tcpOK {
		t.Fatalf("after reset: %q %v", b, err)
	}
}

func TestStreamZeroAlloc(t *testing.T) {
	var s Stream
	in := []byte(tcpInvite + tcpOK)
	s.Write(in) // grow the buffer once
	testkit.NoAllocs(t, func() {
		s.Write(in)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
	})
}

func BenchmarkStream(b *testing.B) {
	var s Stream
	in := []byte(tcpInvite + tcpOK + tcpNoCL)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		s.Write(in)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
	}
}
