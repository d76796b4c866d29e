package sensors

import (
	"context"
	"errors"
	"fmt"

	"pbx-agent/webui/player"
)

// PlayerLookup is player.Options.RemoteLookup backed by Client.Target: a
// listener of any reachable sensor of the shared database is served
// through that sensor's manager API (listen_stream), with its manager key.
func (c *Client) PlayerLookup(ctx context.Context, sensor int) (player.Remote, error) {
	addr, key, err := c.Target(ctx, sensor)
	if errors.Is(err, ErrUnknownSensor) {
		return player.Remote{}, fmt.Errorf("%w: %w", player.ErrUnknownSensor, err)
	}
	if err != nil {
		return player.Remote{}, err
	}
	return player.Remote{Addr: addr, Key: key}, nil
}
