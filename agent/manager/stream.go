package manager

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/sniffer/audio"
)

// listen_stream keepalive: how long a stream stays silent before it sends
// a keepalive record (so a client that went away is noticed when a call has
// no RTP). The record layout is in agent/manager/wire.
const streamKeepalive = time.Second

// maxListenStreams bounds the listen_stream connections open at once.
// Each holds a manager connection slot for as long as its call lasts:
// without a bound, streams from a few addresses (DefaultMaxConnsPerSource
// each) could take every slot (DefaultMaxConns) and leave none for
// commands while the calls last. A front end opens one per call it
// listens to.
const maxListenStreams = DefaultMaxConns / 2

// replyTooManyStreams refuses a listen_stream past maxListenStreams.
const replyTooManyStreams = "error: too many listen streams\n"

// FrameSource gives the decoded 20 ms frames of active calls (the spool:
// one decode per call shared by every listener). Subscribe returns a
// bounded queue that drops its oldest frame when full and counts it.
type FrameSource interface {
	Subscribe(ctx context.Context, ref uint64, depth int) (*audio.Subscription, error)
}

// ListenStreamCommand returns the `listen_stream` command, to be added
// through Config.Commands. It needs the AES key when one is configured
// (like listen). src nil answers `liveaudio is disabled`.
// At most maxListenStreams run at once; past them the reply is
// replyTooManyStreams.
func ListenStreamCommand(src FrameSource) Command {
	slots := make(chan struct{}, maxListenStreams)
	return Command{
		Help: "stream a call's live audio: listen_stream <callreference> [stereo|mono] [depth] [rate=8000|16000|24000|48000]; 20 ms s16le frames (8 kHz, or the call's rate up to rate=) pushed until the call ends",
		Run: func(ctx context.Context, w io.Writer, req *Request) error {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			default:
				_, err := io.WriteString(w, replyTooManyStreams)
				return err
			}
			return runListenStream(ctx, w, req, src)
		},
	}
}

type streamArgs struct {
	ref    uint64
	layout byte
	depth  int
	rate   int // highest rate the client takes (8000 unless it said rate=)
}

func parseStreamArgs(args string) (streamArgs, bool) {
	f := strings.Fields(args)
	if len(f) == 0 {
		return streamArgs{}, false
	}
	ref, ok := parseRef(f[0])
	if !ok {
		return streamArgs{}, false
	}
	a := streamArgs{ref: ref, layout: wire.StreamStereo, rate: audio.SampleRate}
	for _, s := range f[1:] {
		if v, ok := strings.CutPrefix(strings.ToLower(s), "rate="); ok {
			switch n, _ := strconv.Atoi(v); n {
			case 8000, 16000, 24000, 48000:
				a.rate = n
			default:
				return streamArgs{}, false
			}
			continue
		}
		switch strings.ToLower(s) {
		case "stereo":
			a.layout = wire.StreamStereo
		case "mono":
			a.layout = wire.StreamMono
		default:
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 500 {
				return streamArgs{}, false
			}
			a.depth = n
		}
	}
	return a, true
}

type flusher interface{ Flush() error }

func runListenStream(ctx context.Context, w io.Writer, req *Request, src FrameSource) error {
	if src == nil {
		_, err := io.WriteString(w, listenDisabled)
		return err
	}
	a, ok := parseStreamArgs(req.Args)
	if !ok {
		_, err := io.WriteString(w, listenNoCall)
		return err
	}
	sub, err := src.Subscribe(ctx, a.ref, a.depth)
	if err != nil {
		_, err := io.WriteString(w, listenNoCall)
		return err
	}
	defer sub.Close()
	flush := func() error {
		if f, ok := w.(flusher); ok {
			return f.Flush()
		}
		return nil
	}
	buf := make([]byte, 0, wire.StreamHeaderSize+audio.MaxFrameSamples*4)
	conv := audio.NewConverter(a.rate) // frames above the client's rate go down to it
	keep := time.NewTimer(streamKeepalive)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			buf = wire.AppendStreamEnd(buf[:0], wire.StreamReasonShutdown)
			if _, err := w.Write(buf); err != nil {
				return err
			}
			return flush()
		case f, ok := <-sub.Frames():
			if !ok {
				buf = wire.AppendStreamEnd(buf[:0], wire.StreamReasonCallEnded)
				if _, err := w.Write(buf); err != nil {
					return err
				}
				return flush()
			}
			if f.Rate > a.rate {
				f = conv.Convert(f)
			}
			buf = wire.AppendStreamFrame(buf[:0], f, a.layout, sub.Dropped())
		case <-keep.C:
			buf = wire.AppendStreamKeepalive(buf[:0], sub.Dropped())
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		keep.Reset(streamKeepalive)
	}
}
