package ami

import (
	"bytes"
	"io"
)

// Limits bound what one packet may hold. Zero fields take the defaults.
type Limits struct {
	MaxLine    int // bytes per line, default 8192
	MaxFields  int // fields per packet, default 1024
	MaxMessage int // bytes per packet, default 256 KiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = 8192
	}
	if l.MaxFields <= 0 {
		l.MaxFields = 1024
	}
	if l.MaxMessage <= 0 {
		l.MaxMessage = 256 << 10
	}
	return l
}

const (
	bannerPrefix = "Asterisk Call Manager/"
	endCommand   = "--END COMMAND--"
	maxErrLine   = 80
)

// Parser frames AMI packets out of a byte stream. Feed it with Write and take
// packets with Next, which returns io.ErrUnexpectedEOF when it needs more
// bytes and a *ProtocolError (after skipping the bad packet) for malformed
// input. A greeting line "Asterisk Call Manager/..." at the very start of the
// stream comes out as a Message with Banner set. The same code serves
// sockets, transcripts and fuzzing.
type Parser struct {
	lim     Limits
	buf     []byte
	off     int
	started bool
	// skipping: discarding a bad packet up to its blank line.
	skipping bool
}

// NewParser returns a parser with the given limits.
func NewParser(lim Limits) *Parser {
	return &Parser{lim: lim.withDefaults()}
}

// Write appends stream bytes. It fails only when the unparsed backlog would
// exceed twice MaxMessage (the caller is not calling Next).
func (p *Parser) Write(b []byte) (int, error) {
	if len(p.buf)-p.off+len(b) > 2*p.lim.MaxMessage+p.lim.MaxLine && !p.skipping {
		return 0, ErrBufferFull
	}
	if p.off > 0 && p.off >= len(p.buf)/2 {
		n := copy(p.buf, p.buf[p.off:])
		p.buf = p.buf[:n]
		p.off = 0
	}
	p.buf = append(p.buf, b...)
	return len(b), nil
}

// Buffered reports unparsed bytes.
func (p *Parser) Buffered() int { return len(p.buf) - p.off }

// Reset drops buffered bytes and expects a new stream (with a banner).
func (p *Parser) Reset() {
	p.buf, p.off, p.started, p.skipping = p.buf[:0], 0, false, false
}

func lineOf(b []byte) string {
	b = bytes.TrimRight(b, "\r\n")
	if len(b) > maxErrLine {
		b = b[:maxErrLine]
	}
	return string(b)
}

// Next returns the next packet.
func (p *Parser) Next() (Message, error) {
	if p.skipping && !p.skip() {
		return Message{}, io.ErrUnexpectedEOF
	}
	data := p.buf[p.off:]
	if !p.started {
		if len(data) < len(bannerPrefix) && bytes.HasPrefix([]byte(bannerPrefix), data) {
			return Message{}, io.ErrUnexpectedEOF
		}
		if bytes.HasPrefix(data, []byte(bannerPrefix)) {
			nl := bytes.IndexByte(data, '\n')
			if nl < 0 {
				if len(data) > p.lim.MaxLine {
					p.started = true
					return p.fail("banner line too long", data)
				}
				return Message{}, io.ErrUnexpectedEOF
			}
			p.started = true
			p.off += nl + 1
			return Message{Banner: string(bytes.TrimRight(data[:nl], "\r"))}, nil
		}
		p.started = true
	}
	// Skip blank lines between packets.
	start := 0
	for start < len(data) {
		if data[start] == '\n' {
			start++
		} else if data[start] == '\r' && start+1 < len(data) && data[start+1] == '\n' {
			start += 2
		} else if data[start] == '\r' && start+1 == len(data) {
			break
		} else {
			break
		}
	}
	p.off += start
	data = data[start:]
	if len(data) == 0 {
		return Message{}, io.ErrUnexpectedEOF
	}

	// Pass 1: find the end of the packet and validate lines.
	pos, nfields := 0, 0
	follows, inBody, bodyDone := false, false, false
	for {
		nl := bytes.IndexByte(data[pos:], '\n')
		if nl < 0 {
			if len(data)-pos > p.lim.MaxLine {
				return p.fail("line too long", data[pos:])
			}
			if len(data) > p.lim.MaxMessage {
				return p.fail("message too large", data[:pos])
			}
			return Message{}, io.ErrUnexpectedEOF
		}
		line := data[pos : pos+nl]
		if nl > p.lim.MaxLine {
			return p.fail("line too long", line)
		}
		pos += nl + 1
		if pos > p.lim.MaxMessage {
			return p.fail("message too large", line)
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if inBody {
			if bytes.HasSuffix(line, []byte(endCommand)) {
				inBody, bodyDone = false, true
			}
			continue
		}
		if len(line) == 0 {
			if follows && !bodyDone {
				// blank line inside command output
				inBody = true
				continue
			}
			break
		}
		colon := bytes.IndexByte(line, ':')
		if follows && (colon <= 0 || !isFollowsHeader(line[:colon])) {
			if bodyDone {
				return p.fail("text after --END COMMAND--", line)
			}
			inBody = !bytes.HasSuffix(line, []byte(endCommand))
			bodyDone = !inBody
			continue
		}
		if colon <= 0 {
			return p.fail("line without ':'", line)
		}
		nfields++
		if nfields > p.lim.MaxFields {
			return p.fail("too many fields", line)
		}
		if nfields == 1 && bytes.EqualFold(line[:colon], []byte("Response")) &&
			bytes.EqualFold(bytes.TrimLeft(line[colon+1:], " \t"), []byte("Follows")) {
			follows = true
		}
	}

	// Pass 2: one string for the whole packet, fields slice into it.
	s := string(data[:pos])
	p.off += pos
	m := Message{Fields: make([]Field, 0, nfields)}
	i := 0
	var body []string
	for i < len(s) {
		j := i
		for j < len(s) && s[j] != '\n' {
			j++
		}
		line := s[i:j]
		i = j + 1
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(m.Fields) == nfields {
			if follows && line != "" {
				body = append(body, line)
			}
			continue
		}
		if line == "" {
			continue
		}
		c := indexColon(line)
		if follows && len(m.Fields) > 0 && (c <= 0 || !isFollowsHeader([]byte(line[:c]))) {
			body = append(body, line)
			continue
		}
		v := line[c+1:]
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		m.Fields = append(m.Fields, Field{Key: line[:c], Value: v})
	}
	if follows {
		txt := ""
		for k, l := range body {
			if k > 0 {
				txt += "\n"
			}
			txt += l
		}
		if idx := len(txt) - len(endCommand); idx >= 0 && txt[idx:] == endCommand {
			txt = txt[:idx]
		}
		m.Body = txt
	}
	return m, nil
}

func indexColon(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}

// isFollowsHeader: the headers a legacy "Response: Follows" carries before its text.
func isFollowsHeader(k []byte) bool {
	return bytes.EqualFold(k, []byte("Privilege")) || bytes.EqualFold(k, []byte("ActionID")) ||
		bytes.EqualFold(k, []byte("Response"))
}

// fail switches to skipping the rest of the bad packet and reports it.
func (p *Parser) fail(reason string, line []byte) (Message, error) {
	err := &ProtocolError{Reason: reason, Line: lineOf(line)}
	p.skipping = true
	p.skip()
	return Message{}, err
}

// skip discards bytes up to and including the next blank line. It reports
// whether the end was found; otherwise it keeps the last 3 bytes.
func (p *Parser) skip() bool {
	data := p.buf[p.off:]
	for i := 0; i < len(data); i++ {
		if data[i] != '\n' {
			continue
		}
		rest := data[i+1:]
		if len(rest) > 0 && rest[0] == '\n' {
			p.off += i + 2
			p.skipping = false
			return true
		}
		if len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n' {
			p.off += i + 3
			p.skipping = false
			return true
		}
	}
	if keep := 3; len(data) > keep {
		p.off += len(data) - keep
	}
	return false
}

// Reader reads packets from an io.Reader through a Parser.
type Reader struct {
	r   io.Reader
	p   *Parser
	buf []byte
}

// NewReader wraps r.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{r: r, p: NewParser(lim), buf: make([]byte, 32<<10)}
}

// ReadMessage returns the next packet, a *ProtocolError for a skipped bad
// packet (keep reading), or the I/O error. A stream ending inside a packet
// gives io.ErrUnexpectedEOF.
func (r *Reader) ReadMessage() (Message, error) {
	for {
		m, err := r.p.Next()
		if err != io.ErrUnexpectedEOF {
			return m, err
		}
		n, rerr := r.r.Read(r.buf)
		if n > 0 {
			if _, err := r.p.Write(r.buf[:n]); err != nil {
				return Message{}, err
			}
		}
		if rerr != nil {
			if n > 0 {
				continue // parse what arrived before reporting the error
			}
			if rerr == io.EOF && r.p.Buffered() > 0 && !onlyBlank(r.p.buf[r.p.off:]) {
				return Message{}, io.ErrUnexpectedEOF
			}
			return Message{}, rerr
		}
	}
}

func onlyBlank(b []byte) bool {
	return len(bytes.Trim(b, "\r\n")) == 0
}
