package webui

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/spool"
	"pbx-agent/webui/cdrquery"
)

var errNoRows = sql.ErrNoRows

// cdrRef is what the media routes need to know of one CDR.
type cdrRef struct {
	ID              uint64
	CallDate        time.Time
	Basename        string
	Sensor          int
	Caller          string
	Duration        float64
	ConnectDuration float64 // -1 when not answered
	FirstRTP        float64
}

const cdrRefSelect = "SELECT c.ID, c.calldate, COALESCE(n.fbasename,''), COALESCE(c.id_sensor,-1), COALESCE(c.caller,''), " +
	"COALESCE(c.duration,0), COALESCE(c.connect_duration,-1), COALESCE(c.first_rtp_time,0) FROM cdr c LEFT JOIN cdr_next n ON n.cdr_ID = c.ID"

// scanCDRRefs reads CDR references; calldate is read as stored, in loc
// (the zone of stored times).
func scanCDRRefs(rs *sql.Rows, loc *time.Location) ([]cdrRef, error) {
	var out []cdrRef
	for rs.Next() {
		var c cdrRef
		var date any
		var dur, conn, first string
		if err := rs.Scan(&c.ID, &date, &c.Basename, &c.Sensor, &c.Caller, &dur, &conn, &first); err != nil {
			return nil, err
		}
		switch d := date.(type) {
		case time.Time:
			// A driver that parses times does so in its own Loc: keep the
			// wall clock, which is loc's.
			c.CallDate = time.Date(d.Year(), d.Month(), d.Day(), d.Hour(), d.Minute(), d.Second(), d.Nanosecond(), loc)
		case []byte:
			t, err := time.ParseInLocation("2006-01-02 15:04:05.999", string(d), loc)
			if err != nil {
				return nil, fmt.Errorf("calldate %q: %w", d, err)
			}
			c.CallDate = t
		}
		c.Duration, _ = strconv.ParseFloat(dur, 64)
		c.ConnectDuration, _ = strconv.ParseFloat(conn, 64)
		c.FirstRTP, _ = strconv.ParseFloat(first, 64)
		out = append(out, c)
	}
	return out, rs.Err()
}

func (h *Handler) queryCDRRefs(ctx context.Context, u *User, where string, args ...any) ([]cdrRef, error) {
	var c cdrquery.Conds
	c.Add(where, args...)
	return h.cdrRefs(ctx, u, "", &c)
}

// cdrRefs selects the first 100 CDRs (with join) matching c and visible to u.
func (h *Handler) cdrRefs(ctx context.Context, u *User, join string, c *cdrquery.Conds) ([]cdrRef, error) {
	db, err := h.db()
	if err != nil {
		return nil, err
	}
	c.Sensors(u.Sensors)
	where, args := c.Where()
	rs, err := db.QueryContext(ctx, cdrRefSelect+join+where+" ORDER BY c.calldate, c.ID LIMIT 100", args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	return scanCDRRefs(rs, h.o.Location)
}

// cdrByID finds one CDR (visible to u).
func (h *Handler) cdrByID(ctx context.Context, u *User, id uint64) (cdrRef, error) {
	refs, err := h.queryCDRRefs(ctx, u, "c.ID = ?", id)
	if err != nil {
		return cdrRef{}, err
	}
	if len(refs) == 0 {
		return cdrRef{}, fmt.Errorf("%w: no CDR with id %d", ErrNotFound, id)
	}
	return refs[0], nil
}

func parseID(param, s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: %s: %q is not a CDR id", ErrBadRequest, param, s)
	}
	return n, nil
}

// legs finds the CDRs of a call by Call-ID and, with interval > 0, its
// other legs "by CID": CDRs of the same caller number that started within
// interval seconds of it (how the GUI groups the legs of one call).
func (h *Handler) legs(ctx context.Context, u *User, callID string, interval int64) ([]cdrRef, error) {
	if callID == "" {
		return nil, fmt.Errorf("%w: params.callId is required", ErrBadRequest)
	}
	if len(callID) > 255 {
		return nil, fmt.Errorf("%w: params.callId longer than 255 bytes", ErrBadRequest)
	}
	base, err := h.queryCDRRefs(ctx, u, "c.ID IN (SELECT cdr_ID FROM cdr_next WHERE fbasename = ?)", spool.FBasename(callID))
	if err != nil {
		return nil, err
	}
	if len(base) == 0 {
		return nil, fmt.Errorf("%w: no CDR with Call-ID %q", ErrNotFound, callID)
	}
	if interval <= 0 {
		return base, nil
	}
	first := base[0]
	d := time.Duration(interval) * time.Second
	c := cdrquery.Conds{Location: h.o.Location}
	c.Add("c.caller = ?", first.Caller) // the stored number, never a pattern
	c.Since("c.calldate", first.CallDate.Add(-d))
	c.Until("c.calldate", first.CallDate.Add(d), false)
	more, err := h.cdrRefs(ctx, u, "", &c)
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	var out []cdrRef
	for _, c := range append(base, more...) {
		if !seen[c.ID] {
			seen[c.ID] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// byCustomHeader finds CDRs by a custom header value on a day.
func (h *Handler) byCustomHeader(ctx context.Context, u *User, name, value string, day time.Time) ([]cdrRef, error) {
	ch, err := h.resolveHeader(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	c := cdrquery.Conds{Location: h.o.Location}
	c.Add(ch.expr+" = ?", value)
	c.Since("c.calldate", day)
	c.Until("c.calldate", day, true)
	refs, err := h.cdrRefs(ctx, u, ch.join, &c)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%w: no CDR with %s = %q on %s", ErrNotFound, name, value, day.Format("2006-01-02"))
	}
	return refs, nil
}

var _ = errors.New
