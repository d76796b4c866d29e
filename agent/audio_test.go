package main

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"pbx-agent/agent/manager"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/rtp"
)

// TestReadaudioStays8kHz: VoIPmonitor's listen/readaudio is 8 kHz mono
// whatever the call's rate: a 16 kHz call's frames are resampled to it
// (320 bytes per 20 ms), the level kept.
func TestReadaudioStays8kHz(t *testing.T) {
	c := audio.NewCall(audio.Config{Rate: 16000})
	sub, err := c.Subscribe(100)
	if err != nil {
		t.Fatal(err)
	}
	p := &pcmStream{sub: sub, conv: audio.NewConverter(audio.SampleRate)}
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	const n = 20
	for i := range n {
		h := rtp.Header{Version: 2, PayloadType: rtp.PTPCMU, SSRC: 1, SequenceNumber: uint16(i), Timestamp: uint32(i * audio.FrameSamples)}
		c.Feed(audio.FromCaller, &h, bytes.Repeat([]byte{0xa0}, audio.FrameSamples), t0.Add(time.Duration(i)*audio.FrameDuration), false)
	}
	c.Close()
	pcm, err := p.ReadPCM(nil)
	if !errors.Is(err, manager.ErrCallEnded) {
		t.Fatalf("ReadPCM: %v, want ErrCallEnded", err)
	}
	if len(pcm) != n*audio.FrameSamples*2 {
		t.Fatalf("%d bytes for %d frames, want %d (8 kHz s16le)", len(pcm), n, n*audio.FrameSamples*2)
	}
	want := rtp.ULawToLinear(0xa0)
	if mid := int16(uint16(pcm[n*audio.FrameSamples]) | uint16(pcm[n*audio.FrameSamples+1])<<8); mid < want-want/50-1 || mid > want+want/50+1 {
		t.Errorf("sample mid-call %d, want %d ± 2 %%", mid, want)
	}
}
