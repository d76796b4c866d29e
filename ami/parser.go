package ami

import (
	"bytes"
	"io"
	"strings"

	"pbx-agent/internal/eol"
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
	// scan is how far frame got through the packet at scanOff when it
	// last needed more bytes (scanned: it did): a packet coming a few
	// bytes at a time is read once, not again from its start at every
	// write (a 232 KB packet a byte at a time cost 0.6 s of CPU).
	scan    frameScan
	scanOff int
	scanned bool
}

// frameScan is frame's progress through a packet.
type frameScan struct {
	end, nfields              int
	follows, inBody, bodyDone bool
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
		p.scanOff -= p.off
		p.off = 0
	}
	p.buf = append(p.buf, b...)
	return len(b), nil
}

// Buffered reports unparsed bytes.
func (p *Parser) Buffered() int { return len(p.buf) - p.off }

// Reset drops buffered bytes and expects a new stream (with a banner).
func (p *Parser) Reset() {
	p.buf, p.off, p.started, p.skipping, p.scanned = p.buf[:0], 0, false, false, false
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
	if !p.started {
		if m, err := p.banner(); err != nil || m.Banner != "" {
			return m, err
		}
	}
	p.off += eol.EmptyLines(p.buf[p.off:]) // between packets
	data := p.buf[p.off:]
	if len(data) == 0 {
		return Message{}, io.ErrUnexpectedEOF
	}
	var st frameScan
	if p.scanned && p.scanOff == p.off {
		st = p.scan
	}
	p.scanned = false
	end, nfields, follows, err := p.frame(data, &st)
	if err == io.ErrUnexpectedEOF {
		p.scan, p.scanOff, p.scanned = st, p.off, true
	}
	if err != nil {
		return Message{}, err
	}
	s := string(data[:end])
	p.off += end
	return packet(s, nfields, follows), nil
}

// banner takes the greeting line "Asterisk Call Manager/..." that may open
// the stream. It returns a Message with Banner set, an error, or (when the
// stream starts with something else) a zero Message and nil.
func (p *Parser) banner() (Message, error) {
	data := p.buf[p.off:]
	if len(data) < len(bannerPrefix) && bytes.HasPrefix([]byte(bannerPrefix), data) {
		return Message{}, io.ErrUnexpectedEOF
	}
	if !bytes.HasPrefix(data, []byte(bannerPrefix)) {
		p.started = true
		return Message{}, nil
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		if len(data) > p.lim.MaxLine {
			p.started = true
			return Message{}, p.fail("banner line too long", data)
		}
		return Message{}, io.ErrUnexpectedEOF
	}
	p.started = true
	p.off += nl + 1
	return Message{Banner: string(bytes.TrimRight(data[:nl], "\r"))}, nil
}

// frame finds the end of the packet at the start of data (the byte after its
// blank line) and checks its lines against the limits, without copying
// anything. It counts the header fields and reports whether the packet is a
// legacy "Response: Follows" whose command output runs up to
// "--END COMMAND--" and may hold blank lines. A packet that is not complete
// yet gives io.ErrUnexpectedEOF, leaving in st how far it got (the lines
// checked so far), where the next call on the same packet starts; a bad one
// is skipped (see fail).
func (p *Parser) frame(data []byte, st *frameScan) (end, nfields int, follows bool, err error) {
	end, nfields, follows = st.end, st.nfields, st.follows
	inBody, bodyDone := st.inBody, st.bodyDone
	for {
		nl := bytes.IndexByte(data[end:], '\n')
		if nl < 0 {
			if len(data)-end > p.lim.MaxLine {
				return 0, 0, false, p.fail("line too long", data[end:])
			}
			if len(data) > p.lim.MaxMessage {
				return 0, 0, false, p.fail("message too large", data[:end])
			}
			*st = frameScan{end: end, nfields: nfields, follows: follows, inBody: inBody, bodyDone: bodyDone}
			return 0, 0, false, io.ErrUnexpectedEOF
		}
		line := data[end : end+nl]
		if nl > p.lim.MaxLine {
			return 0, 0, false, p.fail("line too long", line)
		}
		end += nl + 1
		if end > p.lim.MaxMessage {
			return 0, 0, false, p.fail("message too large", line)
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
			return end, nfields, follows, nil
		}
		colon := bytes.IndexByte(line, ':')
		if follows && (colon <= 0 || !isFollowsHeader(line[:colon])) {
			if bodyDone {
				return 0, 0, false, p.fail("text after --END COMMAND--", line)
			}
			inBody = !bytes.HasSuffix(line, []byte(endCommand))
			bodyDone = !inBody
			continue
		}
		if colon <= 0 {
			return 0, 0, false, p.fail("line without ':'", line)
		}
		nfields++
		if nfields > p.lim.MaxFields {
			return 0, 0, false, p.fail("too many fields", line)
		}
		if nfields == 1 && bytes.EqualFold(line[:colon], []byte("Response")) &&
			bytes.EqualFold(bytes.TrimLeft(line[colon+1:], " \t"), []byte("Follows")) {
			follows = true
		}
	}
}

// packet parses a framed packet s (checked by frame, which counted nfields
// header fields) into a Message. Fields slice into s: one string holds the
// whole packet. The text lines of a "Response: Follows" go to Body.
func packet(s string, nfields int, follows bool) Message {
	m := Message{Fields: make([]Field, 0, nfields)}
	var body []string
	for i := 0; i < len(s); {
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
		m.Body = commandOutput(body)
	}
	return m
}

// commandOutput joins the text lines of a "Response: Follows" without the
// closing "--END COMMAND--".
func commandOutput(lines []string) string {
	return strings.TrimSuffix(strings.Join(lines, "\n"), endCommand)
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
func (p *Parser) fail(reason string, line []byte) error {
	err := &ProtocolError{Reason: reason, Line: lineOf(line)}
	p.skipping = true
	p.skip()
	return err
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
