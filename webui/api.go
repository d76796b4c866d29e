package webui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/sniffer/call"
	"pbx-agent/webui/cdrquery"
)

// apiTask is one api.php task and the right it needs. A task that changes
// state is refused on GET unless the request itself carries the user's
// credentials: a session cookie (or no authorization at all) rides along
// with any cross-site link a browser follows.
type apiTask struct {
	need    Rights
	run     func(h *Handler, w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error
	changes bool
}

var apiTasks = map[string]apiTask{
	"getVoipCalls":      {CanCDR, (*Handler).getVoipCalls, false},
	"getVoiceRecording": {CanDownloadAudio, (*Handler).getVoiceRecording, false},
	"listActiveCalls":   {CanActiveCalls, (*Handler).listActiveCalls, false},
	"handleActiveCall":  {CanHandleActiveCall, (*Handler).handleActiveCall, true},
	"reportSummary":     {CanCDR, (*Handler).reportSummary, false},
	"getShareURL":       {CanCDRShareLocalPublic, (*Handler).getShareURL, false},
	"getPCAP":           {CanPCAP, (*Handler).getPCAP, false},
	"listCdrIds":        {CanCDR, (*Handler).listCdrIds, false},
	"getFax":            {CanShowFax, (*Handler).getFax, false},
}

func taskNames() string {
	var n []string
	for k := range apiTasks {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// apiPHP is php/api.php.
func (h *Handler) apiPHP(w http.ResponseWriter, r *http.Request) {
	req, err := parseAPIRequest(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.apiUser(r, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	t, ok := apiTasks[req.Task]
	if !ok {
		h.fail(w, r, fmt.Errorf("%w: unknown task %q (tasks: %s)", ErrBadRequest, req.Task, taskNames()))
		return
	}
	if !u.Rights.Has(t.need) {
		h.fail(w, r, fmt.Errorf("%w: user %s lacks %v for %s", ErrForbidden, u.Name, (t.need&^u.Rights).Names(), req.Task))
		return
	}
	if t.changes && r.Method != http.MethodPost && (h.o.DisableAuth || req.User == "") {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, req.Task+" changes a call: send it with POST (or with user and password in the request)")
		return
	}
	err = t.run(h, w, r, u, req)
	result := "ok"
	if err != nil {
		result = clean(err)
		h.fail(w, r, err)
	}
	if req.AuditReason != "" || req.Task == "handleActiveCall" {
		e := auditEntry{At: h.now(), User: u.Name, Addr: clientAddr(r).String(), Via: requesterOf(r, u, req).Via, Task: req.Task,
			Params: req.rawParams, Reason: req.AuditReason, Result: result}
		if aerr := h.audit.write(context.WithoutCancel(r.Context()), e); aerr != nil {
			h.log.Error("audit log write failed", "task", req.Task, "user", u.Name, "err", aerr)
		}
	}
}

// requesterOf says who asks for an action through api.php: the user, the
// client's address, and the interface — the dashboard's buttons mark their
// requests with via=dashboard, anything else is an api.php client.
func requesterOf(r *http.Request, u *User, req *apiRequest) call.Requester {
	via := "api.php"
	if r.URL.Query().Get("via") == "dashboard" {
		via = "dashboard"
	}
	return call.Requester{User: u.Name, Source: clientAddr(r).String(), Via: via, Reason: req.AuditReason}
}

// apiUser authenticates an api.php call: user/password of the request
// (query, form or JSON body), else the session cookie.
func (h *Handler) apiUser(r *http.Request, req *apiRequest) (*User, error) {
	if h.o.DisableAuth {
		return anonymous, nil
	}
	if req.User != "" {
		return h.login(req.User, req.Password, clientAddr(r))
	}
	if u, ok := h.sessionUser(r); ok {
		return u, nil
	}
	return nil, ErrAuth
}

// sensorCond restricts a query on cdr c to the user's sensors.
func sensorCond(u *User) (string, []any) {
	cond, args := cdrquery.SensorCond(u.Sensors)
	if cond == "" {
		return "", nil
	}
	return " AND " + cond, args
}

// --- getVoipCalls ------------------------------------------------------------

var voipCallColumns = []struct{ name, expr string }{
	{"cdrId", "c.ID"}, {"id_sensor", "c.id_sensor"}, {"calldate", "c.calldate"}, {"callend", "c.callend"},
	{"duration", "c.duration"}, {"connect_duration", "c.connect_duration"},
	{"caller", "c.caller"}, {"called", "c.called"}, {"callername", "c.callername"},
	{"caller_domain", "c.caller_domain"}, {"called_domain", "c.called_domain"},
	{"sipcallerip", "c.sipcallerip"}, {"sipcalledip", "c.sipcalledip"}, // IP columns: cdrquery.IPText
	{"lastSIPresponseNum", "c.lastSIPresponseNum"}, {"lastSIPresponse", "r.lastSIPresponse"},
	{"bye", "c.bye"}, {"callId", "n.fbasename"},
}

var getVoipCallsKeys = map[string]bool{"startTime": true, "startTimeTo": true, "callEnd": true, "endTime": true,
	"caller": true, "called": true, "onlyConnected": true, "customHeaders": true}

// customHeader is a resolved custom header: its value column.
type customHeader struct {
	name string
	expr string // SQL expression built only from integers and fixed text
	join string
}

var headerNameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)

// resolveHeader finds a custom header in VoIPmonitor's cdr_custom_headers
// (dynamic headers live in cdr_next_<table>.custom_header_<column>).
func (h *Handler) resolveHeader(ctx context.Context, name string, alias int) (customHeader, error) {
	if !headerNameRE.MatchString(name) {
		return customHeader{}, fmt.Errorf("%w: %q is not a custom header name", ErrBadRequest, name)
	}
	db, err := h.db()
	if err != nil {
		return customHeader{}, err
	}
	var table, column int
	err = db.QueryRowContext(ctx, "SELECT dynamic_table, dynamic_column FROM cdr_custom_headers WHERE (name = ? OR header_field = ?) AND (state IS NULL OR state = 'active') ORDER BY id LIMIT 1", name, name).Scan(&table, &column)
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &me) && me.Number == 1146: // no such table
		return customHeader{}, fmt.Errorf("%w: unknown parameter or custom header %q (no custom headers are defined)", ErrBadRequest, name)
	case errors.Is(err, errNoRows):
		return customHeader{}, fmt.Errorf("%w: unknown parameter or custom header %q", ErrBadRequest, name)
	case err != nil:
		return customHeader{}, err
	}
	if table < 1 || table > 1000 || column < 1 || column > 100 {
		return customHeader{}, fmt.Errorf("%w: custom header %q has a bad definition", ErrBadRequest, name)
	}
	a := "h" + strconv.Itoa(alias)
	return customHeader{
		name: name,
		expr: a + ".custom_header_" + strconv.Itoa(column),
		join: " LEFT JOIN cdr_next_" + strconv.Itoa(table) + " " + a + " ON " + a + ".cdr_ID = c.ID",
	}, nil
}

func (h *Handler) parseTimeParam(p params, key string, required bool) (time.Time, bool, error) {
	s, err := p.str(key)
	if err != nil {
		return time.Time{}, false, err
	}
	if s == "" {
		if required {
			return time.Time{}, false, fmt.Errorf("%w: params.%s is required (YYYY-MM-DD[ HH:MM:SS])", ErrBadRequest, key)
		}
		return time.Time{}, false, nil
	}
	t, dateOnly, ok := cdrquery.ParseTime(s, h.o.Location)
	if !ok {
		return time.Time{}, false, fmt.Errorf("%w: params.%s: %q is not a date (YYYY-MM-DD[ HH:MM:SS])", ErrBadRequest, key, s)
	}
	return t, dateOnly, nil
}

func (h *Handler) getVoipCalls(w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error {
	ctx := r.Context()
	var all []obj
	seen := map[string]bool{}
	for _, p := range req.Params {
		rows, err := h.voipCalls(ctx, u, p)
		if err != nil {
			return err
		}
		for _, o := range rows {
			id, _ := o[0].v.(string)
			if !seen[id] {
				seen[id] = true
				all = append(all, o)
			}
		}
		if len(all) > h.o.MaxRows {
			return fmt.Errorf("%w: more than %d calls match; narrow the time range", ErrBadRequest, h.o.MaxRows)
		}
	}
	if all == nil {
		all = []obj{}
	}
	writeJSON(w, http.StatusOK, obj{{"success", true}, {"total", strconv.Itoa(len(all))}, {"cdr", all}})
	return nil
}

func (h *Handler) voipCalls(ctx context.Context, u *User, p params) ([]obj, error) {
	q := voipCallsQuery{Conds: cdrquery.Conds{Location: h.o.Location}}
	if err := h.voipCallsTimes(p, &q); err != nil {
		return nil, err
	}
	if err := voipCallsParties(p, &q); err != nil {
		return nil, err
	}
	if err := h.voipCallsHeaders(ctx, p, &q); err != nil {
		return nil, err
	}
	q.Sensors(u.Sensors)
	v6, err := h.ipv6(ctx)
	if err != nil {
		return nil, err
	}
	q.ipv6 = v6
	query, args, names := q.sql()
	args = append(args, h.o.MaxRows+1)
	db, err := h.db()
	if err != nil {
		return nil, err
	}
	rs, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("getVoipCalls: %w", err)
	}
	defer rs.Close()
	rows, err := scanStrings(rs, 0)
	if err != nil {
		return nil, fmt.Errorf("getVoipCalls: %w", err)
	}
	out := make([]obj, 0, len(rows))
	for _, row := range rows {
		o := rowObj(names, row[:len(names)])
		if len(q.headers) > 0 {
			ho := obj{}
			for i, ch := range q.headers {
				ho = append(ho, kv{ch.name, row[len(names)+i]})
			}
			o = append(o, kv{"customHeaders", ho})
		}
		out = append(out, o)
	}
	return out, nil
}

// voipCallsQuery is getVoipCalls' SELECT as its parameters build it.
type voipCallsQuery struct {
	cdrquery.Conds
	joins   []string
	headers []customHeader // custom headers asked in the output
	alias   int            // next custom header table alias
	ipv6    bool           // the IP columns are varbinary(16)
}

// voipCallsTimes: startTime (required), startTimeTo, callEnd/endTime; a
// date without a time covers that whole day.
func (h *Handler) voipCallsTimes(p params, q *voipCallsQuery) error {
	from, _, err := h.parseTimeParam(p, "startTime", true)
	if err != nil {
		return err
	}
	q.Since("c.calldate", from)
	for _, k := range []struct{ key, col string }{{"startTimeTo", "c.calldate"}, {"callEnd", "c.callend"}, {"endTime", "c.callend"}} {
		t, dateOnly, err := h.parseTimeParam(p, k.key, false)
		if err != nil {
			return err
		}
		if !t.IsZero() {
			q.Until(k.col, t, dateOnly)
		}
	}
	return nil
}

// voipCallsParties: caller and called (exact, or LIKE with a %), onlyConnected.
func voipCallsParties(p params, q *voipCallsQuery) error {
	for _, k := range []struct{ key, col string }{{"caller", "c.caller"}, {"called", "c.called"}} {
		v, err := p.str(k.key)
		if err != nil {
			return err
		}
		if v == "" {
			continue
		}
		if len(v) > 255 {
			return fmt.Errorf("%w: params.%s: longer than 255 bytes", ErrBadRequest, k.key)
		}
		if err := q.Text(k.key, k.col, v); err != nil {
			return err
		}
	}
	if on, err := p.flag("onlyConnected"); err != nil {
		return err
	} else if on {
		q.Add("c.connect_duration IS NOT NULL")
	}
	return nil
}

// voipCallsHeaders: any other parameter searches a custom header by name;
// customHeaders lists the custom headers to return.
func (h *Handler) voipCallsHeaders(ctx context.Context, p params, q *voipCallsQuery) error {
	var searchKeys []string
	for k := range p {
		if !getVoipCallsKeys[k] {
			searchKeys = append(searchKeys, k)
		}
	}
	sort.Strings(searchKeys)
	for _, k := range searchKeys {
		ch, err := h.resolveHeader(ctx, k, q.alias)
		if err != nil {
			return err
		}
		q.alias++
		v, err := p.str(k)
		if err != nil {
			return err
		}
		q.joins = append(q.joins, ch.join)
		q.Add(ch.expr+" = ?", v)
	}
	s, err := p.str("customHeaders")
	if err != nil || s == "" {
		return err
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		ch, err := h.resolveHeader(ctx, name, q.alias)
		if err != nil {
			return err
		}
		q.alias++
		q.joins = append(q.joins, ch.join)
		q.headers = append(q.headers, ch)
	}
	return nil
}

// sql is the SELECT with a LIMIT placeholder, its arguments but the limit,
// and the names of the fixed columns.
func (q *voipCallsQuery) sql() (string, []any, []string) {
	var b strings.Builder
	b.WriteString("SELECT ")
	names := make([]string, 0, len(voipCallColumns))
	for i, c := range voipCallColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		if c.name == "sipcallerip" || c.name == "sipcalledip" {
			b.WriteString(cdrquery.IPText(c.expr, q.ipv6))
		} else {
			b.WriteString(c.expr)
		}
		names = append(names, c.name)
	}
	for _, ch := range q.headers {
		b.WriteString(", " + ch.expr)
	}
	b.WriteString(" FROM cdr c LEFT JOIN cdr_next n ON n.cdr_ID = c.ID LEFT JOIN cdr_sip_response r ON r.id = c.lastSIPresponse_id")
	b.WriteString(strings.Join(q.joins, ""))
	where, args := q.Where()
	b.WriteString(where + " ORDER BY c.calldate, c.ID LIMIT ?")
	return b.String(), args, names
}

// --- listCdrIds --------------------------------------------------------------

func (h *Handler) listCdrIds(w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error {
	pr := paramReader{p: req.Params[0]}
	offset, size := pr.num("offset", 0, 0, 1<<62), pr.num("size", 100, 1, int64(h.o.MaxRows))
	if pr.err != nil {
		return pr.err
	}
	simple, iso := req.Flags&0x01 != 0, req.Flags&0x02 != 0
	var c cdrquery.Conds
	c.Add("c.ID >= ?", offset)
	c.Sensors(u.Sensors)
	where, args := c.Where()
	q := "SELECT c.ID, c.calldate, n.fbasename, c.caller, c.called, c.duration, c.connect_duration, c.lastSIPresponseNum, c.id_sensor FROM cdr c LEFT JOIN cdr_next n ON n.cdr_ID = c.ID" + where + " ORDER BY c.ID LIMIT ?"
	db, err := h.db()
	if err != nil {
		return err
	}
	rs, err := db.QueryContext(r.Context(), q, append(args, size)...)
	if err != nil {
		return fmt.Errorf("listCdrIds: %w", err)
	}
	defer rs.Close()
	rows, err := scanStrings(rs, 0)
	if err != nil {
		return fmt.Errorf("listCdrIds: %w", err)
	}
	out := make([]obj, 0, len(rows))
	for _, row := range rows {
		date := row[1]
		if iso {
			date = h.isoDate(row[1])
		}
		if simple {
			out = append(out, obj{{"cdrId", row[0]}, {"calldate", date}})
			continue
		}
		out = append(out, obj{{"cdrId", row[0]}, {"calldate", date}, {"callId", row[2]}, {"caller", row[3]},
			{"called", row[4]}, {"duration", row[5]}, {"connect_duration", row[6]},
			{"lastSIPresponseNum", row[7]}, {"id_sensor", row[8]}})
	}
	writeJSON(w, http.StatusOK, obj{{"success", true}, {"total", strconv.Itoa(len(out))}, {"cdr", out}})
	return nil
}

// isoDate turns a stored datetime (in the zone of stored times) into ISO
// 8601 with its offset (PHP's date('c'), with milliseconds when the column
// has them). In a DST fall-back hour the wall clock names two instants;
// the earlier one is taken, as Go's time.Date does.
func (h *Handler) isoDate(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	t, err := time.ParseInLocation("2006-01-02 15:04:05.999", s, h.o.Location)
	if err != nil {
		return v
	}
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05-07:00")
	}
	return t.Format("2006-01-02T15:04:05.000-07:00")
}

// --- reportSummary -----------------------------------------------------------

var summaryColumns = []struct{ name, expr string }{
	{"cnt_all", "COUNT(*)"},
	{"cnt_connected", "SUM(c.connect_duration IS NOT NULL)"},
	{"duration_all", "ROUND(COALESCE(SUM(c.connect_duration),0))"},
	{"acd_all", "ROUND(SUM(c.connect_duration) / NULLIF(SUM(c.connect_duration IS NOT NULL),0), 4)"},
	{"asr_all", "SUM(c.connect_duration IS NOT NULL) / NULLIF(COUNT(*),0) * 100"},
	{"mos_all", "AVG(c.mos_min_mult10 / 10)"},
	{"packets_lost_all", "AVG(c.packet_loss_perc_mult1000 / 1000)"},
	{"jitter_all", "AVG(c.jitter_mult10 / 10)"},
	{"delay_all", "AVG(c.delay_avg_mult100)"},
}

func (h *Handler) reportSummary(w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error {
	p := req.Params[0]
	name, err := p.str("report_name")
	if err != nil {
		return err
	}
	from, _, err := h.parseTimeParam(p, "datetime_from", true)
	if err != nil {
		return err
	}
	to, toDate, err := h.parseTimeParam(p, "datetime_to", true)
	if err != nil {
		return err
	}
	asJSON := true
	if _, ok := p["json"]; ok {
		if asJSON, err = p.flag("json"); err != nil {
			return err
		}
	}
	c := cdrquery.Conds{Location: h.o.Location}
	c.Since("c.calldate", from)
	c.Until("c.calldate", to, toDate)
	c.Sensors(u.Sensors)
	where, args := c.Where()
	if toDate {
		to = to.AddDate(0, 0, 1) // the reply's datetime_to is the bound used
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	names := make([]string, len(summaryColumns))
	for i, c := range summaryColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.expr)
		names[i] = c.name
	}
	b.WriteString(" FROM cdr c" + where)
	sum, err := h.queryObjs(r.Context(), names, 1, b.String(), args...)
	if err != nil {
		return fmt.Errorf("reportSummary: %w", err)
	}
	groupSQL, _ := c.GroupSQL()
	groups, err := h.queryObjs(r.Context(), cdrquery.GroupColumns(), 0, groupSQL+" LIMIT 1000", args...)
	if err != nil {
		return fmt.Errorf("reportSummary: %w", err)
	}
	fromS, toS := from.Format("2006-01-02 15:04:05"), to.Format("2006-01-02 15:04:05")
	if !asJSON {
		writeReportHTML(w, name, fromS, toS, names, sum, groups)
		return nil
	}
	var summary any = obj{}
	if len(sum) == 1 {
		summary = sum[0]
	}
	writeJSON(w, http.StatusOK, obj{{"success", true}, {"report_name", name}, {"datetime_from", fromS},
		{"datetime_to", toS}, {"summary", summary}, {"by_sip_response", groups}})
	return nil
}

// --- active calls ------------------------------------------------------------

func (h *Handler) listActiveCalls(w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error {
	if h.o.Calls == nil && h.o.Remote == nil {
		return fmt.Errorf("%w: no call table (the sniffer is not running)", ErrUnavailable)
	}
	p := req.Params[0]
	sensor, err := p.num("sensorId", -1, -1, 65535)
	if err != nil {
		return err
	}
	if sensor >= 0 && !u.SeesSensor(int(sensor)) {
		return fmt.Errorf("%w: user %s may not see sensor %d", ErrForbidden, u.Name, sensor)
	}
	out := []obj{}
	// This agent's calls only for a user allowed its sensor (enable_sensors).
	local := (sensor < 0 || h.o.SensorID < 0 || sensor == int64(h.o.SensorID)) && u.SeesSensor(h.o.SensorID)
	if h.o.Calls != nil && local {
		now := h.o.CallsNow() // an active call lasts until now (the capture's clock in a replay)
		for _, c := range h.o.Calls.Active() {
			s := c.Summary(h.o.SensorID, now)
			out = append(out, h.activeCallObj(&s, now))
		}
	}
	if h.o.Remote == nil || (sensor >= 0 && h.o.SensorID >= 0 && sensor == int64(h.o.SensorID)) {
		writeJSON(w, http.StatusOK, obj{{"success", true}, {"total", strconv.Itoa(len(out))}, {"results", out}})
		return nil
	}
	out, sensors, err := h.remoteActive(r.Context(), u, sensor, out)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, obj{{"success", true}, {"total", strconv.Itoa(len(out))}, {"results", out}, {"sensors", sensors}})
	return nil
}

// activeCallObj is one listActiveCalls result: a call of this sensor or of
// another one, rendered from the same summary.
func (h *Handler) activeCallObj(c *call.Summary, now time.Time) obj {
	var connect any
	if c.Connected {
		connect = strconv.FormatInt(int64(c.ConnectDuration/time.Second), 10)
	}
	var dur int64
	if !c.CallDate.IsZero() {
		dur = int64(max(0, now.Sub(c.CallDate)) / time.Second)
	}
	return obj{
		{"callreference", fmt.Sprintf("0x%x", c.Ref)},
		{"callid", c.CallID},
		{"calldate", c.CallDate.In(h.o.Location).Format("2006-01-02 15:04:05")},
		{"duration", strconv.FormatInt(dur, 10)},
		{"connect_duration", connect},
		{"caller", c.Caller}, {"called", c.Called}, {"callername", c.CallerName},
		{"callerdomain", c.CallerDomain}, {"calleddomain", c.CalledDomain},
		{"calleragent", c.CallerUA}, {"calledagent", c.CalledUA},
		{"callerip", addrString(c.CallerIP.String())}, {"calledip", addrString(c.CalledIP.String())},
		{"lastSIPresponseNum", strconv.Itoa(c.LastSIPResponseNum)},
		{"id_sensor", sensorString(c.Sensor)},
	}
}

func addrString(s string) any {
	if s == "invalid IP" {
		return nil
	}
	return s
}

func sensorString(id int) any {
	if id < 0 {
		return nil
	}
	return strconv.Itoa(id)
}

// parseCallRef reads "0x7f0e4c3c2680" (or plain hex digits).
func parseCallRef(s string) (uint64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	n, err := strconv.ParseUint(t, 16, 64)
	if err != nil || t == "" {
		return 0, fmt.Errorf("%w: params.callRef: %q is not a call reference like 0x7f0e4c3c2680", ErrBadRequest, s)
	}
	return n, nil
}

func (h *Handler) handleActiveCall(w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error {
	if h.o.Calls == nil && h.o.Remote == nil {
		return fmt.Errorf("%w: no call table (the sniffer is not running)", ErrUnavailable)
	}
	p := req.Params[0]
	cmd, err := p.str("command")
	if err != nil {
		return err
	}
	var on bool
	switch cmd {
	case "pausecall":
		on = true
	case "unpausecall":
	default:
		return fmt.Errorf("%w: params.command must be pausecall or unpausecall, not %q", ErrBadRequest, cmd)
	}
	refS, err := p.str("callRef")
	if err != nil {
		return err
	}
	ref, err := parseCallRef(refS)
	if err != nil {
		return err
	}
	sensor, err := p.num("sensorId", -1, -1, 65535)
	if err != nil {
		return err
	}
	remote := sensor >= 0 && (h.o.Calls == nil || h.o.SensorID >= 0 && sensor != int64(h.o.SensorID))
	if remote && h.o.Remote != nil {
		if !u.SeesSensor(int(sensor)) {
			return fmt.Errorf("%w: user %s may not handle calls of sensor %d", ErrForbidden, u.Name, sensor)
		}
		if err := h.o.Remote.Pause(r.Context(), int(sensor), ref, on); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, obj{{"success", true}, {"command", cmd}, {"callRef", fmt.Sprintf("0x%x", ref)}})
		return nil
	}
	if sensor >= 0 && h.o.SensorID >= 0 && sensor != int64(h.o.SensorID) {
		return fmt.Errorf("%w: sensor %d is not this agent (id_sensor %d)", ErrNotFound, sensor, h.o.SensorID)
	}
	if h.o.Calls == nil {
		return fmt.Errorf("%w: no call table here; give params.sensorId of the sensor that has the call", ErrBadRequest)
	}
	if !u.SeesSensor(h.o.SensorID) {
		return fmt.Errorf("%w: user %s may not handle calls of sensor %d", ErrForbidden, u.Name, h.o.SensorID)
	}
	if err := h.o.Calls.Pause(call.WithRequester(r.Context(), requesterOf(r, u, req)), ref, on); err != nil {
		if errors.Is(err, call.ErrNoCall) {
			return fmt.Errorf("%w: call 0x%x is not active", ErrNotFound, ref)
		}
		// The request was good: Asterisk did not answer in time, or some
		// of its actions failed (the audit table says which).
		return fmt.Errorf("%w: pause 0x%x: %v", ErrUnavailable, ref, err)
	}
	writeJSON(w, http.StatusOK, obj{{"success", true}, {"command", cmd}, {"callRef", fmt.Sprintf("0x%x", ref)}})
	return nil
}
