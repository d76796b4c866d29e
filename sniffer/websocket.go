package sniffer

import (
	"bytes"
	"encoding/binary"

	"pbx-agent/sniffer/sip"
)

// SIP over WebSocket (RFC 7118) on a TCP flow: after the HTTP upgrade each
// text or binary frame carries one SIP message. Client frames are masked.

const maxWSBuffer = 1 << 16

// maxWSMessage caps a message reassembled from continuation frames (a SIP
// message is far smaller). A flow past it is dropped: its later bytes are
// ignored and the drop is counted.
const maxWSMessage = 1 << 16

type wsState uint8

const (
	wsNone      wsState = iota // plain SIP over TCP
	wsHandshake                // inside the HTTP upgrade request/response
	wsFrames                   // WebSocket frames
	wsDropped                  // over a limit: every later byte is ignored
)

// wsFlow is the WebSocket side of one TCP direction.
type wsFlow struct {
	state   wsState
	buf     []byte // unparsed bytes
	msg     []byte // payload of a fragmented message being assembled
	payload []byte // unmasked payload scratch
	scanned int    // bytes of buf searched for the handshake's end
}

// looksLikeHTTP tells an upgrade request/response from SIP at a flow's start.
func looksLikeHTTP(b []byte) bool {
	return bytes.HasPrefix(b, []byte("GET ")) || bytes.HasPrefix(b, []byte("HTTP/1."))
}

// sipUpgrade reports whether b starts an HTTP upgrade (request or 101
// response) to WebSocket with the "sip" subprotocol (RFC 7118 §4): how SIP
// over WebSocket is told apart from web traffic on ports not set as SIP.
func sipUpgrade(b []byte) bool {
	if !looksLikeHTTP(b) {
		return false
	}
	const name = "sec-websocket-protocol:"
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return false // end of the head
		}
		if len(line) > len(name) && bytes.EqualFold(line[:len(name)], []byte(name)) {
			for v := line[len(name):]; len(v) > 0; {
				proto := v
				if i := bytes.IndexByte(v, ','); i >= 0 {
					proto, v = v[:i], v[i+1:]
				} else {
					v = nil
				}
				if bytes.EqualFold(bytes.TrimSpace(proto), []byte("sip")) {
					return true
				}
			}
		}
	}
	return false
}

// startsSIP reports whether a TCP segment at the start of a flow (on a port
// not set as SIP) begins SIP: a start line, or a WebSocket upgrade to SIP.
func startsSIP(b []byte) bool { return sip.LooksLikeMessage(b) || sipUpgrade(b) }

// feed consumes TCP payload bytes and calls deliver for every complete SIP
// message carried in data frames. A malformed or oversized frame resets the
// flow's buffer (the next frame boundary is unknowable, so bytes are lost).
func (w *wsFlow) feed(data []byte, deliver func([]byte)) {
	if w.state == wsDropped {
		return
	}
	if len(w.buf)+len(data) > maxWSBuffer {
		w.buf, w.msg, w.scanned = w.buf[:0], w.msg[:0], 0
		return
	}
	w.buf = append(w.buf, data...)
	if w.state == wsHandshake {
		// Searched from where the last search stopped (a handshake in small
		// segments was searched again from its start after each).
		from := max(w.scanned-3, 0)
		i := bytes.Index(w.buf[from:], []byte("\r\n\r\n"))
		if i < 0 {
			w.scanned = len(w.buf)
			return
		}
		w.buf = w.buf[:copy(w.buf, w.buf[from+i+4:])]
		w.scanned = 0
		w.state = wsFrames
	}
	// The frames are taken at an offset, the rest moved down once (moving
	// it after each frame was quadratic in frames per segment: 64 KB of
	// 2-byte pings moved 1 GB).
	off := 0
	for {
		n, ok := w.frame(w.buf[off:], deliver)
		if !ok {
			break
		}
		off += n
	}
	if off > 0 && off <= len(w.buf) { // else frame reset buf (a frame over a limit)
		w.buf = w.buf[:copy(w.buf, w.buf[off:])]
	}
}

// frame parses one frame at the start of b (unparsed bytes of buf); ok is
// false when incomplete.
func (w *wsFlow) frame(b []byte, deliver func([]byte)) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	fin, op := b[0]&0x80 != 0, b[0]&0x0f
	masked := b[1]&0x80 != 0
	n, hdr := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, false
		}
		n, hdr = uint64(binary.BigEndian.Uint16(b[2:4])), 4
	case 127:
		if len(b) < 10 {
			return 0, false
		}
		n, hdr = binary.BigEndian.Uint64(b[2:10]), 10
	}
	var key []byte
	if masked {
		if len(b) < hdr+4 {
			return 0, false
		}
		key = b[hdr : hdr+4]
		hdr += 4
	}
	if n > maxWSBuffer {
		w.buf, w.msg = w.buf[:0], w.msg[:0]
		return 0, false
	}
	if uint64(len(b)-hdr) < n {
		return 0, false
	}
	w.payload = append(w.payload[:0], b[hdr:hdr+int(n)]...)
	for i := range w.payload {
		if masked {
			w.payload[i] ^= key[i&3]
		}
	}
	switch op {
	case 0x1, 0x2: // text, binary
		if fin {
			deliver(w.payload)
		} else {
			w.msg = append(w.msg[:0], w.payload...)
		}
	case 0x0: // continuation
		if len(w.msg)+len(w.payload) > maxWSMessage {
			w.drop()
			return 0, false
		}
		w.msg = append(w.msg, w.payload...)
		if fin {
			deliver(w.msg)
			w.msg = w.msg[:0]
		}
	}
	return hdr + int(n), true
}

// drop gives up on the flow: buffers are released and later bytes ignored.
func (w *wsFlow) drop() {
	w.state, w.buf, w.msg, w.payload = wsDropped, nil, nil, nil
}

// dropped reports whether the flow was given up.
func (w *wsFlow) dropped() bool { return w.state == wsDropped }
