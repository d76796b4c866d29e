package sensors

import (
	"context"
	"errors"
	"fmt"

	"pbx-agent/agent/manager/client"
	"pbx-agent/agent/manager/wire"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/webui/player"
)

// PlayerLookup is player.Options.RemoteLookup backed by Client.Target: a
// listener of any reachable sensor of the shared database is served
// through that sensor's manager API (listen_stream), with its manager key.
func (c *Client) PlayerLookup(ctx context.Context, sensor int) (player.Remote, error) {
	addr, key, err := c.Target(ctx, sensor)
	if errors.Is(err, ErrUnknownSensor) {
		return nil, fmt.Errorf("%w: %w", player.ErrUnknownSensor, err)
	}
	if err != nil {
		return nil, err
	}
	return ManagerRemote{Addr: addr, Key: key}, nil
}

// ManagerRemote is a player.Remote heard through a sensor's manager API:
// one listen_stream connection per call.
type ManagerRemote struct {
	Network string       // "tcp" (default) or "unix"
	Addr    string       // host:port of its manager API
	Key     *wire.AESKey // its manager_aes_key; nil = plaintext
}

// OpenStream implements player.Remote: frames at the call's own rate (up
// to 48 kHz). A sensor older than listen_stream's rate= refuses it as an
// unknown call: asked again without it, it streams 8 kHz. An unknown call
// wraps call.ErrNoCall.
func (r ManagerRemote) OpenStream(ctx context.Context, ref uint64) (player.RemoteStream, error) {
	st, err := client.DialStreamRate(ctx, r.Network, r.Addr, ref, wire.StreamStereo, audio.MaxRate, r.Key)
	if errors.Is(err, call.ErrNoCall) {
		st, err = client.DialStream(ctx, r.Network, r.Addr, ref, wire.StreamStereo, r.Key)
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}
