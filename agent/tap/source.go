package tap

import (
	"context"

	"pbx-agent/sniffer/audio"
)

// FrameSource is what webui/player (Options.Audio) and the manager API's
// listen read frames from: spool.Spool, Tapper, Source.
type FrameSource interface {
	Subscribe(ctx context.Context, ref uint64, depth int) (*audio.Subscription, error)
}

// Source serves a call from the sniffer's own decode (Local) unless UseTap
// says the wire cannot be heard (SRTP, media elsewhere), then from the ARI
// tap; a call Local does not know is tried on the tap too.
type Source struct {
	Local  FrameSource
	Tap    FrameSource // nil: no ARI tap
	UseTap func(ref uint64) bool
}

// Subscribe implements FrameSource.
func (s Source) Subscribe(ctx context.Context, ref uint64, depth int) (*audio.Subscription, error) {
	if s.Tap != nil && s.UseTap != nil && s.UseTap(ref) {
		return s.Tap.Subscribe(ctx, ref, depth)
	}
	if s.Local == nil {
		if s.Tap == nil {
			return nil, ErrClosed
		}
		return s.Tap.Subscribe(ctx, ref, depth)
	}
	sub, err := s.Local.Subscribe(ctx, ref, depth)
	if err != nil && s.Tap != nil {
		if ts, terr := s.Tap.Subscribe(ctx, ref, depth); terr == nil {
			return ts, nil
		}
	}
	return sub, err
}

// Undecodable is a UseTap for the spool (spool.Spool.AudioStats): true
// once a call has had at least minPackets RTP packets and none of them
// could be decoded (a codec without decoder, or nothing the sniffer could
// match). Encrypted G.711 (SRTP) decodes to noise and is not caught: that
// needs the SDP's RTP/SAVP profile.
func Undecodable(stats func(ref uint64) (audio.Stats, bool), minPackets uint64) func(ref uint64) bool {
	return func(ref uint64) bool {
		st, ok := stats(ref)
		return ok && st.Packets >= minPackets && st.Undecodable == st.Packets
	}
}
