package decode

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/simulate"
)

// encapFrames returns the first frames of a generated call in the given
// shape (its INVITE first).
func encapFrames(t testing.TB, encap, transport string, n int) [][]byte {
	t.Helper()
	o := simulate.Options{Calls: 1, Duration: time.Second, Encap: encap, Transport: transport}
	if transport == simulate.TransportSCTP {
		o.MTU = 400 // the INVITE in fragments (B flag on the first chunk)
	}
	g, err := simulate.New(o)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(out) < n {
		data, _, err := g.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), data...))
	}
	return out
}

func TestDecodeTunnels(t *testing.T) {
	tests := []struct {
		encap     string
		transport string
		want      Encap
		wantVLAN  uint16
	}{
		{simulate.EncapGRE, "", EncapGRE, 0},
		{simulate.EncapGRETEB, "", EncapGRE, 0},
		{simulate.EncapERSPAN2, "", EncapGRE | EncapERSPAN, 0},
		{simulate.EncapERSPAN3, "", EncapGRE | EncapERSPAN, 0},
		{simulate.EncapVXLAN, "", EncapVXLAN, 0},
		{simulate.EncapMPLS, "", EncapMPLS, 0},
		{simulate.EncapQinQ, "", EncapQinQ, 42},
		{simulate.EncapERSPAN3, simulate.TransportSCTP, EncapGRE | EncapERSPAN, 0},
	}
	for _, tt := range tests {
		t.Run(tt.encap+"/"+tt.transport, func(t *testing.T) {
			frames := encapFrames(t, tt.encap, tt.transport, 1)
			d, _ := New(layers.LinkTypeEthernet)
			var p Packet
			ok, err := d.Decode(frames[0], time.Unix(1, 0), &p)
			if !ok || err != nil {
				t.Fatalf("Decode = %v, %v", ok, err)
			}
			wantTr := UDP
			if tt.transport == simulate.TransportSCTP {
				wantTr = SCTP
			}
			var c SCTPData
			payload := p.Payload
			if p.Transport == SCTP {
				if _, ok := NextSCTPData(p.Payload, &c); !ok || !c.Begin {
					t.Fatalf("no first DATA chunk in %x", p.Payload)
				}
				payload = c.Data
			}
			if p.Transport != wantTr || p.Encap != tt.want || p.VLAN != tt.wantVLAN || p.Dst.Port() != 5060 ||
				string(payload[:7]) != "INVITE " {
				t.Errorf("got %v %v→%v encap %b vlan %d payload %q; want %v encap %b vlan %d, an INVITE to 5060",
					p.Transport, p.Src, p.Dst, p.Encap, p.VLAN, payload[:min(len(payload), 16)], wantTr, tt.want, tt.wantVLAN)
			}
			for _, a := range simulate.TunnelAddrs {
				if p.Src.Addr() == a || p.Dst.Addr() == a {
					t.Errorf("outer address %v decoded as the packet's", a)
				}
			}
			// Every truncation is an error or a frame without transport,
			// never a panic and never the outer addresses.
			for n := range len(frames[0]) {
				ok, _ := d.Decode(frames[0][:n], time.Unix(1, 0), &p)
				if ok && (p.Src.Addr() == simulate.TunnelAddrs[0] || p.Dst.Addr() == simulate.TunnelAddrs[1]) {
					t.Fatalf("truncated at %d: outer addresses decoded", n)
				}
			}
			if n := testing.AllocsPerRun(200, func() { _, _ = d.Decode(frames[0], time.Unix(1, 0), &p) }); n != 0 {
				t.Errorf("Decode allocates %.1f times per %s packet, want 0", n, tt.encap)
			}
		})
	}
}

func TestDecodeTunnelDepthBounded(t *testing.T) {
	// GRE in GRE in GRE ... (IP protocol 47 carrying IPv4 carrying GRE).
	inner := []byte{0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	pkt := inner
	for range maxEncap + 2 {
		gre := append([]byte{0, 0, 0x08, 0x00}, pkt...)
		hdr := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 47, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2}
		total := len(hdr) + len(gre)
		hdr[2], hdr[3] = byte(total>>8), byte(total)
		pkt = append(hdr, gre...)
	}
	d, _ := New(layers.LinkTypeRaw)
	var p Packet
	ok, err := d.Decode(pkt, time.Unix(1, 0), &p)
	if ok || !errors.Is(err, ErrMalformed) {
		t.Errorf("%d nested GRE: ok %v err %v; want ErrMalformed", maxEncap+2, ok, err)
	}
}

func TestNextSCTPData(t *testing.T) {
	chunk := func(typ, flags byte, tsn byte, data string) []byte {
		n := 16 + len(data)
		b := []byte{typ, flags, byte(n >> 8), byte(n), 0, 0, 0, tsn, 0, 1, 0, 0, 0, 0, 0, 0}
		b = append(b, data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	sack := []byte{3, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	pkt := append(append(append(sack, chunk(0, 3, 1, "SIP/2.0 200 OK\r\n\r\n")...), chunk(0, 2, 2, "INVITE")...), 0xff)
	var c SCTPData
	var got []string
	for b, ok := NextSCTPData(pkt, &c); ok; b, ok = NextSCTPData(b, &c) {
		got = append(got, string(c.Data))
		if c.Stream != 1 {
			t.Errorf("stream %d, want 1", c.Stream)
		}
	}
	if len(got) != 2 || got[0] != "SIP/2.0 200 OK\r\n\r\n" || got[1] != "INVITE" || c.End || !c.Begin || c.TSN != 2 {
		t.Errorf("chunks %q, last %+v", got, c)
	}
}

// FuzzTunnels decodes mutated tunnel, mirror and SCTP frames: never a panic,
// never a packet on the outer addresses, SCTP chunk walks end.
func FuzzTunnels(f *testing.F) {
	for _, e := range simulate.Encaps {
		for _, fr := range encapFrames(f, e, "", 2) {
			f.Add(fr)
		}
	}
	for _, fr := range encapFrames(f, simulate.EncapVXLAN, simulate.TransportSCTP, 3) {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		d, _ := New(layers.LinkTypeEthernet)
		var p Packet
		ok, err := d.Decode(frame, time.Unix(1, 0), &p)
		if ok && err != nil {
			t.Fatalf("ok with error %v", err)
		}
		if !ok {
			return
		}
		if p.Encap != 0 && (p.Src.Addr() == simulate.TunnelAddrs[0] && p.Dst.Addr() == simulate.TunnelAddrs[1]) {
			t.Fatalf("outer addresses decoded as the packet's: %+v", p)
		}
		if p.Transport == SCTP {
			var c SCTPData
			n := 0
			for b, ok := NextSCTPData(p.Payload, &c); ok; b, ok = NextSCTPData(b, &c) {
				if n++; n > len(p.Payload) {
					t.Fatal("chunk walk does not end")
				}
			}
		}
	})
}
