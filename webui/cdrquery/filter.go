// Package cdrquery turns VoIPmonitor's CDR filter parameters (sql.php
// task=LISTING, admin.php?cdr_filter=) into parameterized SQL over
// VoIPmonitor's cdr tables.
//
// Only fixed SQL text chosen from whitelists is ever concatenated: every
// value from the request is a placeholder argument, sort properties are looked
// up in a table of known columns, and numbers and addresses are parsed before
// they become arguments. A value that does not parse is a *ParamError naming
// the parameter.
package cdrquery

import (
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/spool"
)

// Params is where filter values come from; url.Values satisfies it. An
// empty value means "not set", as in the GUI's form (which sends every field).
type Params interface {
	Get(key string) string
}

// Options tune Parse. The zero value is usable.
type Options struct {
	// Location is the time zone of fdatefrom/fdateto and of the stored
	// calldate (VoIPmonitor's local time, or UTC with utc = yes): a date in
	// a request means the same wall clock as in the table, as in
	// VoIPmonitor's GUI. nil = UTC.
	Location *time.Location
	// DefaultLimit is the page size without limit= (default 30, the GUI's).
	DefaultLimit int
	// MaxLimit caps limit= (default 5000); more is a *ParamError.
	MaxLimit int
	// Sensors, when not nil, restricts rows to these id_sensor values (a
	// user's enable_sensors).
	Sensors []int
	// RequireDate makes a request without fdatefrom and fdateto fail with
	// ErrNoDate (sql.php's rule, "due to mysql overloading").
	RequireDate bool
	// IPv6 says the IP columns are varbinary(16) (VoIPmonitor's ipv6 =
	// yes): IP filters then take IPv6 addresses and prefixes too.
	IPv6 bool
}

// Query is a parsed LISTING request.
type Query struct {
	Conds
	order []string

	Start, Limit int
	// Suppress is suppress_results=1: only the total is wanted.
	Suppress bool
	// Group is "lastSIPresponse" for the SIP-response summary, else "".
	Group string
	ipv6  bool // Options.IPv6
}

// Parse reads every filter of the CDR HTTP API from p.
func Parse(p Params, o Options) (*Query, error) {
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = 30
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = 5000
	}
	q := &Query{Conds: Conds{Location: o.Location}, ipv6: o.IPv6}
	steps := []func(Params, Options) error{
		q.dates, q.numbers, q.domains, q.callerName, q.sipIPs, q.rtpIPs, q.codecs,
		q.durations, q.responses, q.bools, q.trunk, q.agents, q.callID, q.sensors, q.rtp,
		q.paging, q.sort, q.group,
	}
	for _, step := range steps {
		if err := step(p, o); err != nil {
			return nil, err
		}
	}
	q.Sensors(o.Sensors)
	return q, nil
}

// SensorCond is the restriction of cdr rows (alias c) to a user's sensors
// (enable_sensors), shared by every query on cdr: "" when sensors is nil (no
// restriction), FALSE when it is empty.
func SensorCond(sensors []int) (string, []any) {
	switch {
	case sensors == nil:
		return "", nil
	case len(sensors) == 0:
		return "FALSE", nil
	}
	return "c.id_sensor IN (" + placeholders(len(sensors)) + ")", intsAny(sensors)
}

func (q *Query) in(col string, vals []any) {
	q.Add(col+" IN ("+placeholders(len(vals))+")", vals...)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func intsAny(v []int) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// --- dates ---------------------------------------------------------------

var dateLayouts = []string{
	"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04", "2006-01-02 15:04",
}

// ParseTime reads the datetime forms the GUI and api.php accept. dateOnly
// is true for "YYYY-MM-DD".
func ParseTime(s string, loc *time.Location) (t time.Time, dateOnly bool, ok bool) {
	s = strings.TrimSpace(s)
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t, true, true
	}
	for _, l := range dateLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, false, true
		}
	}
	return time.Time{}, false, false
}

// SQLTime formats t as a datetime(3) literal argument in loc, the zone of
// the stored times (nil = UTC).
func SQLTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04:05.000")
}

func (q *Query) dates(p Params, o Options) error {
	from, to := p.Get("fdatefrom"), p.Get("fdateto")
	if from == "" && to == "" {
		if o.RequireDate {
			return ErrNoDate
		}
		return nil
	}
	if from != "" {
		t, _, ok := ParseTime(from, o.Location)
		if !ok {
			return bad("fdatefrom", from, "not a date (YYYY-MM-DD[THH:MM:SS])")
		}
		q.Since("c.calldate", t)
	}
	if to != "" {
		t, dateOnly, ok := ParseTime(to, o.Location)
		if !ok {
			return bad("fdateto", to, "not a date (YYYY-MM-DD[THH:MM:SS])")
		}
		q.Until("c.calldate", t, dateOnly)
	}
	return nil
}

// --- text matches ----------------------------------------------------------

const maxValue = 255 // longest filter value (the varchar columns' size)

// textMatch is the condition for one text value on col: "%" makes it a LIKE
// pattern; a pattern that only starts with "%" uses the *_reverse column
// (indexed suffix search) when rev is given; a comma list (when list) is any
// of its items.
func textMatch(param, col, rev, v string, list bool) (string, []any, error) {
	if len(v) > maxValue*4 {
		return "", nil, bad(param, v, "value too long")
	}
	items := []string{v}
	if list && strings.Contains(v, ",") {
		items = items[:0]
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		if len(items) == 0 {
			return "", nil, bad(param, v, "empty list")
		}
	}
	var conds []string
	var args []any
	for _, it := range items {
		if len(it) > maxValue {
			return "", nil, bad(param, it, "value longer than 255 bytes")
		}
		switch {
		case !strings.Contains(it, "%"):
			conds = append(conds, col+" = ?")
			args = append(args, it)
		case rev != "" && strings.HasPrefix(it, "%") && !strings.Contains(it[1:], "%"):
			conds = append(conds, rev+" LIKE ?")
			args = append(args, reverse(it[1:])+"%")
		default:
			conds = append(conds, col+" LIKE ?")
			args = append(args, it)
		}
	}
	if len(conds) == 1 {
		return conds[0], args, nil
	}
	return "(" + strings.Join(conds, " OR ") + ")", args, nil
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// matcher builds the condition of one value on one column.
type matcher func(param, col, v string) (string, []any, error)

// pair applies the GUI's two-field filters (caller/called and the like).
// Without the type parameter each field filters its own column. Type 0: the
// first field's value is searched in either column (and a second field, if
// given, still filters its own column). Type 1: each field on its own column,
// both required.
func (q *Query) pair(p Params, pa, pb, ptype, colA, colB string, m matcher) error {
	a, b, typ := p.Get(pa), p.Get(pb), p.Get(ptype)
	if typ != "" && typ != "0" && typ != "1" {
		return bad(ptype, typ, "must be 0 (OR) or 1 (AND)")
	}
	if a != "" {
		ca, argsA, err := m(pa, colA, a)
		if err != nil {
			return err
		}
		if typ == "0" {
			cb, argsB, err := m(pa, colB, a)
			if err != nil {
				return err
			}
			q.Add("("+ca+" OR "+cb+")", append(argsA, argsB...)...)
		} else {
			q.Add(ca, argsA...)
		}
	}
	if b != "" {
		cb, args, err := m(pb, colB, b)
		if err != nil {
			return err
		}
		q.Add(cb, args...)
	}
	return nil
}

func listText(rev map[string]string) matcher {
	return func(param, col, v string) (string, []any, error) {
		return textMatch(param, col, rev[col], v, true)
	}
}

func (q *Query) numbers(p Params, _ Options) error {
	return q.pair(p, "fcaller", "fcalled", "fcallerd_type", "c.caller", "c.called",
		listText(map[string]string{"c.caller": "c.caller_reverse", "c.called": "c.called_reverse"}))
}

func (q *Query) domains(p Params, _ Options) error {
	return q.pair(p, "fcaller_domain", "fcalled_domain", "fcallerd_domain_type",
		"c.caller_domain", "c.called_domain", listText(nil))
}

func (q *Query) callerName(p Params, _ Options) error {
	v := p.Get("fcallername")
	if v == "" {
		return nil
	}
	c, args, err := textMatch("fcallername", "c.callername", "c.callername_reverse", v, false)
	if err != nil {
		return err
	}
	q.Add(c, args...)
	return nil
}

// --- addresses -------------------------------------------------------------

// ipMatch accepts a dotted IPv4 address, a CIDR prefix or a comma list of
// them; the cdr tables hold IPv4 as a 32-bit integer.
func ipMatch(param, col, v string) (string, []any, error) { return addrMatch(param, col, v, false) }

// ip6Match is ipMatch for varbinary(16) IP columns (ipv6 = yes), which
// hold an IPv4 address as 4 bytes and an IPv6 address as 16: IPv6
// addresses and prefixes are accepted too, and a prefix matches only
// addresses of its own family.
func ip6Match(param, col, v string) (string, []any, error) { return addrMatch(param, col, v, true) }

func addrMatch(param, col, v string, ipv6 bool) (string, []any, error) {
	var conds []string
	var args []any
	for _, it := range strings.Split(v, ",") {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		p, single, err := AddrOrPrefix(it)
		switch {
		case ipv6 && err != nil:
			return "", nil, bad(param, it, "not an IP address or prefix")
		case ipv6:
			lo, hi := prefixBytes(p)
			if single {
				conds = append(conds, col+" = ?")
				args = append(args, lo)
				continue
			}
			conds = append(conds, "("+col+" BETWEEN ? AND ? AND LENGTH("+col+") = "+strconv.Itoa(len(lo))+")")
			args = append(args, lo, hi)
			continue
		case err != nil || !p.Addr().Is4():
			return "", nil, bad(param, it, "not an IPv4 address or prefix")
		}
		lo := ip4(p.Addr())
		if single {
			conds = append(conds, col+" = ?")
			args = append(args, lo)
			continue
		}
		hi := lo | (1<<(32-p.Bits()) - 1)
		conds = append(conds, col+" BETWEEN ? AND ?")
		args = append(args, lo, hi)
	}
	if len(conds) == 0 {
		return "", nil, bad(param, v, "empty list")
	}
	if len(conds) == 1 {
		return conds[0], args, nil
	}
	return "(" + strings.Join(conds, " OR ") + ")", args, nil
}

// AddrOrPrefix parses an IP address or a CIDR prefix (the address filters'
// syntax). A prefix comes back masked; an address (an IPv4-mapped one
// unmapped) as its own host prefix, with single set.
func AddrOrPrefix(s string) (p netip.Prefix, single bool, err error) {
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
		return p.Masked(), false, err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true, nil
}

// prefixBytes are the lowest and highest address of p as a varbinary IP
// column holds them (4 bytes for IPv4, 16 for IPv6).
func prefixBytes(p netip.Prefix) (lo, hi []byte) {
	lo = p.Masked().Addr().AsSlice()
	hi = slices.Clone(lo)
	for i := p.Bits(); i < len(hi)*8; i++ {
		hi[i/8] |= 0x80 >> (i % 8)
	}
	return lo, hi
}

func ip4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (q *Query) sipIPs(p Params, o Options) error {
	return q.pair(p, "fsipcallerip", "fsipcalledip", "fsipcallerdip_type", "c.sipcallerip", "c.sipcalledip", ipMatcher(o))
}

func (q *Query) rtpIPs(p Params, o Options) error {
	return q.pair(p, "fa_saddr", "fb_saddr", "fab_saddr_type", "c.a_saddr", "c.b_saddr", ipMatcher(o))
}

func ipMatcher(o Options) matcher {
	if o.IPv6 {
		return ip6Match
	}
	return ipMatch
}

// --- numbers ---------------------------------------------------------------

// intList parses "4, 12" into ints within [lo, hi].
func intList(param, v string, lo, hi int64) ([]any, error) {
	var out []any
	for _, it := range strings.Split(v, ",") {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		n, err := strconv.ParseInt(it, 10, 64)
		if err != nil || n < lo || n > hi {
			return nil, bad(param, it, "not a whole number in ["+strconv.FormatInt(lo, 10)+", "+strconv.FormatInt(hi, 10)+"]")
		}
		out = append(out, n)
		if len(out) > 1000 {
			return nil, bad(param, v, "more than 1000 items")
		}
	}
	if len(out) == 0 {
		return nil, bad(param, v, "empty list")
	}
	return out, nil
}

// number parses a non-negative decimal no larger than hi.
func number(param, v string, hi float64) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > hi {
		return 0, bad(param, v, "not a number in [0, "+strconv.FormatFloat(hi, 'f', -1, 64)+"]")
	}
	return f, nil
}

func (q *Query) codecs(p Params, _ Options) error {
	v := p.Get("fcodec")
	if v == "" {
		return nil
	}
	vals, err := intList("fcodec", v, 0, 65535)
	if err != nil {
		return err
	}
	ph := placeholders(len(vals))
	q.Add("(c.a_payload IN ("+ph+") OR c.b_payload IN ("+ph+"))", append(vals, vals...)...)
	return nil
}

// rangeFilter applies a greater-than / less-than pair on col. When both are
// given and gt > lt (the seed's duration example: "less than 30 and greater
// than 10" written fdurationgt=30, fdurationlt=10) the pair is read as the
// range between them.
func (q *Query) rangeFilter(p Params, pgt, plt, col string) error {
	const hi = 999999.999
	var gt, lt float64
	var hasGT, hasLT bool
	var err error
	if v := p.Get(pgt); v != "" {
		if gt, err = number(pgt, v, hi); err != nil {
			return err
		}
		hasGT = true
	}
	if v := p.Get(plt); v != "" {
		if lt, err = number(plt, v, hi); err != nil {
			return err
		}
		hasLT = true
	}
	if hasGT && hasLT && gt > lt {
		gt, lt = lt, gt
	}
	if hasGT {
		q.Add(col+" > ?", gt)
	}
	if hasLT {
		q.Add(col+" < ?", lt)
	}
	return nil
}

func (q *Query) durations(p Params, _ Options) error {
	if err := q.rangeFilter(p, "fdurationgt", "fdurationlt", "c.duration"); err != nil {
		return err
	}
	return q.rangeFilter(p, "fpddgt", "fpddlt", "c.progress_time")
}

func (q *Query) responses(p Params, _ Options) error {
	v := p.Get("fsipresponse")
	if v == "" {
		return nil
	}
	vals, err := intList("fsipresponse", v, 0, 999)
	if err != nil {
		return err
	}
	q.in("c.lastSIPresponseNum", vals)
	return nil
}

// boolParam reads true/false/1/0/yes/no.
func boolParam(param, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, bad(param, v, "must be true or false")
}

// interruptedBye are the bye codes of a call that did not end with BYE and
// its 200 OK after being answered or tried: BYE without OK, and every
// timeout / forced end (spec §3.1).
const interruptedBye = "c.bye IN (2,100,101,102,103,104,105,106,107,108,109,110)"

// boolFilters are the yes/no filters: true keeps the rows matching cond,
// false the others (cond is never NULL, so the two split every row).
var boolFilters = []struct{ param, cond string }{
	{"fbye", interruptedBye},
	// The console's "has audio": the call carried RTP the sniffer captured,
	// so its recording is the spool's AUDIO file or is decoded from its RTP
	// pcap (the database does not record whether the cleaner removed them).
	{"fhasaudio", "(COALESCE(c.a_received, 0) > 0 OR COALESCE(c.b_received, 0) > 0)"},
	// A fax: payload 1000 (T.38) or 1001 (T.30), as VoIPmonitor writes it.
	{"ffax", "COALESCE(c.payload, 0) IN (1000, 1001)"},
}

func (q *Query) bools(p Params, _ Options) error {
	for _, f := range boolFilters {
		v := p.Get(f.param)
		if v == "" {
			continue
		}
		on, err := boolParam(f.param, v)
		if err != nil {
			return err
		}
		if on {
			q.Add(f.cond)
		} else {
			q.Add("NOT " + f.cond)
		}
	}
	return nil
}

// trunk: direction by trunk needs the GUI's trunk definitions, which the
// agent does not have; the value is validated and has no effect.
func (q *Query) trunk(p Params, _ Options) error {
	if v := p.Get("ftrunk"); v != "" {
		_, err := boolParam("ftrunk", v)
		return err
	}
	return nil
}

func uaMatch(param, col, v string) (string, []any, error) {
	c, args, err := textMatch(param, "ua", "", v, false)
	if err != nil {
		return "", nil, err
	}
	return col + " IN (SELECT id FROM cdr_ua WHERE " + c + ")", args, nil
}

func (q *Query) agents(p Params, _ Options) error {
	return q.pair(p, "fa_ua", "fb_ua", "fab_ua_type", "c.a_ua_id", "c.b_ua_id", uaMatch)
}

func (q *Query) callID(p Params, _ Options) error {
	v := p.Get("fcallid")
	if v == "" {
		return nil
	}
	c, args, err := textMatch("fcallid", "fbasename", "", spool.FBasename(v), false)
	if err != nil {
		return err
	}
	q.Add("c.ID IN (SELECT cdr_ID FROM cdr_next WHERE "+c+")", args...)
	return nil
}

func (q *Query) sensors(p Params, _ Options) error {
	v := p.Get("fsensor_id")
	if v == "" {
		return nil
	}
	vals, err := intList("fsensor_id", v, 0, 65535)
	if err != nil {
		return err
	}
	q.in("c.id_sensor", vals)
	return nil
}

// rtpFilter is one of the RTP quality thresholds: the row matches when stream
// A or B reaches it (>= for jitter, loss and delay; <= for MOS).
type rtpFilter struct {
	param  string
	a, b   string
	mult   float64
	hi     float64
	atMost bool
}

var rtpFilters = func() []rtpFilter {
	f := []rtpFilter{
		{"frtcp_maxjitter", "c.a_rtcp_maxjitter", "c.b_rtcp_maxjitter", 1, 65535, false},
		{"frtcp_avgjitter", "c.a_rtcp_avgjitter_mult10", "c.b_rtcp_avgjitter_mult10", 10, 6553, false},
		{"frtcp_maxfr", "c.a_rtcp_maxfr", "c.b_rtcp_maxfr", 1, 65535, false},
		{"frtcp_avgfr", "c.a_rtcp_avgfr_mult10", "c.b_rtcp_avgfr_mult10", 10, 6553, false},
		{"fmosf1", "c.a_mos_f1_mult10", "c.b_mos_f1_mult10", 10, 5, true},
		{"fmosf2", "c.a_mos_f2_mult10", "c.b_mos_f2_mult10", 10, 5, true},
		{"fmosadapt", "c.a_mos_adapt_mult10", "c.b_mos_adapt_mult10", 10, 5, true},
	}
	for _, d := range []string{"50", "70", "90", "120", "150", "200", "300"} {
		f = append(f, rtpFilter{"f_d" + d, "c.a_d" + d, "c.b_d" + d, 1, 16777215, false})
	}
	for i := 1; i <= 10; i++ {
		n := strconv.Itoa(i)
		f = append(f, rtpFilter{"floss" + n, "c.a_sl" + n, "c.b_sl" + n, 1, 16777215, false})
	}
	return f
}()

func (q *Query) rtp(p Params, _ Options) error {
	for _, f := range rtpFilters {
		v := p.Get(f.param)
		if v == "" {
			continue
		}
		x, err := number(f.param, v, f.hi)
		if err != nil {
			return err
		}
		op := " >= ?"
		if f.atMost {
			op = " <= ?"
		}
		x = math.Round(x*f.mult*1000) / 1000
		q.Add("("+f.a+op+" OR "+f.b+op+")", x, x)
	}
	if v := p.Get("ffilterTemplate"); v != "" {
		return bad("ffilterTemplate", v, "saved GUI filter templates are not available in pbx-agent; pass the filter fields instead")
	}
	return nil
}

// --- paging and order ------------------------------------------------------

func nonNegInt(param, v string, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > hi {
		return 0, bad(param, v, "not a whole number in [0, "+strconv.Itoa(hi)+"]")
	}
	return n, nil
}

func (q *Query) paging(p Params, o Options) error {
	q.Limit = o.DefaultLimit
	var err error
	if v := p.Get("limit"); v != "" {
		if q.Limit, err = nonNegInt("limit", v, o.MaxLimit); err != nil {
			return err
		}
	}
	if v := p.Get("suppress_results"); v != "" {
		if q.Suppress, err = boolParam("suppress_results", v); err != nil {
			return err
		}
	}
	const maxStart = 1 << 30
	switch {
	case p.Get("start") != "":
		q.Start, err = nonNegInt("start", p.Get("start"), maxStart)
	case p.Get("page") != "":
		var page int
		page, err = nonNegInt("page", p.Get("page"), maxStart)
		if err == nil && page > 0 {
			q.Start = (page - 1) * q.Limit
		}
	}
	return err
}

type sortItem struct {
	Property  string `json:"property"`
	Direction string `json:"direction"`
}

func (q *Query) sort(p Params, _ Options) error {
	for _, s := range specialOrders {
		v := p.Get(s.param)
		if v == "" {
			continue
		}
		on, err := boolParam(s.param, v)
		if err != nil {
			return err
		}
		if on {
			q.order = append(q.order, s.expr)
		}
	}
	if v := p.Get("sort"); v != "" {
		var items []sortItem
		if err := json.Unmarshal([]byte(v), &items); err != nil {
			var one sortItem
			if err2 := json.Unmarshal([]byte(v), &one); err2 != nil {
				return bad("sort", v, `not a JSON list like [{"property":"calldate2","direction":"DESC"}]`)
			}
			items = []sortItem{one}
		}
		if len(items) > 10 {
			return bad("sort", v, "more than 10 sort keys")
		}
		for _, it := range items {
			col, ok := sortable[it.Property]
			if !ok {
				return bad("sort", it.Property, "unknown sort property")
			}
			switch strings.ToUpper(it.Direction) {
			case "", "ASC":
				q.order = append(q.order, col+" ASC")
			case "DESC":
				q.order = append(q.order, col+" DESC")
			default:
				return bad("sort", it.Direction, "direction must be ASC or DESC")
			}
		}
	}
	return nil
}

func (q *Query) group(p Params, _ Options) error {
	v := p.Get("groupBy")
	if v == "" {
		v = p.Get("group")
	}
	switch v {
	case "":
	case "lastSIPresponse", "lastSIPresponseNum", "lastSIPresponse_id":
		q.Group = "lastSIPresponse"
	default:
		return bad("groupBy", v, "only lastSIPresponse grouping is supported")
	}
	return nil
}

// --- SQL -------------------------------------------------------------------

// CountSQL counts the matching rows.
func (q *Query) CountSQL() (string, []any) {
	w, args := q.Where()
	return "SELECT COUNT(*) FROM cdr c" + w, args
}

// ListSQL selects one page of rows with the fields of Columns().
func (q *Query) ListSQL() (string, []any) {
	var b strings.Builder
	b.WriteString(SelectSQL(q.ipv6))
	w, args := q.Where()
	b.WriteString(w)
	b.WriteString(" ORDER BY ")
	order := append(append([]string(nil), q.order...), "c.calldate DESC", "c.ID DESC")
	b.WriteString(strings.Join(order, ", "))
	b.WriteString(" LIMIT ? OFFSET ?")
	return b.String(), append(append([]any(nil), args...), q.Limit, q.Start)
}

// GroupSQL selects the SIP-response summary (GroupColumns()) and
// GroupCountSQL counts its groups.
func (q *Query) GroupSQL() (string, []any) {
	s, args := q.Conds.GroupSQL()
	return s + " LIMIT ? OFFSET ?", append(append([]any(nil), args...), q.Limit, q.Start)
}

// GroupCountSQL counts the groups of GroupSQL.
func (q *Query) GroupCountSQL() (string, []any) {
	w, args := q.Where()
	return "SELECT COUNT(*) FROM (SELECT 1 FROM cdr c" + w + " GROUP BY c.lastSIPresponseNum, c.lastSIPresponse_id) g", args
}
