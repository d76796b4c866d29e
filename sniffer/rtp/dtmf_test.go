package rtp

import (
	"errors"
	"testing"
	"time"

	"pbx-agent/sniffer/fixture"
)

func TestEventUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    Event
		digit   byte
		wantErr error
	}{
		{"digit 5 start", []byte{5, 10, 0, 160}, Event{Code: 5, Volume: 10, Duration: 160}, '5', nil},
		{"star end", []byte{10, 0x80 | 7, 3, 0}, Event{Code: 10, End: true, Volume: 7, Duration: 768}, '*', nil},
		{"hash", []byte{11, 0, 0, 0}, Event{Code: 11}, '#', nil},
		{"D", []byte{15, 0, 0, 0}, Event{Code: 15}, 'D', nil},
		{"flash is not a digit", []byte{16, 0, 0, 0}, Event{Code: 16}, 0, nil},
		{"short", []byte{1, 2, 3}, Event{}, 0, ErrShortEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			err := e.Unmarshal(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (e != tt.want || e.Digit() != tt.digit) {
				t.Errorf("event = %+v digit %q, want %+v %q", e, e.Digit(), tt.want, tt.digit)
			}
		})
	}
}

// dtmfFromCapture runs every RTP packet of payload type pt through one
// detector per SSRC.
func dtmfFromCapture(t *testing.T, path string, pt uint8) []Digit {
	t.Helper()
	dets := map[uint32]*DTMFDetector{}
	var out []Digit
	var h Header
	readUDP(t, path, func(p udpPacket) {
		if !LooksLikeRTP(p.payload) {
			return
		}
		n, err := h.Unmarshal(p.payload)
		if err != nil || h.PayloadType != pt {
			return
		}
		d := dets[h.SSRC]
		if d == nil {
			d = &DTMFDetector{}
			dets[h.SSRC] = d
		}
		if dg, ok := d.Feed(&h, h.Payload(p.payload, n), p.ts); ok {
			out = append(out, dg)
		}
	})
	return out
}

func TestDTMFCaptures(t *testing.T) {
	tests := []struct {
		name, file string
		pt         uint8
		want       string // digits, checked against tshark's distinct event timestamps
	}{
		{"SIP_DTMF2 (35 event packets)", "SIP_DTMF2.cap", 96, "6789123"},
		{"dtmf_2833_1 (10 packets, end retransmitted)", "dtmf_2833_1.pcap", 101, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dtmfFromCapture(t, fixture.Shared(t, "public", tt.file), tt.pt)
			s := ""
			for i, d := range got {
				s += string(d.Digit)
				if i > 0 && !d.Time.After(got[i-1].Time) {
					t.Errorf("digit %d time %v not after %v", i, d.Time, got[i-1].Time)
				}
			}
			if s != tt.want {
				t.Errorf("digits = %q, want %q", s, tt.want)
			}
		})
	}
}

func TestDTMFDetectorSameDigitTwice(t *testing.T) {
	var d DTMFDetector
	var h Header
	feed := func(ts uint32, payload []byte) (Digit, bool) {
		b := rtpPacket(101, 1, ts, 9, false, payload)
		n, _ := h.Unmarshal(b)
		return d.Feed(&h, h.Payload(b, n), t0)
	}
	var got []byte
	for _, p := range []struct {
		ts      uint32
		payload []byte
	}{
		{1000, []byte{5, 10, 0, 160}}, {1000, []byte{5, 10, 1, 64}}, {1000, []byte{5, 0x8a, 2, 0}}, {1000, []byte{5, 0x8a, 2, 0}},
		{3000, []byte{5, 10, 0, 160}}, {3000, []byte{5, 0x8a, 2, 0}},
	} {
		if dg, ok := feed(p.ts, p.payload); ok {
			got = append(got, dg.Digit)
		}
	}
	if string(got) != "55" {
		t.Errorf("digits = %q, want \"55\" (two events, one digit each)", got)
	}
}

func BenchmarkDTMFFeed(b *testing.B) {
	var d DTMFDetector
	var h Header
	pkt := rtpPacket(101, 1, 1000, 9, false, []byte{5, 10, 0, 160})
	n, _ := h.Unmarshal(pkt)
	b.ReportAllocs()
	at := time.Now()
	for b.Loop() {
		d.Feed(&h, pkt[n:], at)
	}
}
