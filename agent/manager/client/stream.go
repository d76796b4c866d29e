package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
)

// Stream is a client's listen_stream connection. Next and NextFrame are not
// safe for concurrent use; Close may be called from any goroutine.
type Stream struct {
	c      net.Conn
	rd     *wire.StreamReader
	reason string
	stop   func() bool
}

// DialStream connects to a manager server (network "tcp" or "unix"; ""
// is "tcp"), asks for `listen_stream <ref> <layout>` (AES-encrypted with key
// when not nil) and returns the stream once the server accepted it. A
// refused request returns an error: wrapping call.ErrNoCall for an unknown
// call, else wire.ErrBadReply with the server's text. ctx bounds the dial
// and the whole stream: cancelling it ends Next with an error.
func DialStream(ctx context.Context, network, addr string, ref uint64, layout byte, key *wire.AESKey) (*Stream, error) {
	return DialStreamRate(ctx, network, addr, ref, layout, 0, key)
}

// DialStreamRate is DialStream asking for the call's own rate up to rate
// (`rate=N`: 16000 for G.722, 48000 for Opus); 0 asks for 8 kHz as older
// clients do. A sensor older than rate= refuses the request as if the call
// were unknown: callers retry without it (OpenStream in agent/sensors).
func DialStreamRate(ctx context.Context, network, addr string, ref uint64, layout byte, rate int, key *wire.AESKey) (*Stream, error) {
	if network == "" {
		network = "tcp"
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("manager: dial %s %s: %w", network, addr, err)
	}
	s := &Stream{c: c}
	s.stop = BindContext(ctx, c)
	lay := "stereo"
	if layout == wire.StreamMono {
		lay = "mono"
	}
	if rate > 0 {
		lay += fmt.Sprintf(" rate=%d", rate)
	}
	req, sess := Request(fmt.Sprintf("listen_stream 0x%x %s", ref, lay), key)
	if _, err := c.Write(req); err != nil {
		s.Close()
		return nil, fmt.Errorf("manager: send: %w", err)
	}
	br := bufio.NewReaderSize(c, 16<<10)
	encrypted := false
	if sess != nil {
		if p, err := br.Peek(len(wire.SealedReplyPrefix)); err == nil && string(p) == wire.SealedReplyPrefix {
			_, _ = br.Discard(len(wire.SealedReplyPrefix))
			br = bufio.NewReaderSize(sess.ReplyReader(br), 16<<10)
		}
	}
	if key != nil && sess == nil {
		p, err := br.Peek(len(wire.ReplyPrefix))
		if err == nil && string(p) == wire.ReplyPrefix {
			_, _ = br.Discard(len(wire.ReplyPrefix))
			br = bufio.NewReaderSize(wire.NewReplyReader(br, *key), 16<<10)
			encrypted = true
		}
	}
	if p, err := br.Peek(len(wire.StreamMagic)); err != nil || string(p) != wire.StreamMagic {
		text := append([]byte(nil), p...)
		if err == nil {
			rest, _ := io.ReadAll(io.LimitReader(br, 4096))
			text = append(text[:0], rest...)
			if encrypted {
				// A refusal is one whole encrypted reply: drop its padding.
				if t, uerr := wire.Unpad(text); uerr == nil {
					text = t
				}
			}
		}
		s.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		text = bytes.TrimSpace(text)
		if string(text) == wire.ReplyCallNotFound {
			return nil, fmt.Errorf("manager: listen_stream: %w: 0x%x", call.ErrNoCall, ref)
		}
		if err != nil && len(text) == 0 {
			return nil, fmt.Errorf("%w: %w", wire.ErrBadReply, err)
		}
		return nil, fmt.Errorf("%w: %q", wire.ErrBadReply, text)
	}
	s.rd = wire.NewStreamReader(br)
	return s, nil
}

// Next reads the next record. After an end record it returns io.EOF; a
// connection cut without one returns io.ErrUnexpectedEOF.
func (s *Stream) Next() (wire.StreamRecord, error) {
	rec, err := s.rd.Next()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, wire.ErrBadReply) {
		err = fmt.Errorf("manager: listen_stream: %w", err)
	}
	return rec, err
}

// NextFrame fills f with the next audio frame, skipping keepalives, and
// returns how many frames the server has dropped for this stream so far.
// After the server's end record it returns io.EOF and EndReason says why.
func (s *Stream) NextFrame(f *audio.Frame) (dropped uint64, err error) {
	for {
		rec, err := s.Next()
		if err != nil {
			return 0, err
		}
		switch rec.Kind {
		case wire.StreamEnd:
			s.reason = rec.Reason
			return 0, io.EOF
		case wire.StreamAudio:
			return uint64(rec.Dropped), rec.Frame(f)
		}
	}
}

// EndReason is the reason of the server's end record ("call ended",
// "server shutdown"), once NextFrame returned io.EOF.
func (s *Stream) EndReason() string { return s.reason }

// Close ends the stream.
func (s *Stream) Close() error {
	s.stop()
	return s.c.Close()
}
