package cdrquery

import (
	"strings"
	"time"
)

// Conds is a WHERE clause on cdr rows (alias c), built one condition at a
// time. sql.php's LISTING (Query) and api.php's tasks build theirs with it,
// so a date bound, a caller match or the sensor restriction means the same
// SQL in both.
type Conds struct {
	// Location is the zone calldate/callend are stored in (VoIPmonitor's
	// local time, or UTC with utc = yes): Since and Until write their
	// bounds in it. nil = UTC.
	Location *time.Location

	conds []string
	args  []any
}

// Add appends one condition and its arguments.
func (c *Conds) Add(cond string, args ...any) {
	c.conds = append(c.conds, cond)
	c.args = append(c.args, args...)
}

// Since is col >= t.
func (c *Conds) Since(col string, t time.Time) {
	c.Add(col+" >= ?", SQLTime(t, c.Location))
}

// Until is col <= t, or col before the next day when t was given as a date
// only (the date covers its whole day).
func (c *Conds) Until(col string, t time.Time, dateOnly bool) {
	if dateOnly {
		c.Add(col+" < ?", SQLTime(t.AddDate(0, 0, 1), c.Location))
		return
	}
	c.Add(col+" <= ?", SQLTime(t, c.Location))
}

// Text matches col with v: equal, or LIKE when v holds a "%". A value
// longer than 255 bytes is a *ParamError naming param.
func (c *Conds) Text(param, col, v string) error {
	cond, args, err := textMatch(param, col, "", v, false)
	if err != nil {
		return err
	}
	c.Add(cond, args...)
	return nil
}

// Sensors restricts rows to a user's sensors (SensorCond); nil adds nothing.
func (c *Conds) Sensors(sensors []int) {
	if cond, args := SensorCond(sensors); cond != "" {
		c.Add(cond, args...)
	}
}

// Where returns the WHERE clause (with the leading " WHERE", or "") and its
// arguments.
func (c *Conds) Where() (string, []any) {
	if len(c.conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(c.conds, " AND "), c.args
}

// GroupSQL selects the SIP-response summary (GroupColumns()) of the rows
// matching c, largest group first, without a LIMIT.
func (c *Conds) GroupSQL() (string, []any) {
	w, args := c.Where()
	return selectList(groupColumns, false) + " FROM cdr c LEFT JOIN cdr_sip_response r ON r.id = c.lastSIPresponse_id" + w +
		" GROUP BY c.lastSIPresponseNum, c.lastSIPresponse_id ORDER BY COUNT(*) DESC, c.lastSIPresponseNum, c.lastSIPresponse_id", args
}
