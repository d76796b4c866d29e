package hep_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/hep"
	"pbx-agent/sniffer/hep/heptest"
)

// collector is a Handler keeping copies.
type collector struct {
	mu   sync.Mutex
	pkts [][]byte
}

func (c *collector) handle(b []byte, _ time.Time) {
	c.mu.Lock()
	c.pkts = append(c.pkts, bytes.Clone(b))
	c.mu.Unlock()
}

func (c *collector) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		got := len(c.pkts)
		c.mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pkts
}

func listen(t *testing.T, c *collector) *hep.Listener {
	t.Helper()
	l, err := hep.Listen(hep.ListenConfig{Addr: "127.0.0.1:0", UDP: true, TCP: true, Handler: c.handle})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, l.Serve)
	return l
}

// TestListener: Asterisk's datagrams over UDP, and the same packets as one
// HEP3 TCP stream written in odd-sized pieces, all arrive whole; a stream
// that is not HEP3 is closed and counted.
func TestListener(t *testing.T) {
	ds := asteriskHEP(t)
	var udpC, tcpC collector
	lu, lt := listen(t, &udpC), listen(t, &tcpC)
	uc, err := net.Dial("udp", lu.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	var stream []byte
	for _, d := range ds {
		if _, err := uc.Write(d.Payload); err != nil {
			t.Fatal(err)
		}
		stream = append(stream, d.Payload...)
		time.Sleep(time.Millisecond) // loopback UDP: no burst over the socket buffer
	}
	tc, err := net.Dial("tcp", lt.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for len(stream) > 0 {
		n := min(len(stream), 333)
		if _, err := tc.Write(stream[:n]); err != nil {
			t.Fatal(err)
		}
		stream = stream[n:]
	}
	tc.Close()
	for name, got := range map[string][][]byte{"udp": udpC.wait(t, len(ds)), "tcp": tcpC.wait(t, len(ds))} {
		if len(got) != len(ds) {
			t.Fatalf("%s: %d packets, want %d", name, len(got), len(ds))
		}
		for i := range ds {
			if !bytes.Equal(got[i], ds[i].Payload) {
				t.Errorf("%s: packet %d differs", name, i)
			}
		}
	}
	bad, err := net.Dial("tcp", lt.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = bad.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _ := bad.Read(make([]byte, 1)); n != 0 {
		t.Error("non-HEP stream got an answer")
	}
	bad.Close()
	if st := lt.Stats(); st.FramingError != 1 || st.TCPFrames != uint64(len(ds)) {
		t.Errorf("TCP stats %+v", st)
	}
	reg := prometheus.NewRegistry()
	if err := lt.Register(reg); err != nil {
		t.Fatal(err)
	}
}

// TestSenderRoundTrip: what the sender emits over UDP and TCP passes the
// HEP3 chunk check and decodes back to the same message and addresses,
// with the configured capture id, password and node name.
func TestSenderRoundTrip(t *testing.T) {
	ds := asteriskHEP(t)
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			var c collector
			l := listen(t, &c)
			addr := l.UDPAddr().String()
			if network == "tcp" {
				addr = l.TCPAddr().String()
			}
			s, err := hep.NewSender(hep.SenderConfig{Addr: addr, Network: network, CaptureID: 77, Password: "pw", NodeName: "agent-a"})
			if err != nil {
				t.Fatal(err)
			}
			defer testkit.Run(t, s.Run)()
			var in, out hep.Packet
			for _, d := range ds {
				if err := in.Unmarshal(d.Payload); err != nil {
					t.Fatal(err)
				}
				if !s.Send(&in) {
					t.Fatal("Send dropped with an empty queue")
				}
				time.Sleep(time.Millisecond)
			}
			got := c.wait(t, len(ds))
			if len(got) != len(ds) {
				t.Fatalf("%d packets arrived, want %d (stats %+v)", len(got), len(ds), s.Stats())
			}
			for i, b := range got {
				if err := heptest.Check(b); err != nil {
					t.Errorf("packet %d: %v", i, err)
				}
				_ = in.Unmarshal(ds[i].Payload)
				if err := out.Unmarshal(b); err != nil {
					t.Fatal(err)
				}
				if out.CaptureID != 77 || string(out.AuthKey) != "pw" || string(out.NodeName) != "agent-a" || out.Src != in.Src ||
					out.Dst != in.Dst || out.IPProto != in.IPProto || out.TimeSec != in.TimeSec || out.TimeUsec != in.TimeUsec ||
					!bytes.Equal(out.Payload, in.Payload) || !bytes.Equal(out.CorrelationID, in.CorrelationID) {
					t.Errorf("packet %d: sent %+v, got %+v", i, in, out)
				}
			}
			if st := s.Stats(); st.Sent != uint64(len(ds)) || st.Dropped != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestSenderStoppedBeforeRun: a sender whose context ends before it ran
// (a replay that finished in milliseconds, its goroutine not scheduled
// yet) sends everything queued. The dial took the ended context, failed,
// and the packets Run took before it chose to flush were lost (the daemon
// lost 2-3 of its first SIP messages now and then on a loaded machine).
func TestSenderStoppedBeforeRun(t *testing.T) {
	ds := asteriskHEP(t)
	for round := range 20 { // each lost packet was a coin toss between ctx.Done and the queue
		var c collector
		l := listen(t, &c)
		s, err := hep.NewSender(hep.SenderConfig{Addr: l.TCPAddr().String(), Network: "tcp"})
		if err != nil {
			t.Fatal(err)
		}
		var in hep.Packet
		for _, d := range ds {
			if err := in.Unmarshal(d.Payload); err != nil {
				t.Fatal(err)
			}
			s.Send(&in)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		if got := c.wait(t, len(ds)); len(got) != len(ds) {
			t.Fatalf("round %d: %d of %d packets arrived (stats %+v)", round, len(got), len(ds), s.Stats())
		}
	}
}

// TestSenderQueueFull: with the queue full, Send drops at once and counts.
func TestSenderQueueFull(t *testing.T) {
	s, err := hep.NewSender(hep.SenderConfig{Addr: "127.0.0.1:9", Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := hep.Packet{Src: netip.MustParseAddrPort("10.0.0.1:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5060"), Payload: []byte("x")}
	ok := 0
	for range 5 {
		if s.Send(&p) {
			ok++
		}
	}
	if st := s.Stats(); ok != 2 || st.Dropped != 3 || st.Queued != 2 || st.QueueLen != 2 {
		t.Errorf("accepted %d, stats %+v: want 2 queued, 3 dropped", ok, st)
	}
	if _, err := hep.NewSender(hep.SenderConfig{Addr: "x:1", Network: "sctp"}); err == nil {
		t.Error("sctp accepted")
	}
	if _, err := hep.NewSender(hep.SenderConfig{}); err == nil {
		t.Error("no destination accepted")
	}
}

// BenchmarkSend: the packet path's cost of HEP output (encode into a
// pooled buffer, queue); the queue is drained by a goroutine as Run does.
func BenchmarkSend(b *testing.B) {
	var p hep.Packet
	if err := p.Unmarshal(asteriskHEP(b)[12].Payload); err != nil {
		b.Fatal(err)
	}
	s, err := hep.NewSender(hep.SenderConfig{Addr: "127.0.0.1:9", Queue: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Send(&p)
		if s.Stats().QueueLen > 1<<15 {
			b.StopTimer()
			s.Drain()
			b.StartTimer()
		}
	}
}
