package webui

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/sniffer/rtp"
	"pbx-agent/webui/cdrquery"
)

// The call detail's Asterisk side and quality over time, from the agent's
// own tables beside VoIPmonitor's (agent/cdr asterisk.go): cdr_asterisk (a
// CDR's channel, Linkedid and hang-up cause) and cdr_rtp_series (each
// stream's quality per second). A database the agent's writer never
// migrated (VoIPmonitor's sniffer writes the CDRs) has neither: the page
// then groups legs by caller and time and shows no chart.

// noAgentTable reports a query on a table or column the database lacks.
func noAgentTable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1146 || me.Number == 1054)
}

// consoleLinkedid is the Linkedid stored with CDR id, "" when none.
func (h *Handler) consoleLinkedid(ctx context.Context, id uint64) (string, error) {
	db, err := h.db()
	if err != nil {
		return "", err
	}
	var l sql.NullString
	err = db.QueryRowContext(ctx, "SELECT linkedid FROM cdr_asterisk WHERE cdr_ID = ?", id).Scan(&l)
	switch {
	case errors.Is(err, errNoRows) || noAgentTable(err):
		return "", nil
	case err != nil:
		return "", err
	}
	return l.String, nil
}

// consoleLegs are the call's legs: the CDRs that share its Asterisk
// Linkedid when it has one, else (no AMI, or a call Asterisk did not
// handle) CDRs of the same caller number that started within
// consoleLegWindow of it (VoIPmonitor's by-CID grouping). It returns the
// Linkedid ("" for the fallback).
func (h *Handler) consoleLegs(ctx context.Context, u *User, c cdrRef) ([]cdrRef, string, error) {
	linked, err := h.consoleLinkedid(ctx, c.ID)
	if err != nil {
		return nil, "", err
	}
	var refs []cdrRef
	switch {
	case linked != "":
		refs, err = h.queryCDRRefs(ctx, u, "c.ID IN (SELECT cdr_ID FROM cdr_asterisk WHERE linkedid = ?)", linked)
	case c.Caller != "":
		refs, err = h.queryCDRRefs(ctx, u, "c.caller = ? AND c.calldate BETWEEN ? AND ?", c.Caller,
			cdrquery.SQLTime(c.CallDate.Add(-consoleLegWindow), h.o.Location), cdrquery.SQLTime(c.CallDate.Add(consoleLegWindow), h.o.Location))
	}
	if err != nil {
		return nil, "", err
	}
	for _, x := range refs {
		if x.ID == c.ID {
			return refs, linked, nil
		}
	}
	return append([]cdrRef{c}, refs...), linked, nil
}

var consoleAsteriskNames = []string{"cdr_id", "linkedid", "uniqueid", "channel", "hangup_cause", "hangup_cause_text",
	"accountcode", "context", "exten", "match"}

// consoleAsterisk is the cdr_asterisk row of each leg that has one.
func (h *Handler) consoleAsterisk(ctx context.Context, ids []any) ([]obj, error) {
	rows, err := h.queryObjs(ctx, consoleAsteriskNames, 1000,
		"SELECT cdr_ID, linkedid, uniqueid, channel, hangup_cause, hangup_cause_text, accountcode, context, exten, match_by FROM cdr_asterisk WHERE cdr_ID IN ("+
			strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+") ORDER BY cdr_ID", ids...)
	if noAgentTable(err) {
		return nil, nil
	}
	return rows, err
}

// consoleSeries is the quality per second of CDR id's streams: per stream
// its cdr_rtp index, the first point's offset from the call's start (s),
// the step (s) and the points as columns t (s from the call's start),
// received, lost, jitter (ms), mos.
func (h *Handler) consoleSeries(ctx context.Context, ref cdrRef) ([]obj, error) {
	db, err := h.db()
	if err != nil {
		return nil, err
	}
	rs, err := db.QueryContext(ctx, "SELECT `index`, `start`, step, points FROM cdr_rtp_series WHERE cdr_ID = ? ORDER BY `index` LIMIT 64", ref.ID)
	if noAgentTable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []obj
	for rs.Next() {
		var index, step int
		var start string
		var b []byte
		if err := rs.Scan(&index, &start, &step, &b); err != nil {
			return nil, err
		}
		st, _, ok := cdrquery.ParseTime(start, h.o.Location)
		if !ok {
			return nil, fmt.Errorf("series of CDR %d stream %d: start %q", ref.ID, index, start)
		}
		var s rtp.Series
		if err := s.UnmarshalBinary(b); err != nil {
			h.log.Warn("console: stored series unreadable", "id", ref.ID, "index", index, "err", err)
			continue
		}
		off := st.Sub(ref.CallDate).Seconds()
		cols := [5][]float64{}
		for _, p := range s.Points {
			cols[0] = append(cols[0], off+float64(p.T))
			cols[1] = append(cols[1], float64(p.Received))
			cols[2] = append(cols[2], float64(p.Lost))
			cols[3] = append(cols[3], float64(p.Jitter))
			cols[4] = append(cols[4], float64(p.MOS))
		}
		out = append(out, obj{{"index", strconv.Itoa(index)}, {"offset", off}, {"step", step},
			{"t", cols[0]}, {"received", cols[1]}, {"lost", cols[2]}, {"jitter", cols[3]}, {"mos", cols[4]}})
	}
	return out, rs.Err()
}
