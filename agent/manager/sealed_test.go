package manager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"pbx-agent/agent/manager/client"
	"pbx-agent/agent/manager/wire"
)

// TestSealedScheme pins the negotiated half of issue 17 item 1: a client
// whose key is marked Sealed (a front end talking to a sensor registered as
// a pbx-agent) gets an authenticated AES-256-GCM exchange from the same
// server that answers a VoIPmonitor GUI in CBC; a replayed or stale sealed
// request, or one under another key, gets the one failure reply; a reply
// altered or cut in transit is an error at the client, never wrong data.
func TestSealedScheme(t *testing.T) {
	k := testKey(t)
	ts := startServer(t, func(c *Config) { c.Keys = wire.StaticKey(k); c.AESMaxFailures = 1000 })
	ctx := context.Background()
	sealed := k
	sealed.Sealed = true

	got, err := client.Exchange(ctx, "tcp", ts.addr, "totalcalls", &sealed)
	if err != nil || string(got) != "3" {
		t.Fatalf("sealed totalcalls = %q, %v", got, err)
	}
	if got, err := client.Exchange(ctx, "tcp", ts.addr, "totalcalls", &k); err != nil || string(got) != "3" {
		t.Errorf("CBC totalcalls (a VoIPmonitor GUI) = %q, %v", got, err)
	}

	req, sess := k.SealRequest([]byte("listcalls\r\n"), time.Now())
	raw := exchange(t, "tcp", ts.addr, req, false)
	if !bytes.HasPrefix(raw, []byte(wire.SealedReplyPrefix)) {
		t.Fatalf("sealed reply starts %.10q", raw)
	}
	if pt, ok, err := sess.OpenReply(raw); err != nil || !ok || !bytes.Contains(pt, []byte("callreference")) {
		t.Fatalf("sealed listcalls: %v %v %.80q", ok, err, pt)
	}
	failure := exchange(t, "tcp", ts.addr, k.EncryptRequest([]byte("no-such-command\r\n")), false)
	for name, req := range map[string][]byte{
		"replayed": req,
		"stale":    func() []byte { r, _ := k.SealRequest([]byte("listcalls\r\n"), time.Now().Add(-time.Hour)); return r }(),
		"other key": func() []byte {
			o := k
			o.Key[0] ^= 1
			r, _ := o.SealRequest([]byte("listcalls\r\n"), time.Now())
			return r
		}(),
		"no command": func() []byte { r, _ := k.SealRequest([]byte("x listcalls\r\n"), time.Now()); return r }(),
		"bit flipped": func() []byte {
			r, _ := k.SealRequest([]byte("listcalls\r\n"), time.Now())
			r[len(wire.SealedName)+5] ^= 1
			return r
		}(),
	} {
		if got := exchange(t, "tcp", ts.addr, req, false); !bytes.Equal(got, failure) {
			t.Errorf("%s sealed request: reply %.20q, want the failure reply", name, got)
		}
	}

	// In transit: one bit of the reply flipped, or the reply cut short.
	body := raw[len(wire.SealedReplyPrefix):]
	flipped := append([]byte(nil), body...)
	flipped[10] ^= 1
	if _, err := io.ReadAll(sess.ReplyReader(bytes.NewReader(flipped))); !errors.Is(err, wire.ErrBadReply) {
		t.Errorf("altered reply: err = %v, want ErrBadReply", err)
	}
	if _, err := io.ReadAll(sess.ReplyReader(bytes.NewReader(body[:len(body)-1]))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut reply: err = %v, want io.ErrUnexpectedEOF", err)
	}
	_, other := k.SealRequest([]byte("listcalls\r\n"), time.Now())
	if _, err := io.ReadAll(other.ReplyReader(bytes.NewReader(body))); !errors.Is(err, wire.ErrBadReply) {
		t.Errorf("reply of another request: err = %v, want ErrBadReply", err)
	}
}
