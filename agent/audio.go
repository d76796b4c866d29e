package main

import (
	"context"
	"encoding/binary"

	"pbx-agent/agent/manager"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/spool"
)

// pcmAudio serves VoIPmonitor's listen/readaudio from the spool's shared
// per-call decode: 8 kHz mono s16le, both directions mixed.
type pcmAudio struct{ sp *spool.Spool }

// readaudioQueue is how many 20 ms frames a listen client may fall behind
// before the oldest are dropped (the GUI polls every 50 ms).
const readaudioQueue = 250

func (a pcmAudio) OpenAudio(ctx context.Context, ref uint64) (manager.AudioStream, error) {
	sub, err := a.sp.Subscribe(ctx, ref, readaudioQueue)
	if err != nil {
		return nil, err
	}
	return &pcmStream{sub: sub, conv: audio.NewConverter(audio.SampleRate)}, nil
}

type pcmStream struct {
	sub  *audio.Subscription
	conv *audio.Converter // VoIPmonitor's listen is 8 kHz whatever the codec
	mix  [audio.FrameSamples]int16
}

// ReadPCM drains the frames decoded since the last read without blocking.
func (p *pcmStream) ReadPCM(dst []byte) ([]byte, error) {
	for {
		select {
		case f, ok := <-p.sub.Frames():
			if !ok {
				return dst, manager.ErrCallEnded
			}
			for _, s := range p.conv.Convert(f).Mix(p.mix[:]) {
				dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
			}
		default:
			return dst, nil
		}
	}
}

func (p *pcmStream) Close() error {
	p.sub.Close()
	return nil
}
