package cdr

import (
	"context"
	"database/sql"
	"testing"
)

// countingExec records the statements insertRows sends.
type countingExec struct{ rows, bytes []int }

func (e *countingExec) ExecContext(_ context.Context, _ string, args ...any) (sql.Result, error) {
	n := 0
	for _, a := range args {
		if b, ok := a.([]byte); ok {
			n += len(b)
		}
	}
	e.rows, e.bytes = append(e.rows, len(args)/2), append(e.bytes, n)
	return countResult(len(args) / 2), nil
}

type countResult int64

func (r countResult) LastInsertId() (int64, error) { return 1, nil }
func (r countResult) RowsAffected() (int64, error) { return int64(r), nil }

// TestInsertRowsBoundsBytes: rows with large values (a batch of long calls'
// cdr_rtp_series) go in statements of at most maxStmtBytes of values, each
// row once; a row larger than the bound goes alone; small rows still go
// many to a statement.
func TestInsertRowsBoundsBytes(t *testing.T) {
	blob := func(n int) row { return row{{"k", int64(n)}, {"points", make([]byte, n)}} }
	for _, tc := range []struct {
		name      string
		rows      []row
		wantStmts int
	}{
		{"400 series of 39,600 bytes", repeatRow(blob(39600), 400), 16},
		{"one above the bound", []row{blob(100), blob(maxStmtBytes + 1), blob(100)}, 3},
		{"small rows", repeatRow(blob(100), 2000), 1},
	} {
		var e countingExec
		if _, err := insertRows(context.Background(), &e, "t", tc.rows); err != nil {
			t.Fatal(err)
		}
		total := 0
		for i, n := range e.rows {
			total += n
			if n > 1 && e.bytes[i] > maxStmtBytes {
				t.Errorf("%s: statement %d holds %d rows, %d bytes (bound %d)", tc.name, i, n, e.bytes[i], maxStmtBytes)
			}
		}
		if total != len(tc.rows) || len(e.rows) != tc.wantStmts {
			t.Errorf("%s: %d rows in %d statements, want %d in %d", tc.name, total, len(e.rows), len(tc.rows), tc.wantStmts)
		}
	}
}

func repeatRow(r row, n int) []row {
	out := make([]row, n)
	for i := range out {
		out[i] = r
	}
	return out
}
