package fax

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sdp"
)

// MaxFlows bounds the directions of each kind (UDPTL, G.711) one call
// decode follows; more are ignored (and counted).
const MaxFlows = 8

// maxGap bounds the silence inserted for a hole in a G.711 stream (2 s).
const maxGap = 16000

type flowKey struct{ src, dst netip.AddrPort }

type t38Flow struct {
	key    flowKey
	file   string
	stream Stream
	rx     *T38Receiver
	last   time.Time
}

type audioFlow struct {
	key     flowKey
	file    string
	rx      *AudioReceiver
	started bool
	nextTS  uint32
	pcm     [1024]int16
	zero    [160]int16
}

// CallDecoder finds the fax of one call in its packets (SIP with SDP,
// UDPTL, RTP; fed in capture order) and decodes every direction that may
// carry an image: UDPTL flows to and from m=image addresses through a T.38
// receiver, PCMU/PCMA flows to and from m=audio addresses through a T.30
// audio receiver. Memory is bounded: at most MaxFlows receivers of each
// kind; pages go to TIFF files under Dir.
type CallDecoder struct {
	dir    string
	image  map[netip.AddrPort]bool
	audio  map[netip.AddrPort]bool
	t38    []*t38Flow
	g711   []*audioFlow
	sess   sdp.Session
	hdr    rtp.Header
	pkt    Packet
	err    error // the first receiver error (ErrUnsupported without spandsp)
	closed bool
	// Ignored counts packets of flows beyond MaxFlows and malformed UDPTL.
	Ignored int
}

// NewCallDecoder writes the TIFF files it makes under dir.
func NewCallDecoder(dir string) *CallDecoder {
	return &CallDecoder{dir: dir, image: map[netip.AddrPort]bool{}, audio: map[netip.AddrPort]bool{}}
}

// Packet feeds one UDP datagram of the call.
func (d *CallDecoder) Packet(p *decode.Packet) {
	if d.closed || p.Transport != decode.UDP {
		return
	}
	b := p.Payload
	if isSIP(b) {
		d.sip(b)
		return
	}
	src, dst := p.Src, p.Dst
	if (d.audio[dst] || d.audio[src]) && rtp.LooksLikeRTP(b) {
		if n, err := d.hdr.Unmarshal(b); err == nil && (d.hdr.PayloadType == 0 || d.hdr.PayloadType == 8) {
			d.feedAudio(flowKey{src, dst}, d.hdr.Payload(b, n))
			return
		}
	}
	if d.image[dst] || d.image[src] {
		if err := Parse(b, &d.pkt); err != nil {
			d.Ignored++
			return
		}
		d.feedT38(flowKey{src, dst}, p.Time)
	}
}

func isSIP(b []byte) bool {
	if bytes.HasPrefix(b, []byte("SIP/2.0 ")) {
		return true
	}
	sp := bytes.IndexByte(b, ' ')
	return sp > 0 && sp < 20 && bytes.Contains(b[:min(len(b), 200)], []byte(" SIP/2.0\r\n"))
}

// sip learns the media addresses of an SDP body.
func (d *CallDecoder) sip(b []byte) {
	k := bytes.Index(b, []byte("\r\n\r\n"))
	if k < 0 || !bytes.HasPrefix(b[k+4:], []byte("v=0")) {
		return
	}
	if sdp.Parse(b[k+4:], &d.sess) != nil {
		return
	}
	for i := range d.sess.NMedia {
		m := &d.sess.Media[i]
		if !m.Conn.IsValid() || m.Port == 0 {
			continue
		}
		a := netip.AddrPortFrom(m.Conn, m.Port)
		switch {
		case sdp.IsFax(m):
			d.image[a] = true
		case m.Audio():
			d.audio[a] = true
		}
	}
}

func (d *CallDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *CallDecoder) feedT38(k flowKey, t time.Time) {
	var f *t38Flow
	for _, c := range d.t38 {
		if c.key == k {
			f = c
		}
	}
	if f == nil {
		if len(d.t38) >= MaxFlows {
			d.Ignored++
			return
		}
		f = &t38Flow{key: k, file: filepath.Join(d.dir, fmt.Sprintf("t38-%d.tif", len(d.t38)+1)), last: t}
		rx, err := NewT38Receiver(f.file)
		if err != nil {
			d.fail(err)
			d.Ignored++
			return
		}
		f.rx = rx
		d.t38 = append(d.t38, f)
	}
	if el := t.Sub(f.last); el > 0 {
		f.rx.Advance(int(min(el, time.Minute) / (time.Second / 8000)))
	}
	f.last = t
	f.stream.Push(&d.pkt, f.rx.IFP)
}

func (d *CallDecoder) feedAudio(k flowKey, payload []byte) {
	var f *audioFlow
	for _, c := range d.g711 {
		if c.key == k {
			f = c
		}
	}
	if f == nil {
		if len(d.g711) >= MaxFlows {
			d.Ignored++
			return
		}
		f = &audioFlow{key: k, file: filepath.Join(d.dir, fmt.Sprintf("g711-%d.tif", len(d.g711)+1))}
		rx, err := NewAudioReceiver(f.file)
		if err != nil {
			d.fail(err)
			d.Ignored++
			return
		}
		f.rx = rx
		d.g711 = append(d.g711, f)
	}
	ts := d.hdr.Timestamp
	if f.started {
		gap := int(int32(ts - f.nextTS))
		if gap < 0 {
			return // late or duplicate
		}
		for gap = min(gap, maxGap); gap > 0; gap -= len(f.zero) {
			f.rx.Audio(f.zero[:min(gap, len(f.zero))])
		}
	}
	for len(payload) > 0 {
		n, _ := rtp.DecodeG711(d.hdr.PayloadType, f.pcm[:], payload[:min(len(payload), len(f.pcm))])
		if n == 0 {
			break
		}
		f.rx.Audio(f.pcm[:n])
		payload = payload[n:]
		ts += uint32(n)
	}
	f.started, f.nextTS = true, ts
}

// Close ends every receiver and returns the direction that received the
// most pages (T.38 first on a tie) with the TIFF file holding them. It
// returns ErrNoFax (with the best result so far) when no page came
// through, and ErrUnsupported in a build without spandsp.
func (d *CallDecoder) Close() (Result, string, error) {
	if d.closed {
		return Result{}, "", errors.New("fax: decoder closed twice")
	}
	d.closed = true
	var best Result
	file, found := "", false
	better := func(r Result) bool {
		return !found || r.Pages > best.Pages || (r.Pages == best.Pages && best.Code != 0 && r.Code == 0)
	}
	for _, f := range d.t38 {
		f.rx.Advance(8000 * 5)
		f.rx.Close()
		r := f.rx.res
		r.Src, r.Dst = f.key.src.String(), f.key.dst.String()
		if better(r) {
			best, file, found = r, f.file, true
		}
	}
	for _, f := range d.g711 {
		f.rx.Close()
		r := f.rx.res
		r.Src, r.Dst = f.key.src.String(), f.key.dst.String()
		if r.Pages > best.Pages || !found {
			best, file, found = r, f.file, true
		}
	}
	switch {
	case d.err != nil && !found:
		return best, "", d.err
	case best.Pages == 0:
		return best, "", ErrNoFax
	}
	return best, file, nil
}

// Frames is a source of captured frames (a pcap reader, or several merged).
type Frames interface {
	ReadPacketData() ([]byte, CaptureInfo, error)
	LinkType() layers.LinkType
}

// CaptureInfo is what Frames says about one frame.
type CaptureInfo struct{ Timestamp time.Time }

// DecodeFrames runs a CallDecoder over every frame of src (until io.EOF or
// ctx ends); a truncated capture ends the input (what was read is used).
func DecodeFrames(ctx context.Context, src Frames, dir string) (Result, string, error) {
	dec, err := decode.New(src.LinkType())
	if err != nil {
		return Result{}, "", fmt.Errorf("fax: %w", err)
	}
	cd := NewCallDecoder(dir)
	var p decode.Packet
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			cd.Close()
			return Result{}, "", ctx.Err()
		}
		data, ci, err := src.ReadPacketData()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			cd.Close()
			return Result{}, "", fmt.Errorf("fax: reading capture: %w", err)
		}
		if ok, _ := dec.Decode(data, ci.Timestamp, &p); ok {
			cd.Packet(&p)
		}
	}
	return cd.Close()
}
