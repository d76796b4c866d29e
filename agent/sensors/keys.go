package sensors

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/manager/wire"
)

// DefaultKeyTTL is how long a key read from `system` is reused.
const DefaultKeyTTL = time.Minute

// System table types holding manager keys: VoIPmonitor's site-wide row, and
// the agent's per-sensor rows (manager_key_<id_sensor>), both with content
// {"key":"<base64>","iv":"<base64>"}.
const (
	systemKeyType       = "manager_key"
	systemSensorKeyType = "manager_key_"
)

// KeyID is a short, non-secret fingerprint of a key (sensors.agent_key_id),
// so an operator can see which sensors share the front end's key.
func KeyID(k wire.AESKey) string {
	h := sha256.New()
	h.Write(k.Key[:])
	h.Write(k.IV[:])
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// ParseSensorKey reads one sensor_manager_key option value:
// "<id_sensor>:<base64 key>:<base64 iv>".
func ParseSensorKey(v string) (int, wire.AESKey, error) {
	parts := strings.Split(strings.TrimSpace(v), ":")
	if len(parts) != 3 {
		return 0, wire.AESKey{}, fmt.Errorf("%w: %q: want <id_sensor>:<base64 key>:<base64 iv>", ErrBadKeyOption, v)
	}
	id, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || id < 0 || id > 65535 {
		return 0, wire.AESKey{}, fmt.Errorf("%w: %q: id_sensor is not 0-65535", ErrBadKeyOption, parts[0])
	}
	k, err := wire.ParseAESKey(strings.TrimSpace(parts[1]), strings.TrimSpace(parts[2]))
	if err != nil {
		return 0, wire.AESKey{}, fmt.Errorf("%w: sensor %d: %w", ErrBadKeyOption, id, err)
	}
	return id, k, nil
}

// Keys finds the manager key for talking to a sensor. Order: the sensor's
// key from the config (PerSensor), its `system` row (manager_key_<id>), the
// agent's own manager_aes_key (Default: one key for the whole site, as
// VoIPmonitor's GUI uses), the site-wide `system` row (manager_key). No key
// anywhere means plaintext.
type Keys struct {
	PerSensor map[int]wire.AESKey
	Default   *wire.AESKey
	DB        *sql.DB       // nil = no `system` lookups
	TTL       time.Duration // default DefaultKeyTTL

	mu    sync.Mutex
	cache map[string]keyEntry // system type → row
}

type keyEntry struct {
	key *wire.AESKey
	at  time.Time
}

// For returns the key for sensor id, nil for plaintext. reload re-reads the
// `system` rows (after the sensor rejected a key).
func (k *Keys) For(ctx context.Context, id int, reload bool) (*wire.AESKey, error) {
	if k == nil {
		return nil, nil
	}
	if key, ok := k.PerSensor[id]; ok {
		return &key, nil
	}
	key, err := k.system(ctx, systemSensorKeyType+strconv.Itoa(id), reload)
	if err != nil || key != nil {
		return key, err
	}
	if k.Default != nil {
		return k.Default, nil
	}
	return k.system(ctx, systemKeyType, reload)
}

func (k *Keys) system(ctx context.Context, typ string, reload bool) (*wire.AESKey, error) {
	if k.DB == nil {
		return nil, nil
	}
	ttl := k.TTL
	if ttl <= 0 {
		ttl = DefaultKeyTTL
	}
	k.mu.Lock()
	e, ok := k.cache[typ]
	k.mu.Unlock()
	if ok && !reload && time.Since(e.at) < ttl {
		return e.key, nil
	}
	// Not under the lock: a slow database must not serialise every sensor's lookup.
	var content string
	err := k.DB.QueryRowContext(ctx, "SELECT `content` FROM `system` WHERE `type` = ? ORDER BY `id` DESC LIMIT 1", typ).Scan(&content)
	var me *mysql.MySQLError
	var key *wire.AESKey
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.As(err, &me) && me.Number == 1146: // no row, no table
	case err != nil:
		return nil, fmt.Errorf("sensors: read system %s: %w", typ, err)
	default:
		v, err := wire.ParseManagerKeyJSON([]byte(content))
		if err != nil {
			return nil, fmt.Errorf("sensors: system %s: %w", typ, err)
		}
		key = &v
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cache == nil {
		k.cache = map[string]keyEntry{}
	}
	k.cache[typ] = keyEntry{key: key, at: time.Now()}
	return key, nil
}
