package fax

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// frameList is a capture in memory.
type frameList struct {
	frames [][]byte
	times  []time.Time
	i      int
}

func (f *frameList) ReadPacketData() ([]byte, CaptureInfo, error) {
	if f.i >= len(f.frames) {
		return nil, CaptureInfo{}, io.EOF
	}
	f.i++
	return f.frames[f.i-1], CaptureInfo{Timestamp: f.times[f.i-1]}, nil
}

func (f *frameList) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

func (f *frameList) udp(t *testing.T, at time.Time, src, dst string, sport, dport int, payload []byte) {
	t.Helper()
	eth := layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(&ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, &eth, &ip, &udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	f.frames = append(f.frames, buf.Bytes())
	f.times = append(f.times, at)
}

func sipWithSDP(first, host string, port int) []byte {
	body := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=image %d udptl t38\r\na=T38FaxVersion:0\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n", host, host, port)
	return fmt.Appendf(nil, "%s\r\nVia: SIP/2.0/UDP %s:5060;branch=z9hG4bK1\r\nFrom: <sip:2001@%s>;tag=a\r\nTo: <sip:fax@10.0.0.2>\r\nCall-ID: gen-t38@test\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		first, host, host, len(body), body)
}

// generatedT38Call is a T.38 call made by two spandsp T.38 terminals
// (sent.tif from 10.0.0.1:4000 to 10.0.0.2:4002), UDPTL with 2 redundant
// IFPs; every lossEvery-th packet of the sender is lost (0: none).
func generatedT38Call(t *testing.T, lossEvery int) *frameList {
	t.Helper()
	start := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	f := &frameList{}
	f.udp(t, start, "10.0.0.1", "10.0.0.2", 5060, 5060, sipWithSDP("INVITE sip:fax@10.0.0.2 SIP/2.0", "10.0.0.1", 4000))
	f.udp(t, start.Add(10*time.Millisecond), "10.0.0.2", "10.0.0.1", 5060, 5060, sipWithSDP("SIP/2.0 200 OK", "10.0.0.2", 4002))
	var hist [2][][]byte
	var seq [2]uint16
	var buf []byte
	err := SimulateT38(sentTIFF, filepath.Join(t.TempDir(), "gen-rx.tif"), "PBX-AGENT GEN", 5*time.Minute, func(fromSender bool, at time.Duration, b []byte) {
		d, src, dst, sp, dp := 0, "10.0.0.1", "10.0.0.2", 4000, 4002
		if !fromSender {
			d, src, dst, sp, dp = 1, "10.0.0.2", "10.0.0.1", 4002, 4000
		}
		p := Packet{Seq: seq[d], Primary: b}
		for k := 0; k < 2 && k < len(hist[d]); k++ {
			p.Secondary[k] = hist[d][len(hist[d])-1-k]
			p.NSecondary++
		}
		hist[d] = append(hist[d], b)
		seq[d]++
		buf = Append(buf[:0], &p)
		if d == 0 && lossEvery > 0 && int(seq[d])%lossEvery == 0 {
			return
		}
		f.udp(t, start.Add(time.Second+at), src, dst, sp, dp, buf)
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestGeneratedT38Call: a generated T.38 call (SIP with m=image, UDPTL
// with redundancy, one sender packet in 7 lost) decodes to the two sent
// pages through the capture path the web API uses.
func TestGeneratedT38Call(t *testing.T) {
	needSpandsp(t)
	f := generatedT38Call(t, 7)
	r, file, err := DecodeFrames(context.Background(), f, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d frames: %+v", len(f.frames), r)
	if r.Mode != ModeT38 || r.Pages != 2 || r.Code != 0 || r.RemoteID != "PBX-AGENT GEN" || r.Src != "10.0.0.1:4000" {
		t.Errorf("result %+v, want T.38, 2 pages from 10.0.0.1:4000, code 0, remote PBX-AGENT GEN", r)
	}
	checkPages(t, file, 2)
}

// TestNoFax: a call without m=image or G.711 fax gives ErrNoFax; a
// cancelled context stops the decode.
func TestNoFax(t *testing.T) {
	needSpandsp(t)
	f := &frameList{}
	f.udp(t, time.Unix(0, 0), "10.0.0.1", "10.0.0.2", 5060, 5060, []byte("OPTIONS sip:x@10.0.0.2 SIP/2.0\r\n\r\n"))
	if _, _, err := DecodeFrames(context.Background(), f, t.TempDir()); !errors.Is(err, ErrNoFax) {
		t.Errorf("err %v, want ErrNoFax", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := DecodeFrames(ctx, generatedT38Call(t, 0), t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v", err)
	}
}
