package hep_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/hep"
)

// TestTCPIdleConnsEvicted: MaxConns connections opened and left silent no
// longer lock senders out: a new connection closes the one idle the
// longest, and its packets are read (it was closed at once, and so was
// every later one, for as long as the silent ones stayed open).
func TestTCPIdleConnsEvicted(t *testing.T) {
	var got collector
	l, err := hep.Listen(hep.ListenConfig{Addr: "127.0.0.1:0", TCP: true, MaxConns: 4, Handler: got.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer testkit.Run(t, l.Serve)()
	var idle []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", l.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
		time.Sleep(10 * time.Millisecond) // accepted in this order
	}
	for deadline := time.Now().Add(5 * time.Second); l.Stats().TCPConns < 4; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the silent connections were not accepted")
		}
	}
	b, err := hep.AppendMarshal(nil, &hep.Packet{Src: netip.MustParseAddrPort("10.0.0.1:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5060"),
		IPProto: hep.IPProtoUDP, ProtoType: hep.ProtoSIP, Payload: []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := net.Dial("tcp", l.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	if _, err := sender.Write(b); err != nil {
		t.Fatal(err)
	}
	if pkts := got.wait(t, 1); len(pkts) != 1 {
		t.Fatalf("%d packets from the new sender, want 1", len(pkts))
	}
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil {
		t.Error("the connection idle the longest is still open")
	}
	if st := l.Stats(); st.TCPEvicted != 1 {
		t.Errorf("TCPEvicted = %d, want 1", st.TCPEvicted)
	}
}
