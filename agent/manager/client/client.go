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
	defer BindContext(ctx, c)()
	req, sess := Request(command, key)
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

// BindContext makes c's I/O keep to ctx: its deadline, and ctx ending
// unblocks a read or write in progress. Call the returned stop when done.
func BindContext(ctx context.Context, c net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
}

// Request returns the bytes that send command with key: plaintext (nil
// key), AES-CBC, or sealed (key.Sealed), with the session that opens the
// sealed reply (see OpenReply).
func Request(command string, key *wire.AESKey) ([]byte, *wire.SealedSession) {
	switch {
	case key != nil && key.Sealed:
		return key.SealRequest([]byte(command+"\r\n"), time.Now())
	case key != nil:
		return key.EncryptRequest([]byte(command + "\r\n\r\n")), nil
	}
	return []byte(command + "\r\n\r\n"), nil
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
