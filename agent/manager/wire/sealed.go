package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// pbx-agent's authenticated scheme between agents (front end ↔ sensors:
// listen_stream, getfile, pausecall, listcalls). VoIPmonitor's AES-128-CBC
// has a fixed IV and no MAC, so a ciphertext can be altered and the server
// used as a decryption oracle; between two pbx-agents the same configured
// key instead drives AES-256-GCM:
//
//	request: SealedName ":" base64url(nonce[12] | GCM(kReq, nonce, time[8] | command)) "\r\n"
//	reply:   SealedReplyPrefix then records len[4] | GCM(kRep, counter, payload, final-flag)
//
// kReq = HKDF-SHA256(key|iv, info "pbx-agent manager request v1"), kRep =
// HKDF-SHA256(key|iv, salt = the request's nonce, info "pbx-agent manager
// reply v1"): every connection has its own reply key, so replies cannot be
// replayed or spliced across requests. The request carries its send time;
// the server refuses it outside SealedMaxSkew and refuses a nonce seen
// before. The last record is flagged final, so a cut reply is an error, not
// a short reply. A VoIPmonitor GUI never sends SealedName and keeps the
// CBC scheme.

const (
	// SealedName starts a request in the authenticated scheme (it begins
	// with "aes" so the request reader routes it like other AES requests).
	SealedName = "aes-256-gcm-pbx1"
	// SealedReplyPrefix starts a reply in the authenticated scheme.
	SealedReplyPrefix = "gcm1:"
	// SealedMaxSkew is how far a request's send time may be from the
	// server's clock.
	SealedMaxSkew = 2 * time.Minute
	// sealedRecord is the plaintext size of a full reply record.
	sealedRecord = 16 << 10
	// maxSealedRecord bounds a record length read from the wire.
	maxSealedRecord = sealedRecord + 64
	nonceSize       = 12
)

func (k AESKey) derive(salt []byte, info string) cipher.AEAD {
	secret := append(k.Key[:len(k.Key):len(k.Key)], k.IV[:]...)
	key, err := hkdf.Key(sha256.New, secret, salt, info, 32)
	if err != nil { // cannot happen: 32 bytes of SHA-256 HKDF
		panic(fmt.Sprintf("wire: hkdf: %v", err))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("wire: aes: %v", err))
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(fmt.Sprintf("wire: gcm: %v", err))
	}
	return g
}

const (
	infoRequest = "pbx-agent manager request v1"
	infoReply   = "pbx-agent manager reply v1"
)

// SealedSession is one request of the authenticated scheme, client side: it
// reads the reply the request asked for.
type SealedSession struct {
	key   AESKey
	nonce [nonceSize]byte
}

// SealRequest frames command in the authenticated scheme, stamped with now.
func (k AESKey) SealRequest(command []byte, now time.Time) ([]byte, *SealedSession) {
	s := &SealedSession{key: k}
	_, _ = rand.Read(s.nonce[:])
	pt := make([]byte, 8, 8+len(command))
	binary.BigEndian.PutUint64(pt, uint64(now.UnixMilli()))
	pt = append(pt, command...)
	sealed := k.derive(nil, infoRequest).Seal(s.nonce[:], s.nonce[:], pt, []byte(SealedName))
	out := make([]byte, 0, len(SealedName)+1+base64.RawURLEncoding.EncodedLen(len(sealed))+2)
	out = append(out, SealedName...)
	out = append(out, ':')
	out = base64.RawURLEncoding.AppendEncode(out, sealed)
	return append(out, "\r\n"...), s
}

// OpenRequest authenticates and decrypts the text between SealedName ":"
// and CRLF. It returns the command, the request's nonce (for the reply and
// the replay check) and its send time; ErrDecrypt for anything that does
// not authenticate.
func (k AESKey) OpenRequest(body []byte) (command []byte, nonce [nonceSize]byte, sent time.Time, err error) {
	raw, derr := base64.RawURLEncoding.AppendDecode(nil, bytes.TrimSpace(body))
	if derr != nil || len(raw) < nonceSize+16+8 {
		return nil, nonce, sent, fmt.Errorf("%w: sealed request of %d bytes", ErrDecrypt, len(body))
	}
	copy(nonce[:], raw[:nonceSize])
	pt, oerr := k.derive(nil, infoRequest).Open(nil, raw[:nonceSize], raw[nonceSize:], []byte(SealedName))
	if oerr != nil {
		return nil, nonce, sent, fmt.Errorf("%w: sealed request does not authenticate", ErrDecrypt)
	}
	sent = time.UnixMilli(int64(binary.BigEndian.Uint64(pt[:8])))
	return pt[8:], nonce, sent, nil
}

// SealedWriter writes a reply in the authenticated scheme: records of up to
// 16 KiB as they fill (or on Flush), the final record on Close. A reply with
// no bytes still gets its final record, so the client can tell it from a
// cut connection.
type SealedWriter struct {
	w       io.Writer
	aead    cipher.AEAD
	seq     uint64
	buf     []byte
	out     []byte
	started bool
	closed  bool
}

// NewSealedWriter returns the reply writer for the request whose nonce is given.
func NewSealedWriter(w io.Writer, k AESKey, nonce [nonceSize]byte) *SealedWriter {
	return &SealedWriter{w: w, aead: k.derive(nonce[:], infoReply), buf: make([]byte, 1, 1+sealedRecord)}
}

func (s *SealedWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		c := min(len(p), 1+sealedRecord-len(s.buf))
		s.buf = append(s.buf, p[:c]...)
		p = p[c:]
		if len(s.buf) == 1+sealedRecord {
			if err := s.record(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func recordNonce(seq uint64) []byte {
	var n [nonceSize]byte
	binary.BigEndian.PutUint64(n[4:], seq)
	return n[:]
}

func (s *SealedWriter) record(final bool) error {
	if !s.started {
		s.started = true
		if _, err := io.WriteString(s.w, SealedReplyPrefix); err != nil {
			return err
		}
	}
	// The plaintext starts with the final flag, then the data; the
	// buffer keeps one byte in front for it.
	s.buf[0] = 0
	if final {
		s.buf[0] = 1
	}
	s.out = append(s.out[:0], 0, 0, 0, 0)
	s.out = s.aead.Seal(s.out, recordNonce(s.seq), s.buf, nil)
	binary.BigEndian.PutUint32(s.out, uint32(len(s.out)-4))
	s.seq++
	s.buf = s.buf[:1]
	_, err := s.w.Write(s.out)
	return err
}

// Flush sends what was written so far as a record and flushes the
// underlying writer when it can.
func (s *SealedWriter) Flush() error {
	if len(s.buf) > 1 {
		if err := s.record(false); err != nil {
			return err
		}
	}
	if f, ok := s.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// Close writes the final record. It does not close the underlying writer.
func (s *SealedWriter) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return s.record(true)
}

// ReplyReader returns the plaintext of the reply to this session's request,
// read from r positioned after SealedReplyPrefix. Records are checked as
// they arrive: a forged or reordered one is ErrBadReply, a reply cut before
// its final record io.ErrUnexpectedEOF; after the final record, io.EOF.
func (s *SealedSession) ReplyReader(r io.Reader) io.Reader {
	return &sealedReader{r: r, aead: s.key.derive(s.nonce[:], infoReply)}
}

type sealedReader struct {
	r    io.Reader
	aead cipher.AEAD
	seq  uint64
	hdr  [4]byte
	in   []byte
	out  []byte
	done bool
	err  error
}

func (s *sealedReader) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.done {
			return 0, io.EOF
		}
		s.err = s.next()
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

func (s *sealedReader) next() error {
	if _, err := io.ReadFull(s.r, s.hdr[:]); err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	n := int(binary.BigEndian.Uint32(s.hdr[:]))
	if n < s.aead.Overhead()+1 || n > maxSealedRecord {
		return fmt.Errorf("%w: sealed record of %d bytes", ErrBadReply, n)
	}
	if cap(s.in) < n {
		s.in = make([]byte, n)
	}
	s.in = s.in[:n]
	if _, err := io.ReadFull(s.r, s.in); err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	pt, err := s.aead.Open(s.in[:0], recordNonce(s.seq), s.in, nil)
	if err != nil || len(pt) == 0 || pt[0] > 1 {
		return fmt.Errorf("%w: sealed record %d does not authenticate", ErrBadReply, s.seq)
	}
	s.seq++
	s.out, s.done = pt[1:], pt[0] == 1
	return nil
}

// OpenReply decrypts a whole reply read until close: a sealed reply is
// authenticated (and must be complete), anything else (a plaintext refusal,
// or the CBC failure reply) is returned as is with sealed false.
func (s *SealedSession) OpenReply(reply []byte) (pt []byte, sealed bool, err error) {
	body, ok := bytes.CutPrefix(reply, []byte(SealedReplyPrefix))
	if !ok {
		return reply, false, nil
	}
	pt, err = io.ReadAll(s.ReplyReader(bytes.NewReader(body)))
	return pt, true, err
}
