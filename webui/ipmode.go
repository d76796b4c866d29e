package webui

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync/atomic"
)

// ipMode remembers whether the database's IP columns are varbinary(16)
// (VoIPmonitor's ipv6 = yes: 4 bytes for IPv4, 16 for IPv6) or int unsigned
// (ipv6 = no). The rows are read as they were stored, whatever this agent's
// own ipv6 setting: the cdr table's sipcallerip decides, as in VoIPmonitor
// (its checkSchema takes the mode from that column).
type ipMode struct {
	known atomic.Bool
	v6    atomic.Bool
}

const ipModeSQL = `SELECT DATA_TYPE FROM information_schema.COLUMNS
 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'cdr' AND COLUMN_NAME = 'sipcallerip'`

// ipv6 reports whether the IP columns are varbinary. It asks the database
// once; until the cdr table exists (nothing to read yet) the answer is no
// and is asked again next time.
func (h *Handler) ipv6(ctx context.Context) (bool, error) {
	if h.ipm.known.Load() {
		return h.ipm.v6.Load(), nil
	}
	db, err := h.db()
	if err != nil {
		return false, err
	}
	var typ string
	err = db.QueryRowContext(ctx, ipModeSQL).Scan(&typ)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v6 := strings.Contains(strings.ToLower(typ), "binary")
	h.ipm.v6.Store(v6)
	h.ipm.known.Store(true)
	return v6, nil
}
