package wire

import (
	"context"
	"sync"
	"time"
)

// KeySource gives the manager AES key. ok is false when no key is configured
// anywhere (then plaintext is accepted on TCP). reload asks a database-backed
// source to re-read its row (VoIPmonitor does so after a failed decryption and
// for exists_aes_key). An error means "a key may exist but cannot be read": the
// server then refuses plaintext and fails encrypted requests.
type KeySource interface {
	ManagerKey(ctx context.Context, reload bool) (key AESKey, ok bool, err error)
}

// StaticKey is a KeySource for manager_aes_key / manager_aes_iv from the config.
type StaticKey AESKey

// ManagerKey implements KeySource.
func (k StaticKey) ManagerKey(context.Context, bool) (AESKey, bool, error) {
	return AESKey(k), true, nil
}

// CachedKeySource wraps a loader (e.g. the `system` table query) and caches
// its answer for ttl; reload bypasses the cache.
type CachedKeySource struct {
	load func(ctx context.Context) (AESKey, bool, error)
	ttl  time.Duration
	now  func() time.Time

	mu     sync.Mutex
	key    AESKey
	ok     bool
	err    error
	loaded time.Time
}

// NewCachedKeySource returns a KeySource calling load at most once per ttl
// (unless reload is asked).
func NewCachedKeySource(load func(ctx context.Context) (AESKey, bool, error), ttl time.Duration) *CachedKeySource {
	return &CachedKeySource{load: load, ttl: ttl, now: time.Now}
}

// ManagerKey implements KeySource.
func (c *CachedKeySource) ManagerKey(ctx context.Context, reload bool) (AESKey, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if reload || c.loaded.IsZero() || now.Sub(c.loaded) >= c.ttl {
		c.key, c.ok, c.err = c.load(ctx)
		c.loaded = now
	}
	return c.key, c.ok, c.err
}
