package sniffer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/sniffer/decode"
)

func wsFrame(op byte, fin bool, mask []byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	m := byte(0)
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		f = append(f, m|byte(n))
	case n < 1<<16:
		f = append(f, m|126, 0, 0)
		binary.BigEndian.PutUint16(f[2:], uint16(n))
	}
	if mask != nil {
		f = append(f, mask...)
		for i, c := range payload {
			f = append(f, c^mask[i&3])
		}
		return f
	}
	return append(f, payload...)
}

func TestWebSocketFrames(t *testing.T) {
	sipMsg := []byte("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: ws1\r\nContent-Length: 0\r\n\r\n")
	long := bytes.Repeat([]byte("x"), 300)
	handshake := []byte("GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: sip\r\n\r\n")
	mask := []byte{1, 2, 3, 4}
	tests := []struct {
		name   string
		chunks [][]byte
		want   [][]byte
	}{
		{"handshake then masked frame", [][]byte{append(append([]byte(nil), handshake...), wsFrame(1, true, mask, sipMsg)...)}, [][]byte{sipMsg}},
		{"split everywhere", func() [][]byte {
			all := append(append([]byte(nil), handshake...), wsFrame(1, true, nil, sipMsg)...)
			var out [][]byte
			for _, c := range all {
				out = append(out, []byte{c})
			}
			return out
		}(), [][]byte{sipMsg}},
		{"16-bit length and two frames", [][]byte{handshake, append(wsFrame(2, true, mask, long), wsFrame(1, true, nil, sipMsg)...)}, [][]byte{long, sipMsg}},
		{"fragmented message", [][]byte{handshake, wsFrame(1, false, mask, sipMsg[:10]), wsFrame(0, true, mask, sipMsg[10:])}, [][]byte{sipMsg}},
		{"control frames skipped", [][]byte{handshake, wsFrame(9, true, nil, []byte("ping")), wsFrame(1, true, nil, sipMsg)}, [][]byte{sipMsg}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := wsFlow{state: wsHandshake}
			var got [][]byte
			for _, c := range tt.chunks {
				w.feed(c, func(m []byte) { got = append(got, append([]byte(nil), m...)) })
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d messages, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("message %d = %q", i, got[i])
				}
			}
		})
	}
}

// TestTCPFlowLimit: past the flow limit the longest-idle flow makes room,
// so a flood of stale connections cannot lock out a new one.
func TestTCPFlowLimit(t *testing.T) {
	tf := newTCPFlows()
	var discarded uint64
	base := time.Unix(1000, 0)
	pkt := flowPacket
	for i := range maxTCPFlows + 10 {
		tf.handle(pkt(i, base.Add(time.Duration(i)*time.Millisecond)), func(*decode.Packet, []byte, time.Time) {}, &discarded)
	}
	if len(tf.flows) != maxTCPFlows || tf.evicted != 10 {
		t.Fatalf("%d flows, %d evicted; want %d and 10", len(tf.flows), tf.evicted, maxTCPFlows)
	}
	if _, ok := tf.flows[flowKey{pkt(0, base).Src, pkt(0, base).Dst}]; ok {
		t.Error("the oldest flow was kept")
	}
	if _, ok := tf.flows[flowKey{pkt(maxTCPFlows+9, base).Src, pkt(0, base).Dst}]; !ok {
		t.Error("the newest flow was not admitted")
	}
}

func TestSIPUpgrade(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: sip\r\n\r\n", true},
		{"HTTP/1.1 101 Switching Protocols\r\nsec-websocket-protocol: chat, SIP\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nSec-WebSocket-Protocol: chat\r\n\r\nSec-WebSocket-Protocol: sip\r\n", false},
		{"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nSec-WebSocket-Protocol: sip\r\n\r\n", false},
	}
	for _, tt := range tests {
		if got := sipUpgrade([]byte(tt.in)); got != tt.want {
			t.Errorf("sipUpgrade(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestWebSocketContinuationCap pins issue 17 item 2: continuation frames of
// one message are reassembled up to maxWSMessage; past it the flow is
// dropped (later bytes ignored) and counted once, instead of the message
// growing with every frame.
func TestWebSocketContinuationCap(t *testing.T) {
	tf := newTCPFlows()
	var discarded uint64
	src, dst := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.9.9.9:5060")
	seq := uint32(1)
	send := func(b []byte) {
		tf.handle(&decode.Packet{Time: time.Unix(1000, 0), Transport: decode.TCP, TCPSeq: seq, Src: src, Dst: dst, Payload: b},
			func(*decode.Packet, []byte, time.Time) { t.Error("a message was delivered") }, &discarded)
		seq += uint32(len(b))
	}
	send([]byte("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"))
	chunk := bytes.Repeat([]byte("x"), 60000)
	send(wsFrame(1, false, nil, chunk[:100]))
	for range 200 { // 12 MB of continuation frames, never FIN
		for _, part := range [][]byte{wsFrame(0, false, nil, chunk[:30000]), wsFrame(0, false, nil, chunk[:30000])} {
			send(part)
		}
	}
	f := tf.flows[flowKey{src, dst}]
	if f == nil {
		t.Fatal("flow not tracked")
	}
	if n := cap(f.ws.msg) + cap(f.ws.buf); n > 2*maxWSBuffer {
		t.Errorf("flow holds %d bytes after 12 MB of continuation frames; cap is %d", n, maxWSMessage)
	}
	if tf.wsDropped != 1 || !f.ws.dropped() {
		t.Errorf("wsDropped = %d, dropped = %v; want 1, true", tf.wsDropped, f.ws.dropped())
	}
}

// TestTCPFlowRecency pins issue 17 item 3: the flow table keeps a recency
// list (newest at the head), so making room evicts the least recently seen
// flow in O(1) instead of scanning every flow; the list always holds exactly
// the tracked flows, oldest last. BenchmarkTCPFlowChurn shows the cost per
// new flow with a full table equals the cost with a nearly empty one.
func TestTCPFlowRecency(t *testing.T) {
	tf := newTCPFlows()
	var discarded uint64
	base := time.Unix(1000, 0)
	pkt := flowPacket
	nop := func(*decode.Packet, []byte, time.Time) {}
	at := base
	for i := range maxTCPFlows {
		at = at.Add(time.Millisecond)
		tf.handle(pkt(i, at), nop, &discarded)
	}
	at = at.Add(time.Millisecond)
	tf.handle(pkt(0, at), nop, &discarded) // flow 0 seen again: now flow 1 is the oldest
	at = at.Add(time.Millisecond)
	tf.handle(pkt(maxTCPFlows, at), nop, &discarded)
	if _, ok := tf.flows[flowKey{pkt(0, base).Src, pkt(0, base).Dst}]; !ok {
		t.Error("flow 0, seen recently, was evicted")
	}
	if _, ok := tf.flows[flowKey{pkt(1, base).Src, pkt(1, base).Dst}]; ok {
		t.Error("flow 1, the least recently seen, was kept")
	}
	n, prev := 0, time.Time{}
	for f := tf.lru.newer; f != &tf.lru; f = f.newer {
		if f.last.Before(prev) {
			t.Fatalf("recency list out of order at %v", f.key)
		}
		if tf.flows[f.key] != f {
			t.Fatalf("recency list holds an untracked flow %v", f.key)
		}
		prev, n = f.last, n+1
	}
	if n != len(tf.flows) {
		t.Errorf("recency list has %d flows, table %d", n, len(tf.flows))
	}
	tf.expire(at.Add(tcpFlowIdle - time.Millisecond*time.Duration(maxTCPFlows/2)))
	if len(tf.flows) == 0 || len(tf.flows) >= maxTCPFlows {
		t.Errorf("expire kept %d flows, want about half", len(tf.flows))
	}
}

// BenchmarkTCPFlowChurn: one-packet flows from ever new sources, with a
// table already full (every flow evicts one) and one nearly empty; the two
// ns/op are about equal (the old scan made the full case ~4,000 times
// dearer per flow).
func BenchmarkTCPFlowChurn(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := "empty"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			tf := newTCPFlows()
			var discarded uint64
			p := &decode.Packet{Time: time.Unix(1000, 0), Transport: decode.TCP, TCPSeq: 1,
				Dst: netip.MustParseAddrPort("10.9.9.9:5060"), Payload: []byte("INVITE sip:a@b SIP/2.0\r\n")}
			nop := func(*decode.Packet, []byte, time.Time) {}
			i := 0
			if full {
				for ; i < maxTCPFlows; i++ {
					p.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000)
					tf.handle(p, nop, &discarded)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				i++
				p.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000)
				tf.handle(p, nop, &discarded)
				if !full && len(tf.flows) > 64 {
					tf.evictOldest()
				}
			}
		})
	}
}

// flowPacket is a one-segment SIP/TCP packet from source number i.
// TestTCPMessageTime: a SIP message that spans TCP segments takes the time
// of the segment that carried its first byte (VoIPmonitor's
// TcpReassemblySip), over plain TCP and over a websocket; a message that
// begins in the segment completing another takes that segment's time.
func TestTCPMessageTime(t *testing.T) {
	msg := func(id string) []byte {
		return []byte("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: " + id + "\r\nContent-Length: 0\r\n\r\n")
	}
	one, two, three := msg("1"), msg("2"), msg("3")
	ws := func(m []byte) []byte { return wsFrame(1, true, []byte{1, 2, 3, 4}, m) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	handshake := []byte("GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: sip\r\n\r\n")
	for _, tc := range []struct {
		name     string
		segments [][]byte // sent 1 ms apart
		want     []int    // each message's time, in ms
	}{
		{"whole messages", [][]byte{one, two}, []int{0, 1}},
		{"one message in three segments", [][]byte{one[:10], one[10:30], one[30:]}, []int{0}},
		{"the completing segment begins the next", [][]byte{one[:10], cat(one[10:], two[:5]), cat(two[5:], three)}, []int{0, 1, 2}},
		{"websocket frame in two segments", [][]byte{handshake, ws(one)[:20], ws(one)[20:]}, []int{1}},
		{"websocket: the completing segment begins the next", [][]byte{handshake, ws(one)[:20], cat(ws(one)[20:], ws(two)[:3]), ws(two)[3:]},
			[]int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := newTCPFlows()
			var discarded uint64
			base := time.Unix(1000, 0)
			var got []int
			seq := uint32(1)
			for i, b := range tc.segments {
				p := &decode.Packet{Time: base.Add(time.Duration(i) * time.Millisecond), Transport: decode.TCP, TCPSeq: seq,
					Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("10.9.9.9:5060"), Payload: b}
				tf.handle(p, func(_ *decode.Packet, _ []byte, at time.Time) { got = append(got, int(at.Sub(base)/time.Millisecond)) }, &discarded)
				seq += uint32(len(b))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("message times %v ms, want %v", got, tc.want)
			}
		})
	}
}

func flowPacket(i int, at time.Time) *decode.Packet {
	return &decode.Packet{Time: at, Transport: decode.TCP, TCPSeq: 1,
		Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 40000), Dst: netip.MustParseAddrPort("10.9.9.9:5060"),
		Payload: []byte("INVITE sip:a@b SIP/2.0\r\n")}
}

// FuzzWebSocket feeds arbitrary bytes, split at an arbitrary point, to a
// websocket flow (after the handshake, and from its start): it must never
// panic, and what a flow holds stays within its caps.
func FuzzWebSocket(f *testing.F) {
	mask := []byte{1, 2, 3, 4}
	msg := []byte("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n")
	f.Add(append(append([]byte(nil), wsFrame(1, false, mask, msg[:10])...), wsFrame(0, true, mask, msg[10:])...), uint16(5), false)
	f.Add([]byte("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"), uint16(20), true)
	f.Add(bytes.Repeat(wsFrame(0, false, nil, bytes.Repeat([]byte("x"), 200)), 50), uint16(300), false)
	f.Fuzz(func(t *testing.T, data []byte, split uint16, handshake bool) {
		w := wsFlow{state: wsFrames}
		if handshake {
			w.state = wsHandshake
		}
		cut := int(split) % (len(data) + 1)
		for range 3 { // the same bytes again: continuation across feeds
			for _, part := range [][]byte{data[:cut], data[cut:]} {
				w.feed(part, func(m []byte) {
					if len(m) > maxWSMessage+maxWSBuffer {
						t.Fatalf("delivered %d bytes", len(m))
					}
				})
				if len(w.msg) > maxWSMessage || len(w.buf) > maxWSBuffer {
					t.Fatalf("flow holds msg %d, buf %d bytes", len(w.msg), len(w.buf))
				}
			}
		}
	})
}
