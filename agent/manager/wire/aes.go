package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// AES framing constants (spec §1.2).
const (
	// CipherName starts an encrypted request: CipherName + ":" + ciphertext + RequestSuffix.
	CipherName = "aes-128-cbc"
	// ReplyPrefix starts an encrypted reply.
	ReplyPrefix = "aes:"
	// RequestSuffix ends an encrypted request.
	RequestSuffix = ":sea"
	// MaxCipherNameLen: the first ':' of an encrypted request is within its first 20 bytes.
	MaxCipherNameLen = 20
)

// AESKey is the manager's pre-shared AES-128-CBC key and fixed IV.
type AESKey struct {
	Key [16]byte
	IV  [16]byte
	// Sealed makes clients (Exchange, DialStream, agent/sensors) use
	// pbx-agent's authenticated scheme (SealRequest) instead of
	// VoIPmonitor's CBC: set it for a peer known to be a pbx-agent.
	Sealed bool
}

// ParseAESKey decodes manager_aes_key / manager_aes_iv (base64 of 16 bytes each).
func ParseAESKey(keyB64, ivB64 string) (AESKey, error) {
	var k AESKey
	key, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		return k, fmt.Errorf("%w: key: %w", ErrBadKey, err)
	}
	iv, err := base64.StdEncoding.DecodeString(ivB64)
	if err != nil {
		return k, fmt.Errorf("%w: iv: %w", ErrBadKey, err)
	}
	// OpenSSL reads exactly 16 bytes; shorter input is undefined there, so refuse it.
	if len(key) < 16 || len(iv) < 16 {
		return k, fmt.Errorf("%w: key %d bytes, iv %d bytes, want 16", ErrBadKey, len(key), len(iv))
	}
	copy(k.Key[:], key)
	copy(k.IV[:], iv)
	return k, nil
}

// ParseManagerKeyJSON decodes the `system` table row `type='manager_key'`:
// content = {"key":"<base64>","iv":"<base64>"} as the GUI stores it.
func ParseManagerKeyJSON(content []byte) (AESKey, error) {
	var v struct {
		Key string `json:"key"`
		IV  string `json:"iv"`
	}
	if err := json.Unmarshal(content, &v); err != nil {
		return AESKey{}, fmt.Errorf("%w: system.manager_key: %w", ErrBadKey, err)
	}
	return ParseAESKey(v.Key, v.IV)
}

// GenerateAESKey makes a fresh key and IV from rand (crypto/rand.Reader in production).
func GenerateAESKey(rand io.Reader) (AESKey, error) {
	var k AESKey
	if _, err := io.ReadFull(rand, k.Key[:]); err != nil {
		return k, fmt.Errorf("manager: generate key: %w", err)
	}
	if _, err := io.ReadFull(rand, k.IV[:]); err != nil {
		return k, fmt.Errorf("manager: generate iv: %w", err)
	}
	return k, nil
}

// Base64 returns the key and IV as the config options manager_aes_key / manager_aes_iv expect.
func (k AESKey) Base64() (key, iv string) {
	return base64.StdEncoding.EncodeToString(k.Key[:]), base64.StdEncoding.EncodeToString(k.IV[:])
}

// EncryptRequest frames a command for an encrypted manager request:
// "aes-128-cbc:" + AES-CBC/PKCS#7(command) + ":sea". If the ciphertext happens
// to contain ":sea" (which would cut the request short on VoIPmonitor's side)
// spaces are appended to the command until it does not.
func (k AESKey) EncryptRequest(command []byte) []byte {
	pt := command
	for range 64 {
		ct := k.seal(pt)
		if !bytes.Contains(ct, []byte(RequestSuffix)) {
			out := make([]byte, 0, len(CipherName)+1+len(ct)+len(RequestSuffix))
			out = append(out, CipherName...)
			out = append(out, ':')
			out = append(out, ct...)
			return append(out, RequestSuffix...)
		}
		pt = append(pt[:len(pt):len(pt)], ' ')
	}
	// 64 collisions in a row cannot happen with a working cipher; send the last try.
	ct := k.seal(pt)
	return append(append([]byte(CipherName+":"), ct...), RequestSuffix...)
}

// DecryptReply decodes a full reply as read until close: "aes:" + ciphertext
// is decrypted, anything else (plaintext replies such as `need aes!`) is
// returned as is.
func (k AESKey) DecryptReply(reply []byte) ([]byte, error) {
	ct, ok := bytes.CutPrefix(reply, []byte(ReplyPrefix))
	if !ok {
		return reply, nil
	}
	return k.Decrypt(ct)
}

func (k AESKey) block() cipher.Block {
	b, err := aes.NewCipher(k.Key[:])
	if err != nil { // cannot happen: the key is always 16 bytes
		panic(fmt.Sprintf("wire: aes.NewCipher with 16-byte key: %v", err))
	}
	return b
}

// seal is AES-128-CBC with PKCS#7 padding.
func (k AESKey) seal(pt []byte) []byte {
	pad := aes.BlockSize - len(pt)%aes.BlockSize
	buf := make([]byte, len(pt)+pad)
	copy(buf, pt)
	for i := len(pt); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(k.block(), k.IV[:]).CryptBlocks(buf, buf)
	return buf
}

// Decrypt reverses the AES-128-CBC/PKCS#7 encryption of a request body
// (the ciphertext between CipherName+":" and RequestSuffix) and checks the
// padding; ErrDecrypt when it does not decrypt.
func (k AESKey) Decrypt(ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: ciphertext length %d", ErrDecrypt, len(ct))
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(k.block(), k.IV[:]).CryptBlocks(pt, ct)
	return Unpad(pt)
}

// Unpad removes the PKCS#7 padding of a decrypted reply or request (what
// NewReplyReader leaves in place); ErrDecrypt when the padding is bad.
func Unpad(pt []byte) ([]byte, error) {
	if len(pt) == 0 || len(pt)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: plaintext length %d", ErrDecrypt, len(pt))
	}
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, fmt.Errorf("%w: padding byte %d", ErrDecrypt, pad)
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrDecrypt)
		}
	}
	return pt[:len(pt)-pad], nil
}

// ReplyWriter encrypts a reply as one CBC stream: "aes:" before the first
// ciphertext byte, the PKCS#7 final block on Close. A reply with no bytes
// produces no output at all, as VoIPmonitor's (empty pausecall reply).
type ReplyWriter struct {
	w       io.Writer
	enc     cipher.BlockMode
	tail    [aes.BlockSize]byte
	ntail   int
	started bool
	buf     []byte
}

// NewReplyWriter returns a ReplyWriter encrypting to w with k.
func NewReplyWriter(w io.Writer, k AESKey) *ReplyWriter {
	return &ReplyWriter{w: w, enc: cipher.NewCBCEncrypter(k.block(), k.IV[:])}
}

func (a *ReplyWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := len(p)
	if !a.started {
		a.started = true
		if _, err := io.WriteString(a.w, ReplyPrefix); err != nil {
			return 0, err
		}
	}
	if a.ntail > 0 {
		c := copy(a.tail[a.ntail:], p)
		a.ntail += c
		p = p[c:]
		if a.ntail < aes.BlockSize {
			return n, nil
		}
		a.enc.CryptBlocks(a.tail[:], a.tail[:])
		if _, err := a.w.Write(a.tail[:]); err != nil {
			return 0, err
		}
		a.ntail = 0
	}
	full := len(p) - len(p)%aes.BlockSize
	if full > 0 {
		if cap(a.buf) < full {
			a.buf = make([]byte, min(full, 32<<10))
		}
		for off := 0; off < full; {
			chunk := min(full-off, cap(a.buf))
			b := a.buf[:chunk]
			a.enc.CryptBlocks(b, p[off:off+chunk])
			if _, err := a.w.Write(b); err != nil {
				return 0, err
			}
			off += chunk
		}
	}
	a.ntail = copy(a.tail[:], p[full:])
	return n, nil
}

// Close writes the final padded block. It does not close the underlying writer.
func (a *ReplyWriter) Close() error {
	if !a.started {
		return nil
	}
	pad := aes.BlockSize - a.ntail
	for i := a.ntail; i < aes.BlockSize; i++ {
		a.tail[i] = byte(pad)
	}
	a.enc.CryptBlocks(a.tail[:], a.tail[:])
	a.ntail = 0
	_, err := a.w.Write(a.tail[:])
	return err
}

// Flush pushes the ciphertext written so far to the underlying writer when
// it has a Flush method. Whole blocks are encrypted as they come, so only
// the bytes of an unfinished block (none when records are block multiples)
// stay behind.
func (a *ReplyWriter) Flush() error {
	if f, ok := a.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// NewReplyReader decrypts an encrypted reply's ciphertext (what follows
// ReplyPrefix) block by block as it arrives, for replies read as a stream
// (listen_stream). The PKCS#7 padding of the last block is not removed.
func NewReplyReader(r io.Reader, k AESKey) io.Reader {
	return &cbcReader{r: r, dec: cipher.NewCBCDecrypter(k.block(), k.IV[:])}
}

// cbcReader decrypts an AES-CBC stream block by block as it arrives.
type cbcReader struct {
	r       io.Reader
	dec     cipher.BlockMode
	in      [4096]byte
	nin     int
	out     []byte
	outBuf  [4096]byte
	lastErr error
}

func (c *cbcReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.lastErr != nil {
			return 0, c.lastErr
		}
		n, err := c.r.Read(c.in[c.nin:])
		c.nin += n
		full := c.nin - c.nin%aes.BlockSize
		if full > 0 {
			c.dec.CryptBlocks(c.outBuf[:full], c.in[:full])
			c.out = c.outBuf[:full]
			c.nin = copy(c.in[:], c.in[full:c.nin])
		}
		if err != nil {
			c.lastErr = err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}
