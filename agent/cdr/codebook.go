package cdr

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Lookup tables VoIPmonitor keeps repeated strings in (spec §3.6).
const (
	lookupUA       = "cdr_ua"
	lookupResponse = "cdr_sip_response"
	lookupReason   = "cdr_reason"
)

// Reason types in cdr_reason (confirmed by voipmonitor-ref: 1 SIP, 2 Q.850).
const (
	reasonTypeSIP  = 1
	reasonTypeQ850 = 2
)

var lookupInsert = map[string]string{
	lookupUA:       "INSERT INTO `cdr_ua` (`ua`) VALUES (?) ON DUPLICATE KEY UPDATE `id` = LAST_INSERT_ID(`id`)",
	lookupResponse: "INSERT INTO `cdr_sip_response` (`lastSIPresponse`) VALUES (?) ON DUPLICATE KEY UPDATE `id` = LAST_INSERT_ID(`id`)",
	lookupReason:   "INSERT INTO `cdr_reason` (`type`, `reason`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `id` = LAST_INSERT_ID(`id`)",
}

var lookupWidth = map[string]int{lookupUA: 512, lookupResponse: 255, lookupReason: 255}

type codeKey struct {
	table string
	typ   int
	s     string
}

// codebook maps lookup strings to their ids, inserting a string the first
// time it is seen (INSERT … ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id),
// outside the CDR transaction so a rolled-back batch never leaves a cached id
// that does not exist).
type codebook struct {
	mu sync.Mutex
	m  map[codeKey]uint64
}

func newCodebook() *codebook { return &codebook{m: map[codeKey]uint64{}} }

// resolve returns the id of s in table (typ is cdr_reason's type, else 0);
// 0 for the empty string.
func (cb *codebook) resolve(ctx context.Context, db *sql.DB, table string, typ int, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	s = str(s, lookupWidth[table])
	k := codeKey{table, typ, s}
	cb.mu.Lock()
	v, ok := cb.m[k]
	cb.mu.Unlock()
	if ok {
		return v, nil
	}
	args := []any{s}
	if table == lookupReason {
		args = []any{typ, s}
	}
	res, err := db.ExecContext(ctx, lookupInsert[table], args...)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", table, s, err)
	}
	n, err := res.LastInsertId()
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q: no id (%v)", table, s, err)
	}
	cb.mu.Lock()
	cb.m[k] = uint64(n)
	cb.mu.Unlock()
	return uint64(n), nil
}

// reset forgets every id (after the database was replaced under us).
func (cb *codebook) reset() {
	cb.mu.Lock()
	clear(cb.m)
	cb.mu.Unlock()
}

// size is the number of cached strings.
func (cb *codebook) size() int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return len(cb.m)
}
