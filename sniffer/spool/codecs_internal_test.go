package spool

import (
	"context"
	"strconv"
	"testing"
	"time"

	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sip"
)

const opusSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 20000 RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/48000\r\n"

var opusInvite = "INVITE sip:1002@127.0.0.1 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5161;branch=z9hG4bK1\r\n" +
	"From: <sip:1001@127.0.0.1>;tag=a\r\nTo: <sip:1002@127.0.0.1>\r\n" +
	"Call-ID: opus-1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n" +
	"Content-Length: " + strconv.Itoa(len(opusSDP)) + "\r\n\r\n" + opusSDP

// TestOpusNamedBySDP: an Opus call's dynamic payload type, named only by
// its INVITE's rtpmap, is decoded (caller's 700 Hz heard), and the events'
// payload type is not audio.
func TestOpusNamedBySDP(t *testing.T) {
	if !codec.Built {
		t.Skip("built without cgo")
	}
	s, err := New(Config{Dir: t.TempDir(), SaveAudio: "wav", Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	Start(t, s)
	defer s.Close(context.Background())
	var m sip.Message
	if _, err := sip.Parse([]byte(opusInvite), &m); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	s.SIP(&m, call.Meta{Time: t0}, 1, &decode.Packet{Time: t0})
	sub, err := s.Subscribe(context.Background(), 1, 200)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewEncoder(codec.Opus)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pcm := tone.Sine(960*100, 0, 48000, 700, 8000)
	buf := make([]byte, 1500)
	sh := s.shardOf(1)
	sh.mu.Lock()
	a := sh.calls[1].audio
	sh.mu.Unlock()
	for i := 0; i < 100; i++ {
		n, err := enc.Encode(pcm[i*960:(i+1)*960], buf)
		if err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		h := rtp.Header{Version: 2, PayloadType: 111, SSRC: 7, Timestamp: uint32(i * 960)}
		a.Feed(audio.FromCaller, &h, buf[:n], at, false)
		h = rtp.Header{Version: 2, PayloadType: 101, SSRC: 8, Timestamp: uint32(i * 960)}
		a.Feed(audio.FromCallee, &h, []byte{1, 0x8a, 0, 160}, at, false)
	}
	a.Close()
	var l, r []int16
	rate := 0
	for f := range sub.Frames() {
		l, r, rate = append(l, f.Caller...), append(r, f.Callee...), f.Rate
	}
	st := a.Stats()
	if rate != 48000 {
		t.Errorf("frames at %d Hz, want Opus's 48000", rate)
	}
	over := tone.Over(l[rate/5:], float64(rate), 700, 1300)
	t.Logf("opus via SDP: %d frames at %d Hz, undecodable %d, 700 Hz %.1f dB over 1300 Hz, callee RMS %.0f", st.Frames, rate, st.Undecodable, over, tone.RMS(r))
	if over < 30 || st.Undecodable != 100 || tone.RMS(r) != 0 {
		t.Errorf("700 Hz %.1f dB over 1300 Hz (want ≥ 30); undecodable %d (want the 100 events); callee RMS %.0f (want 0)", over, st.Undecodable, tone.RMS(r))
	}
}
