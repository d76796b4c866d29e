package cdrquery

import (
	"reflect"
	"testing"
	"time"
)

// TestConds pins the conditions sql.php's LISTING and api.php's tasks share.
func TestConds(t *testing.T) {
	day := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
	at := time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)
	tests := []struct {
		name  string
		build func(*Conds) error
		where string
		args  []any
	}{
		{"none", func(*Conds) error { return nil }, "", nil},
		{"since", func(c *Conds) error { c.Since("c.calldate", at); return nil },
			" WHERE c.calldate >= ?", []any{"2024-03-05 10:20:30.000"}},
		{"until time", func(c *Conds) error { c.Until("c.callend", at, false); return nil },
			" WHERE c.callend <= ?", []any{"2024-03-05 10:20:30.000"}},
		{"until date covers the day", func(c *Conds) error { c.Until("c.calldate", day, true); return nil },
			" WHERE c.calldate < ?", []any{"2024-03-06 00:00:00.000"}},
		{"text exact", func(c *Conds) error { return c.Text("caller", "c.caller", "1001") },
			" WHERE c.caller = ?", []any{"1001"}},
		{"text like", func(c *Conds) error { return c.Text("caller", "c.caller", "%01") },
			" WHERE c.caller LIKE ?", []any{"%01"}},
		{"text comma is not a list", func(c *Conds) error { return c.Text("called", "c.called", "1,2") },
			" WHERE c.called = ?", []any{"1,2"}},
		{"sensors nil", func(c *Conds) error { c.Sensors(nil); return nil }, "", nil},
		{"sensors none", func(c *Conds) error { c.Sensors([]int{}); return nil }, " WHERE FALSE", nil},
		{"in order", func(c *Conds) error {
			c.Add("c.ID >= ?", 7)
			c.Sensors([]int{1, 2})
			return nil
		}, " WHERE c.ID >= ? AND c.id_sensor IN (?,?)", []any{7, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Conds
			if err := tt.build(&c); err != nil {
				t.Fatal(err)
			}
			where, args := c.Where()
			if where != tt.where || !reflect.DeepEqual(args, tt.args) {
				t.Errorf("Where() = %q %v, want %q %v", where, args, tt.where, tt.args)
			}
		})
	}
	var c Conds
	long := string(make([]byte, 256))
	if _, ok := c.Text("caller", "c.caller", long).(*ParamError); !ok {
		t.Error("Text(256 bytes): want a *ParamError")
	}
}
