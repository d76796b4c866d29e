package rtp

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Event is an RFC 4733 telephone-event payload (§2.3).
type Event struct {
	Code     uint8 // 0-9, 10 '*', 11 '#', 12-15 'A'-'D', 16 flash
	End      bool
	Volume   uint8  // -dBm0, 0..63
	Duration uint16 // RTP timestamp units
}

// Unmarshal parses a telephone-event payload (the first 4 bytes; RFC 4733
// allows several events per packet for redundancy, only the first is used).
func (e *Event) Unmarshal(payload []byte) error {
	if len(payload) < 4 {
		return fmt.Errorf("%w: %d < 4", ErrShortEvent, len(payload))
	}
	e.Code = payload[0]
	e.End = payload[1]&0x80 != 0
	e.Volume = payload[1] & 0x3f
	e.Duration = binary.BigEndian.Uint16(payload[2:])
	return nil
}

// Digit returns the DTMF character of the event, or 0 for non-DTMF events.
func (e *Event) Digit() byte {
	switch {
	case e.Code <= 9:
		return '0' + e.Code
	case e.Code == 10:
		return '*'
	case e.Code == 11:
		return '#'
	case e.Code <= 15:
		return 'A' + e.Code - 12
	}
	return 0
}

// Digit is one DTMF key press seen on the wire.
type Digit struct {
	Digit byte      // '0'-'9', '*', '#', 'A'-'D'
	Time  time.Time // arrival of the event's first packet
	SSRC  uint32
}

// DTMFDetector turns a stream of telephone-event packets into one Digit per
// event: an event is identified by its RTP timestamp (all packets of one
// event, including the retransmitted end packets, share it; RFC 4733 §2.5.1).
// The zero value is ready to use; one detector per stream.
type DTMFDetector struct {
	started bool
	lastTS  uint32
	lastSSR uint32
}

// Feed examines one telephone-event packet and returns the digit when the
// packet starts a new event. Non-DTMF events (flash, tones) and malformed
// payloads give ok = false.
func (d *DTMFDetector) Feed(hdr *Header, payload []byte, arrival time.Time) (Digit, bool) {
	var ev Event
	if err := ev.Unmarshal(payload); err != nil {
		return Digit{}, false
	}
	if d.started && hdr.Timestamp == d.lastTS && hdr.SSRC == d.lastSSR {
		return Digit{}, false // same event: continuation or end retransmission
	}
	d.started, d.lastTS, d.lastSSR = true, hdr.Timestamp, hdr.SSRC
	c := ev.Digit()
	if c == 0 {
		return Digit{}, false
	}
	return Digit{Digit: c, Time: arrival, SSRC: hdr.SSRC}, true
}
