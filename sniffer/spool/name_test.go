package spool

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestFBasename(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain", "f431e3956bf2ebd6", "f431e3956bf2ebd6"},
		{"at and dots kept", "abc.def@10.0.0.1", "abc.def@10.0.0.1"},
		{"slash", "a/b\\c", "a_b_c"},
		{"control and space", "a b\tc\x00d", "a_b_c_d"},
		{"non-ascii", "caf\xc3\xa9", "caf__"},
		{"empty", "", "_"},
		{"dot", ".", "_"},
		{"dotdot", "..", "_"},
		{"traversal", "../../etc/passwd", ".._.._etc_passwd"},
		{"long", long, long[:183] + "_" + "b1f1fbcbc3ac5a0d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FBasename(tc.in)
			if tc.name == "long" {
				if len(got) != maxBase || !strings.HasPrefix(got, long[:183]+"_") {
					t.Errorf("FBasename(long) = %q (%d bytes)", got, len(got))
				}
				if FBasename(long+"b") == got {
					t.Errorf("long names differing after the cut collide")
				}
				return
			}
			if got != tc.want {
				t.Errorf("FBasename(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzFBasename(f *testing.F) {
	for _, s := range []string{"f431e3956bf2ebd6", "../x", "", "a/b", strings.Repeat("z", 250)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := FBasename(s)
		if b == "" || b == "." || b == ".." || len(b) > maxBase || strings.ContainsAny(b, "/\\\x00") {
			t.Fatalf("FBasename(%q) = %q", s, b)
		}
		if filepath.Base(b) != b {
			t.Fatalf("FBasename(%q) = %q is not a single path element", s, b)
		}
	})
}

func TestPath(t *testing.T) {
	start := time.Date(2024, 3, 9, 7, 5, 59, 0, time.UTC)
	got := Path("/var/spool/voipmonitor", start, time.UTC, TypeRTP, "abc", "pcap")
	if want := "/var/spool/voipmonitor/2024-03-09/07/05/RTP/abc.pcap"; got != want {
		t.Errorf("Path = %s, want %s", got, want)
	}
	loc := time.FixedZone("X", 3600)
	if got := MinuteDir("/s", start, loc); got != "/s/2024-03-09/08/05" {
		t.Errorf("MinuteDir in +01:00 = %s", got)
	}
}

func TestParseRTPMode(t *testing.T) {
	tests := []struct {
		in      string
		want    RTPMode
		wantErr bool
	}{
		{"yes", RTPFull, false},
		{"1", RTPFull, false},
		{"no", RTPOff, false},
		{"", RTPOff, false},
		{"Header", RTPHeader, false},
		{"maybe", RTPOff, true},
	}
	for _, tc := range tests {
		got, err := ParseRTPMode(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseRTPMode(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("error %v is not ErrConfig", err)
		}
	}
}

// udpFrame builds an Ethernet/IPvX/UDP frame with a correct checksum.
func udpFrame(t *testing.T, v6 bool, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6), EthernetType: layers.EthernetTypeIPv4}
	udp := &layers.UDP{SrcPort: 20000, DstPort: 10000}
	var ip gopacket.SerializableLayer
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: []byte{0x20, 1, 0xd, 0xb8, 15: 1}, DstIP: []byte{0x20, 1, 0xd, 0xb8, 15: 2}}
		udp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{192, 0, 2, 10}}
		udp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAdjustChecksum(t *testing.T) {
	tests := []struct {
		name    string
		v6      bool
		payload int // RTP payload bytes after a 12-byte header
	}{
		{"ipv4 even", false, 160},
		{"ipv4 odd", false, 33},
		{"ipv6", true, 160},
		{"ipv6 odd", true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rtpPkt := make([]byte, 12+tc.payload)
			rtpPkt[0], rtpPkt[1] = 0x80, 0
			for i := 12; i < len(rtpPkt); i++ {
				rtpPkt[i] = byte(i * 37)
			}
			frame := udpFrame(t, tc.v6, rtpPkt)
			off := len(frame) - len(rtpPkt)
			silenced := append([]byte(nil), rtpPkt...)
			for i := 12; i < len(silenced); i++ {
				silenced[i] = 0xff
			}
			want := udpFrame(t, tc.v6, silenced)
			hc := binary.BigEndian.Uint16(frame[off-2:])
			got := adjustChecksum(hc, frame[off+12:], want[off+12:])
			if w := binary.BigEndian.Uint16(want[off-2:]); got != w {
				t.Errorf("adjusted checksum %#04x, want %#04x", got, w)
			}
		})
	}
}
