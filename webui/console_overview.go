package webui

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"pbx-agent/webui/cdrquery"
)

// consoleBuckets bounds the series of the overview (one point per bucket).
const consoleBuckets = 60

// consoleOverview is GET /console/api/overview?hours=H[&fsensor_id=N]:
// per bucket of H hours / 60 (at least a minute) and per sensor, the
// calls, the answered ones, the summed talk time and the average MOS
// (mos_min); the page derives calls per minute, ASR and ACD. concurrent
// is, per sensor, the calls in progress during each bucket (from the CDRs:
// a call still going has no CDR yet); active is this agent's calls in
// progress now (with can_activecalls).
func (h *Handler) consoleOverview(w http.ResponseWriter, r *http.Request) {
	u, ok := h.needForm(w, r, CanCDR)
	if !ok {
		return
	}
	hours, err := formInt(r, "hours", 6, 1, 24*31)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sc, sargs, err := overviewSensorCond(u, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	step := max(60, hours*3600/consoleBuckets)
	n := hours * 3600 / step
	end := h.now().UTC().Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-time.Duration(hours) * time.Hour)
	q := "SELECT TIMESTAMPDIFF(SECOND, ?, c.calldate) DIV ? AS b, COALESCE(c.id_sensor,-1), COUNT(*), SUM(c.connect_duration IS NOT NULL), " +
		"COALESCE(SUM(c.connect_duration),0), AVG(NULLIF(c.mos_min_mult10,0))/10 FROM cdr c WHERE c.calldate >= ? AND c.calldate < ?" + sc +
		" GROUP BY b, c.id_sensor ORDER BY b, c.id_sensor"
	args := append([]any{cdrquery.SQLTime(start, h.o.Location), step, cdrquery.SQLTime(start, h.o.Location), cdrquery.SQLTime(end, h.o.Location)}, sargs...)
	rows, err := h.queryObjs(r.Context(), []string{"bucket", "sensor", "calls", "answered", "talk", "mos"}, 0, q, args...)
	if err != nil {
		h.fail(w, r, fmt.Errorf("overview: %w", err))
		return
	}
	conc, err := h.overviewConcurrent(r.Context(), start, end, step, n, sc, sargs)
	if err != nil {
		h.fail(w, r, fmt.Errorf("overview: concurrent calls: %w", err))
		return
	}
	var active any
	if h.o.Calls != nil && u.Rights.Has(CanActiveCalls) && u.SeesSensor(h.o.SensorID) {
		active = len(h.o.Calls.Active())
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, obj{{"success", true}, {"start", start.In(h.o.Location).Format("2006-01-02 15:04:05")}, {"start_unix", start.Unix()},
		{"step", step}, {"buckets", n}, {"series", rows}, {"concurrent", conc}, {"active", active}})
}

// overviewSensorCond is the user's sensors and the page's fsensor_id as SQL
// on cdr c.
func overviewSensorCond(u *User, r *http.Request) (string, []any, error) {
	sc, sargs := sensorCond(u)
	v := r.Form.Get("fsensor_id")
	if v == "" {
		return sc, sargs, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return "", nil, fmt.Errorf("%w: fsensor_id: %q is not a sensor id", ErrBadRequest, v)
	}
	return sc + " AND c.id_sensor = ?", append(sargs, n), nil
}

// consoleConcurrentSQL counts the calls that overlap the window by the
// first and the last bucket they overlap (clamped to the window, so at
// most (buckets+1)² groups per sensor) and by sensor. A call's last bucket
// is the one holding its last microsecond. The rows read are those of the
// callend index from the window's start to a day past its end (the window
// ends now: no CDR ends later, the day is for clocks), so a call that began
// before the window counts however long it lasted.
const consoleConcurrentSQL = "SELECT GREATEST(0, TIMESTAMPDIFF(MICROSECOND, ?, c.calldate) DIV ?) AS f, " +
	"LEAST(?, (TIMESTAMPDIFF(MICROSECOND, ?, c.callend) - 1) DIV ?) AS l, COALESCE(c.id_sensor,-1) AS s, COUNT(*) " +
	"FROM cdr c WHERE c.callend > ? AND c.callend < ? AND c.calldate < ?%s GROUP BY f, l, s ORDER BY s"

// overviewConcurrent is, per sensor, the number of calls in progress at
// some time during each of the n buckets of step seconds from start: a
// call counts in every bucket its [calldate, callend) overlaps (a call of
// no length in the bucket of its start).
func (h *Handler) overviewConcurrent(ctx context.Context, start, end time.Time, step, n int, sc string, sargs []any) ([]obj, error) {
	db, err := h.db()
	if err != nil {
		return nil, err
	}
	us := int64(step) * 1e6
	args := append([]any{cdrquery.SQLTime(start, h.o.Location), us, n, cdrquery.SQLTime(start, h.o.Location), us,
		cdrquery.SQLTime(start, h.o.Location), cdrquery.SQLTime(end.Add(24*time.Hour), h.o.Location), cdrquery.SQLTime(end, h.o.Location)}, sargs...)
	rs, err := db.QueryContext(ctx, fmt.Sprintf(consoleConcurrentSQL, sc), args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []obj
	var cur []int
	last := int64(-2)
	for rs.Next() {
		var f, l, s, count int64
		if err := rs.Scan(&f, &l, &s, &count); err != nil {
			return nil, err
		}
		if s != last {
			cur, last = make([]int, n), s
			out = append(out, obj{{"sensor", strconv.FormatInt(s, 10)}, {"calls", cur}})
		}
		addSpan(cur, int(f), int(l), int(count))
	}
	return out, rs.Err()
}

// addSpan adds count to the buckets first..last of b (last before first:
// first only), within b.
func addSpan(b []int, first, last, count int) {
	for i := max(first, 0); i <= min(max(last, first), len(b)-1); i++ {
		b[i] += count
	}
}

// consoleRegStateSQL: %s renders c.sipcallerip (cdrquery.IPText).
const consoleRegStateSQL = `SELECT c.to_num, c.to_domain, c.state, c.created_at, %s, c.sipcallerport,
 c.contact_num, c.contact_domain, c.expires, c.id_sensor, ua.ua
 FROM register_state c JOIN (SELECT MAX(ID) AS id FROM register_state WHERE created_at >= ? GROUP BY to_num, to_domain, id_sensor) m ON m.id = c.ID
 LEFT JOIN cdr_ua ua ON ua.id = c.ua_id WHERE TRUE`

// consoleRegFailedSQL: %[1]s renders c.sipcallerip, %[2]s is the last
// reason (the agent's register_failed column), or NULL on VoIPmonitor's table.
const consoleRegFailedSQL = `SELECT c.to_num, c.to_domain, c.id_sensor, SUM(c.counter), MAX(c.created_at),
 SUBSTRING_INDEX(GROUP_CONCAT(%[1]s ORDER BY c.ID DESC), ',', 1), %[2]s
 FROM register_failed c WHERE c.created_at >= ?`

const consoleRegFailedReason = `(SELECT f.reason FROM register_failed f WHERE f.ID = MAX(c.ID))`

// consoleRegistrations is GET /console/api/registrations?days=D: the last
// state of every AOR (register_state) and the failures per AOR with their
// count, last time, last source and last reason (register_failed), over D days
// (default 7), 1000 rows each at most.
func (h *Handler) consoleRegistrations(w http.ResponseWriter, r *http.Request) {
	u, ok := h.needForm(w, r, CanCDR)
	if !ok {
		return
	}
	days, err := formInt(r, "days", 7, 1, 366)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	since := cdrquery.SQLTime(h.now().Add(-time.Duration(days)*24*time.Hour), h.o.Location)
	sc, sargs := sensorCond(u)
	ctx := r.Context()
	v6, err := h.ipv6(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ip := cdrquery.IPText("c.sipcallerip", v6)
	states, err := h.queryObjs(ctx, []string{"aor", "domain", "state", "at", "ip", "port", "contact", "contact_domain", "expires", "sensor", "ua"}, 1000,
		fmt.Sprintf(consoleRegStateSQL, ip)+sc+" ORDER BY c.to_num, c.to_domain LIMIT 1001", append([]any{since}, sargs...)...)
	if err != nil {
		h.fail(w, r, fmt.Errorf("register_state: %w", err))
		return
	}
	failedSQL := consoleRegFailedSQL + sc + " GROUP BY c.to_num, c.to_domain, c.id_sensor ORDER BY SUM(c.counter) DESC LIMIT 1001"
	failedNames := []string{"aor", "domain", "sensor", "count", "last", "ip", "reason"}
	failed, err := h.queryObjs(ctx, failedNames, 1000, fmt.Sprintf(failedSQL, ip, consoleRegFailedReason), append([]any{since}, sargs...)...)
	if noAgentTable(err) {
		failed, err = h.queryObjs(ctx, failedNames, 1000, fmt.Sprintf(failedSQL, ip, "NULL"), append([]any{since}, sargs...)...)
	}
	if err != nil {
		h.fail(w, r, fmt.Errorf("register_failed: %w", err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, obj{{"success", true}, {"days", days}, {"states", states}, {"failed", failed}})
}
