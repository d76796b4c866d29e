package webui

import (
	"context"
	"database/sql"
	"strconv"
	"time"
)

// scanStrings reads every row of rs as strings (nil for NULL) in column
// order, as PHP's mysqli returns them.
func scanStrings(rs *sql.Rows, max int) ([][]any, error) {
	cols, err := rs.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]any
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rs.Next() {
		if max > 0 && len(out) >= max {
			break
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]any, len(cols))
		for i, v := range vals {
			row[i] = dbString(v)
		}
		out = append(out, row)
	}
	return out, rs.Err()
}

// dbString renders a driver value the way the text protocol would.
func dbString(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		return string(x)
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "1"
		}
		return "0"
	case time.Time:
		return x.Format("2006-01-02 15:04:05.000")
	}
	return nil
}

// rowObj pairs column names with one row's values.
func rowObj(names []string, row []any) obj {
	o := make(obj, len(names))
	for i, n := range names {
		o[i] = kv{n, row[i]}
	}
	return o
}

func queryCount(ctx context.Context, db *sql.DB, q string, args ...any) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, q, args...).Scan(&n)
	return n, err
}
