package wire

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrBadKey reports a manager AES key or IV that is not base64 of 16 bytes.
	ErrBadKey = errors.New("manager: bad aes key")
	// ErrDecrypt reports a ciphertext that does not decrypt (wrong key, bad padding, bad length).
	ErrDecrypt = errors.New("manager: aes decrypt failed")
	// ErrBadReply reports a reply or listen_stream record that cannot be decoded.
	ErrBadReply = errors.New("manager: bad reply")
)
