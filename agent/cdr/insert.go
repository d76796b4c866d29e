package cdr

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// maxArgs keeps a statement under MySQL's 65535 placeholders even when the
// driver does not interpolate.
const maxArgs = 60000

// maxStmtBytes bounds the byte and string values of one statement (a row
// larger than it goes alone): cdr_rtp_series rows are up to 39 KB each, and
// a batch of long calls would otherwise exceed the server's
// max_allowed_packet (4 MiB on MySQL 5.7, 16 MiB on MariaDB), failing the
// same batch on every retry.
var maxStmtBytes = 1 << 20

// valueBytes is the size of r's byte and string values.
func valueBytes(r row) int {
	n := 0
	for _, c := range r {
		switch v := c.v.(type) {
		case []byte:
			n += len(v)
		case string:
			n += len(v)
		}
	}
	return n
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertRows writes rows (all with the same columns in the same order) to
// table with multi-row INSERTs. It returns, per statement, the first
// auto-increment id and the number of rows, so callers can number them.
func insertRows(ctx context.Context, ex execer, table string, rows []row) ([]chunkResult, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	cols := rows[0]
	for i, r := range rows {
		if len(r) != len(cols) {
			return nil, fmt.Errorf("%s row %d: %d columns, want %d", table, i, len(r), len(cols))
		}
		for j := range r {
			if r[j].name != cols[j].name {
				return nil, fmt.Errorf("%s row %d: column %d is %s, want %s", table, i, j, r[j].name, cols[j].name)
			}
		}
	}
	per := max(1, maxArgs/len(cols))
	var head strings.Builder
	head.WriteString("INSERT INTO `")
	head.WriteString(table)
	head.WriteString("` (")
	for j, c := range cols {
		if j > 0 {
			head.WriteByte(',')
		}
		head.WriteByte('`')
		head.WriteString(c.name)
		head.WriteByte('`')
	}
	head.WriteString(") VALUES ")
	tuple := "(" + strings.Repeat("?,", len(cols)-1) + "?)"

	var out []chunkResult
	for start, end := 0, 0; start < len(rows); start = end {
		for size := 0; end < len(rows) && end-start < per; end++ {
			n := valueBytes(rows[end])
			if end > start && size+n > maxStmtBytes {
				break
			}
			size += n
		}
		var q strings.Builder
		q.Grow(head.Len() + (end-start)*(len(tuple)+1))
		q.WriteString(head.String())
		args := make([]any, 0, (end-start)*len(cols))
		for i := start; i < end; i++ {
			if i > start {
				q.WriteByte(',')
			}
			q.WriteString(tuple)
			for _, c := range rows[i] {
				args = append(args, c.v)
			}
		}
		res, err := ex.ExecContext(ctx, q.String(), args...)
		if err != nil {
			return out, fmt.Errorf("insert %s: %w", table, err)
		}
		first, _ := res.LastInsertId()
		n, _ := res.RowsAffected()
		if n != int64(end-start) {
			return out, fmt.Errorf("insert %s: %d rows affected, want %d", table, n, end-start)
		}
		out = append(out, chunkResult{first: uint64(first), n: end - start})
	}
	return out, nil
}

type chunkResult struct {
	first uint64
	n     int
}

// ids numbers the rows of consecutive multi-row inserts: with
// innodb_autoinc_lock_mode 0 or 1 a multi-row INSERT … VALUES gets
// consecutive ids, step auto_increment_increment.
func ids(chunks []chunkResult, step uint64) []uint64 {
	var out []uint64
	for _, c := range chunks {
		for i := 0; i < c.n; i++ {
			out = append(out, c.first+uint64(i)*step)
		}
	}
	return out
}
