// Package sdp parses the parts of an SDP body (RFC 4566) that a call
// tracker needs: connection addresses, media ports and payload types,
// rtpmap, ptime, direction and RTCP port. Parse fills a caller-owned
// Session without allocating; []byte fields alias the input.
package sdp

import (
	"bytes"
	"fmt"
	"net/netip"
)

// Limits of the fixed-size arrays; extra entries are counted, not stored.
const (
	MaxMedia    = 8
	MaxPayloads = 32
	MaxRTPMap   = 16
)

// Direction is the media direction attribute (RFC 4566 section 6).
type Direction uint8

// Directions; SendRecv is the default.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

func (d Direction) String() string {
	switch d {
	case SendRecv:
		return "sendrecv"
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Origin is the o= line.
type Origin struct {
	Username, SessID, SessVersion []byte
	Addr                          netip.Addr // invalid when not an IP literal
}

// Session is a parsed description. Reuse it: Parse resets it.
type Session struct {
	Origin    Origin
	Name      []byte     // s=
	Conn      netip.Addr // session-level c= (invalid when absent or FQDN)
	Direction Direction  // session-level direction attribute
	Media     [MaxMedia]Media
	NMedia    int
	// MediaDropped counts m= lines beyond MaxMedia.
	MediaDropped int
}

// Media is one m= section.
type Media struct {
	Type      []byte // audio, video, image, application...
	Port      uint16
	NPorts    int // 1 unless m=<type> <port>/<n>
	Proto     []byte
	Conn      netip.Addr // media-level c=, else the session's
	Payloads  [MaxPayloads]uint8
	NPayloads int
	RTPMap    [MaxRTPMap]RTPMap
	NRTPMap   int
	Ptime     int // ms, 0 when absent
	Direction Direction
	RTCPPort  uint16 // a=rtcp port, 0 when absent (then Port+1 by convention)
	RTCPAddr  netip.Addr
	RTCPMux   bool

	dirSet, connSet bool
}

// IsFax reports whether m is T.38 fax (m=image over UDPTL, RFC 3362 / ITU-T
// T.38 Annex D): its packets are UDPTL, not RTP.
func IsFax(m *Media) bool {
	return bytes.EqualFold(m.Type, []byte("image")) ||
		bytes.Contains(bytes.ToLower(m.Proto), []byte("udptl"))
}

// RTPMap is an a=rtpmap attribute.
type RTPMap struct {
	PT        uint8
	Encoding  []byte
	ClockRate int
	Channels  int // 0 when not given
}

// Audio reports whether the media is m=audio.
func (m *Media) Audio() bool { return bytes.Equal(m.Type, []byte("audio")) }

// Parse parses b into s (reset first). The first line must be v=0. Lines
// that are not "<letter>=<value>" are errors; unknown lines and attributes
// are ignored. A c= address that is not an IP literal is left invalid.
func Parse(b []byte, s *Session) error {
	s.Origin = Origin{}
	s.Name, s.Conn, s.Direction, s.NMedia, s.MediaDropped = nil, netip.Addr{}, SendRecv, 0, 0
	var cur *Media // nil at session level or for dropped media
	inMedia := false
	first := true
	lineNo := 0
	for len(b) > 0 {
		var line []byte
		if k := bytes.IndexByte(b, '\n'); k >= 0 {
			line, b = b[:k], b[k+1:]
		} else {
			line, b = b, nil
		}
		lineNo++
		line = bytes.TrimRight(line, " \t\r")
		if len(line) == 0 {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return fmt.Errorf("%w: line %d: %.40q", ErrLine, lineNo, line)
		}
		typ, v := line[0], line[2:]
		if first {
			if typ != 'v' || !bytes.Equal(v, []byte("0")) {
				return fmt.Errorf("%w: line %d: %.40q", ErrVersion, lineNo, line)
			}
			first = false
			continue
		}
		var err error
		switch typ {
		case 'o':
			if !inMedia {
				err = parseOrigin(v, &s.Origin)
			}
		case 's':
			if !inMedia {
				s.Name = v
			}
		case 'c':
			var a netip.Addr
			if a, err = parseConn(v); err == nil {
				if !inMedia {
					s.Conn = a
				} else if cur != nil {
					cur.Conn, cur.connSet = a, true
				}
			}
		case 'm':
			inMedia = true
			if s.NMedia == MaxMedia {
				s.MediaDropped++
				cur = nil
				continue
			}
			cur = &s.Media[s.NMedia]
			if err = parseMedia(v, cur); err == nil {
				s.NMedia++
			}
		case 'a':
			if !inMedia {
				if d, ok := direction(v); ok {
					s.Direction = d
				}
			} else if cur != nil {
				err = parseAttr(v, cur)
			}
		}
		if err != nil {
			return fmt.Errorf("%w: line %d: %.60q", err, lineNo, line)
		}
	}
	if first {
		return ErrEmpty
	}
	for i := 0; i < s.NMedia; i++ {
		m := &s.Media[i]
		if !m.connSet {
			m.Conn = s.Conn
		}
		if !m.dirSet {
			m.Direction = s.Direction
		}
	}
	return nil
}

// field returns the first space-separated field of v and the rest.
func field(v []byte) (f, rest []byte) {
	for len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	if k := bytes.IndexByte(v, ' '); k >= 0 {
		return v[:k], v[k+1:]
	}
	return v, nil
}

func atoi(b []byte, max int) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > max {
			return 0, false
		}
	}
	return n, true
}

// parseOrigin: o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>
func parseOrigin(v []byte, o *Origin) error {
	var nt, at, addr []byte
	o.Username, v = field(v)
	o.SessID, v = field(v)
	o.SessVersion, v = field(v)
	nt, v = field(v)
	at, v = field(v)
	addr, _ = field(v)
	if len(nt) == 0 || len(at) == 0 || len(addr) == 0 {
		return ErrOrigin
	}
	o.Addr, _ = parseAddr(addr)
	return nil
}

// parseConn: c=<nettype> <addrtype> <address>[/<ttl>][/<n>]
func parseConn(v []byte) (netip.Addr, error) {
	nt, v := field(v)
	at, v := field(v)
	addr, _ := field(v)
	if len(nt) == 0 || len(at) == 0 || len(addr) == 0 {
		return netip.Addr{}, ErrConn
	}
	if k := bytes.IndexByte(addr, '/'); k >= 0 {
		addr = addr[:k]
	}
	a, _ := parseAddr(addr) // FQDN: left invalid
	return a, nil
}

// parseMedia: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
func parseMedia(v []byte, m *Media) error {
	*m = Media{NPorts: 1}
	var port, f []byte
	m.Type, v = field(v)
	port, v = field(v)
	m.Proto, v = field(v)
	if len(m.Type) == 0 || len(m.Proto) == 0 {
		return ErrMedia
	}
	if k := bytes.IndexByte(port, '/'); k >= 0 {
		n, ok := atoi(port[k+1:], 65535)
		if !ok {
			return ErrMedia
		}
		m.NPorts, port = n, port[:k]
	}
	p, ok := atoi(port, 65535)
	if !ok {
		return ErrMedia
	}
	m.Port = uint16(p)
	for len(v) > 0 {
		f, v = field(v)
		pt, ok := atoi(f, 127)
		if !ok { // non-RTP formats (t38, *, ...) are not payload types
			continue
		}
		if m.NPayloads < MaxPayloads {
			m.Payloads[m.NPayloads] = uint8(pt)
			m.NPayloads++
		}
	}
	return nil
}

// direction matches case-insensitively: attribute names are case-sensitive
// in RFC 4566, but some gateways send "a=SendRecv".
func direction(v []byte) (Direction, bool) {
	for d := SendRecv; d <= Inactive; d++ {
		if equalFold(v, d.String()) {
			return d, true
		}
	}
	return 0, false
}

// parseAttr handles media-level attributes. Malformed values of the
// attributes it knows are ignored rather than failing the whole body,
// except rtpmap (a call table needs codecs right or not at all).
func parseAttr(v []byte, m *Media) error {
	if d, ok := direction(v); ok {
		m.Direction, m.dirSet = d, true
		return nil
	}
	name, val := v, []byte(nil)
	if k := bytes.IndexByte(v, ':'); k >= 0 {
		name, val = v[:k], v[k+1:]
	}
	switch string(name) {
	case "rtpmap":
		return parseRTPMap(val, m)
	case "ptime":
		if k := bytes.IndexByte(val, '.'); k >= 0 {
			val = val[:k]
		}
		if n, ok := atoi(bytes.TrimSpace(val), 10000); ok {
			m.Ptime = n
		}
	case "rtcp":
		port, rest := field(val)
		if n, ok := atoi(port, 65535); ok {
			m.RTCPPort = uint16(n)
			if len(rest) > 0 {
				if a, err := parseConn(rest); err == nil {
					m.RTCPAddr = a
				}
			}
		}
	case "rtcp-mux":
		m.RTCPMux = true
	}
	return nil
}

// parseRTPMap: a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]
func parseRTPMap(v []byte, m *Media) error {
	pt, v := field(v)
	n, ok := atoi(pt, 127)
	if !ok {
		return ErrLine
	}
	enc := bytes.TrimSpace(v)
	k := bytes.IndexByte(enc, '/')
	if k <= 0 {
		return ErrLine
	}
	r := RTPMap{PT: uint8(n), Encoding: enc[:k]}
	rate := enc[k+1:]
	if k := bytes.IndexByte(rate, '/'); k >= 0 {
		r.Channels, _ = atoi(rate[k+1:], 255)
		rate = rate[:k]
	}
	if r.ClockRate, ok = atoi(rate, 10_000_000); !ok {
		return ErrLine
	}
	if m.NRTPMap < MaxRTPMap {
		m.RTPMap[m.NRTPMap] = r
		m.NRTPMap++
	}
	return nil
}
