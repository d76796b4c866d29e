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
	var sess *wire.SealedSession
	switch {
	case key != nil && key.Sealed:
		req, sess = key.SealRequest([]byte(command+"\r\n"), time.Now())
	case key != nil:
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
	return OpenReply(buf.Bytes(), key, sess)
}

// OpenReply decodes a whole reply to a request sent with key (nil =
// plaintext) and, for the authenticated scheme, sess: a sealed reply is
// authenticated, a CBC one decrypted (the server's refusal comes as CBC
// "failed aes decrypt!" in both schemes), plaintext returned as is.
func OpenReply(reply []byte, key *wire.AESKey, sess *wire.SealedSession) ([]byte, error) {
	if key == nil {
		return reply, nil
	}
	if sess != nil {
		pt, sealed, err := sess.OpenReply(reply)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", wire.ErrBadReply, err)
		}
		if sealed {
			return pt, nil
		}
	}
	out, err := key.DecryptReply(reply)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", wire.ErrBadReply, err)
	}
	return out, nil
}
