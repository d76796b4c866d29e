package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"pbx-agent/agent/manager/wire"
)

// Exchange sends one command to a manager server (network "tcp" or "unix")
// and returns the whole reply, read until the server closes. With a key the
// request is AES-encrypted and an `aes:` reply decrypted; plaintext replies
// (`need aes!`) are returned as they are. ctx bounds the whole exchange.
func Exchange(ctx context.Context, network, addr, command string, key *wire.AESKey) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("manager: dial %s %s: %w", network, addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	req := []byte(command + "\r\n\r\n")
	if key != nil {
		req = key.EncryptRequest(req)
	}
	if _, err := c.Write(req); err != nil {
		return nil, fmt.Errorf("manager: send: %w", err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, c); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("manager: read reply: %w", err)
	}
	if key == nil {
		return buf.Bytes(), nil
	}
	out, err := key.DecryptReply(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", wire.ErrBadReply, err)
	}
	return out, nil
}
