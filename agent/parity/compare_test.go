package parity

import (
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

type kind uint8

const (
	exact  kind = iota // equal text, or equal numbers
	number             // |ours − ref| ≤ tol
	when               // datetimes, |ours − ref| ≤ tol seconds
)

// check is one compared column. name is the row key: a column, or
// "_joined.x" / "_ip_text.x" for lookup and IP texts.
type check struct {
	name string
	kind kind
	tol  float64
}

func ex(names ...string) []check {
	out := make([]check, len(names))
	for i, n := range names {
		out[i] = check{name: n}
	}
	return out
}

func num(tol float64, names ...string) []check {
	out := make([]check, len(names))
	for i, n := range names {
		out[i] = check{name: n, kind: number, tol: tol}
	}
	return out
}

func sides(f func(p string) []check) []check { return append(f("a_"), f("b_")...) }

func cat(lists ...[]check) []check {
	var out []check
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// The columns issue 12 lists, with its tolerances.
var (
	coreCDR = cat(
		[]check{{name: "calldate", kind: when, tol: 0.001}, {name: "callend", kind: when, tol: 0.001}},
		num(1, "duration", "connect_duration"),
		ex("caller", "called", "caller_domain", "called_domain", "callername",
			"_ip_text.sipcallerip", "sipcallerport", "_ip_text.sipcalledip", "sipcalledport",
			"whohanged", "bye", "lastSIPresponseNum", "_joined.lastSIPresponse", "reason_q850_cause",
			"_joined.a_ua", "_joined.b_ua"),
		sides(func(p string) []check {
			return cat(
				ex(p+"payload", "_ip_text."+p+"saddr", p+"received", p+"lost", p+"reordered"),
				num(2, p+"avgjitter_mult10"), num(1, p+"maxjitter"),
				ex(p+"sl1", p+"sl2", p+"sl3", p+"sl4", p+"sl5", p+"sl6", p+"sl7", p+"sl8", p+"sl9", p+"sl10",
					p+"d50", p+"d70", p+"d90", p+"d120", p+"d150", p+"d200", p+"d300"),
				num(3, p+"mos_f1_mult10", p+"mos_f2_mult10", p+"mos_adapt_mult10"),
			)
		}),
	)
	coreNext = ex("fbasename", "hold")
	coreRTP  = ex("index", "ssrc", "received", "loss")
	coreReg  = cat(
		[]check{{name: "created_at", kind: when, tol: 0.001}},
		ex("_ip_text.sipcallerip", "_ip_text.sipcalledip", "sipcallerport", "sipcalledport",
			"from_num", "to_num", "to_domain", "contact_num", "contact_domain",
			"digestusername", "digestrealm", "_joined.ua", "id_sensor"),
	)
	coreState  = cat(coreReg, ex("expires", "state"))
	coreFailed = cat(coreReg, ex("counter"))
)

// Columns outside issue 12's list, reported for information.
var (
	extraCDR = cat(
		ex("sighup", "a_index", "b_index", "payload", "lost", "vlan", "id_sensor", "reason_sip_cause",
			"_joined.reason_sip_text", "_joined.reason_q850_text", "caller_reverse", "called_reverse", "callername_reverse",
			"packet_loss_perc_mult1000", "a_packet_loss_perc_mult1000", "b_packet_loss_perc_mult1000",
			"response_time_100", "response_time_xxx"),
		num(0.001, "progress_time", "first_rtp_time", "post_bye_delay", "a_last_rtp_from_end", "b_last_rtp_from_end"),
		num(2, "jitter_mult10"),
		num(3, "mos_min_mult10", "a_mos_min_mult10", "b_mos_min_mult10",
			"a_mos_f1_min_mult10", "a_mos_f2_min_mult10", "a_mos_adapt_min_mult10",
			"b_mos_f1_min_mult10", "b_mos_f2_min_mult10", "b_mos_adapt_min_mult10"),
	)
	extraNext = ex("digest_username")
	extraRTP  = cat(ex("_ip_text.saddr", "sport", "_ip_text.daddr", "dport", "payload"),
		num(0.001, "firsttime", "duration"), num(2, "maxjitter_mult10"))
)

// Score counts agreeing values.
type Score struct{ Match, Total int }

// Pct is the share of agreeing values in percent (100 when nothing was compared).
func (s Score) Pct() float64 {
	if s.Total == 0 {
		return 100
	}
	return 100 * float64(s.Match) / float64(s.Total)
}

func (s *Score) add(ok bool) {
	s.Total++
	if ok {
		s.Match++
	}
}

// Diff is one value that does not agree.
type Diff struct {
	Capture string
	Row     string // what identifies the row: Call-ID, AOR…
	Column  string // "table.column"
	Ours    any
	Ref     any
	Core    bool   // one of issue 12's columns
	Reason  string // why the agent differs on purpose (DIFFERENCES.md); "" when it should not
}

// Report is the outcome of comparing one or more captures.
type Report struct {
	Core, Extra   map[string]*Score // by "table.column"
	order         []string
	PerCapture    map[string]*Score // core values per capture
	captureOrder  []string
	Diffs         []Diff
	CoreTotal     Score
	ExtraTotal    Score
	Deliberate    int            // core values that differ on purpose (Diff.Reason set)
	RowsRef, Rows map[string]int // row counts by table
	// Empty are the captures without a row on either side (nothing to
	// score; a row of ours would be a "(row)" difference).
	Empty []string
}

// NewReport returns an empty report.
func NewReport() *Report {
	return &Report{Core: map[string]*Score{}, Extra: map[string]*Score{}, PerCapture: map[string]*Score{},
		RowsRef: map[string]int{}, Rows: map[string]int{}}
}

func (r *Report) score(capture, rowKey, table string, c check, core bool, ours, ref any, oursRow Row) {
	key := table + "." + c.name
	m := r.Extra
	if core {
		m = r.Core
	}
	s := m[key]
	if s == nil {
		s = &Score{}
		m[key] = s
		if _, seen := r.Core[key]; !seen || core {
			r.order = append(r.order, key)
		}
	}
	ok := agree(c, ours, ref)
	s.add(ok)
	if core {
		r.CoreTotal.add(ok)
		pc := r.PerCapture[capture]
		if pc == nil {
			pc = &Score{}
			r.PerCapture[capture] = pc
			r.captureOrder = append(r.captureOrder, capture)
		}
		pc.add(ok)
	} else {
		r.ExtraTotal.add(ok)
	}
	if !ok {
		d := Diff{Capture: capture, Row: rowKey, Column: key, Ours: ours, Ref: ref, Core: core}
		d.Reason = deliberate(d, oursRow)
		if core && d.Reason != "" {
			r.Deliberate++
		}
		r.Diffs = append(r.Diffs, d)
	}
}

// agree applies a check's tolerance.
func agree(c check, ours, ref any) bool {
	if ours == nil || ref == nil {
		return ours == nil && ref == nil
	}
	o, r := fmt.Sprint(ours), fmt.Sprint(ref)
	switch c.kind {
	case when:
		to, e1 := parseTime(o)
		tr, e2 := parseTime(r)
		if e1 != nil || e2 != nil {
			return o == r
		}
		return math.Abs(to.Sub(tr).Seconds()) <= c.tol+1e-9
	default:
		fo, e1 := strconv.ParseFloat(o, 64)
		fr, e2 := strconv.ParseFloat(r, 64)
		if e1 != nil || e2 != nil {
			return o == r
		}
		return math.Abs(fo-fr) <= c.tol+1e-9
	}
}

// parseTime reads a stored datetime as a wall clock (in UTC): both sides
// were written in one zone (ReplayOptions.Location, the reference's UTC),
// so their difference is the instants' difference outside a DST change.
func parseTime(s string) (time.Time, error) {
	return time.Parse("2006-01-02 15:04:05.999999999", s)
}

// Compare scores the agent's rows against VoIPmonitor's for one capture.
func (r *Report) Compare(capture string, ours, ref Tables) {
	n := 0
	for _, t := range dataTables {
		r.RowsRef[t] += len(ref[t])
		r.Rows[t] += len(ours[t])
		n += len(ref[t]) + len(ours[t])
	}
	if n == 0 {
		r.Empty = append(r.Empty, capture)
	}
	refNext := byCDR(ref["cdr_next"])
	ourNext := byCDR(ours["cdr_next"])
	pairs := matchCDRs(ours["cdr"], ref["cdr"], ourNext, refNext)
	row := check{name: "(row)"}
	used := map[int]bool{}
	for i, rc := range ref["cdr"] {
		key := str(refNext[str(rc["ID"])]["fbasename"])
		j, ok := pairs[i]
		r.score(capture, key, "cdr", row, true, presence(ok), "present", nil)
		var oc Row
		if ok {
			used[j] = true
			oc = ours["cdr"][j]
		}
		for _, c := range coreCDR {
			r.score(capture, key, "cdr", c, true, oc[c.name], rc[c.name], oc)
		}
		for _, c := range extraCDR {
			r.score(capture, key, "cdr", c, false, oc[c.name], rc[c.name], oc)
		}
		var on Row
		if ok {
			on = ourNext[str(oc["ID"])]
		}
		rn := refNext[str(rc["ID"])]
		for _, c := range coreNext {
			r.score(capture, key, "cdr_next", c, true, on[c.name], rn[c.name], on)
		}
		for _, c := range extraNext {
			r.score(capture, key, "cdr_next", c, false, on[c.name], rn[c.name], on)
		}
		r.compareRTP(capture, key, childRows(ours["cdr_rtp"], str(oc["ID"]), ok), childRows(ref["cdr_rtp"], str(rc["ID"]), true))
		r.compareSIPResp(capture, key, childRows(ours["cdr_sipresp"], str(oc["ID"]), ok), childRows(ref["cdr_sipresp"], str(rc["ID"]), true))
	}
	for j, oc := range ours["cdr"] {
		if !used[j] {
			r.score(capture, str(ourNext[str(oc["ID"])]["fbasename"]), "cdr", row, true, "present", nil, oc)
		}
	}
	r.compareRegisters(capture, "register_state", ours["register_state"], ref["register_state"], coreState)
	r.compareRegisters(capture, "register_failed", ours["register_failed"], ref["register_failed"], coreFailed)
}

func presence(ok bool) any {
	if ok {
		return "present"
	}
	return nil
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func byCDR(rows []Row) map[string]Row {
	m := make(map[string]Row, len(rows))
	for _, r := range rows {
		m[str(r["cdr_ID"])] = r
	}
	return m
}

func childRows(rows []Row, id string, ok bool) []Row {
	if !ok {
		return nil
	}
	var out []Row
	for _, r := range rows {
		if str(r["cdr_ID"]) == id {
			out = append(out, r)
		}
	}
	return out
}

// matchCDRs pairs reference cdr rows (index) with ours: same fbasename
// (Call-ID), nearest calldate; failing that the same caller within 2 s.
func matchCDRs(ours, ref []Row, ourNext, refNext map[string]Row) map[int]int {
	pairs := map[int]int{}
	taken := map[int]bool{}
	pick := func(rc Row, ok func(oc Row) bool) (int, bool) {
		best, bestD := -1, math.Inf(1)
		rt, _ := parseTime(str(rc["calldate"]))
		for j, oc := range ours {
			if taken[j] || !ok(oc) {
				continue
			}
			ot, _ := parseTime(str(oc["calldate"]))
			if d := math.Abs(ot.Sub(rt).Seconds()); d < bestD {
				best, bestD = j, d
			}
		}
		return best, best >= 0
	}
	for i, rc := range ref {
		fb := str(refNext[str(rc["ID"])]["fbasename"])
		j, ok := pick(rc, func(oc Row) bool { return fb != "" && str(ourNext[str(oc["ID"])]["fbasename"]) == fb })
		if !ok {
			rt, _ := parseTime(str(rc["calldate"]))
			j, ok = pick(rc, func(oc Row) bool {
				ot, _ := parseTime(str(oc["calldate"]))
				return str(oc["caller"]) == str(rc["caller"]) && math.Abs(ot.Sub(rt).Seconds()) <= 2
			})
		}
		if ok {
			pairs[i] = j
			taken[j] = true
		}
	}
	return pairs
}

// compareRTP pairs cdr_rtp rows by SSRC and source port, else by index.
func (r *Report) compareRTP(capture, key string, ours, ref []Row) {
	row := check{name: "(row)"}
	taken := map[int]bool{}
	find := func(rr Row) Row {
		for _, same := range []func(o Row) bool{
			func(o Row) bool { return str(o["ssrc"]) == str(rr["ssrc"]) && str(o["sport"]) == str(rr["sport"]) },
			func(o Row) bool { return str(o["ssrc"]) == str(rr["ssrc"]) },
			func(o Row) bool { return str(o["index"]) == str(rr["index"]) },
		} {
			for j, o := range ours {
				if !taken[j] && same(o) {
					taken[j] = true
					return o
				}
			}
		}
		return nil
	}
	for _, rr := range ref {
		o := find(rr)
		r.score(capture, key, "cdr_rtp", row, true, presence(o != nil), "present", o)
		for _, c := range coreRTP {
			r.score(capture, key, "cdr_rtp", c, true, o[c.name], rr[c.name], o)
		}
		for _, c := range extraRTP {
			r.score(capture, key, "cdr_rtp", c, false, o[c.name], rr[c.name], o)
		}
	}
	for j := range ours {
		if !taken[j] {
			r.score(capture, key, "cdr_rtp", row, true, "present", nil, ours[j])
		}
	}
}

// compareSIPResp scores cdr_sipresp as a set of "code text" (information).
func (r *Report) compareSIPResp(capture, key string, ours, ref []Row) {
	have := map[string]int{}
	for _, o := range ours {
		have[str(o["SIPresponseNum"])+"|"+str(o["_joined.SIPresponse"])]++
	}
	c := check{name: "(response)"}
	for _, rr := range ref {
		k := str(rr["SIPresponseNum"]) + "|" + str(rr["_joined.SIPresponse"])
		ok := have[k] > 0
		if ok {
			have[k]--
			r.score(capture, key, "cdr_sipresp", c, false, str(rr["_joined.SIPresponse"]), str(rr["_joined.SIPresponse"]), nil)
		} else {
			r.score(capture, key, "cdr_sipresp", c, false, nil, str(rr["_joined.SIPresponse"]), nil)
		}
	}
	for k, n := range have {
		for ; n > 0; n-- {
			_, text, _ := strings.Cut(k, "|")
			r.score(capture, key, "cdr_sipresp", c, false, text, nil, nil)
		}
	}
}

// compareRegisters pairs rows with the same From user and source port,
// nearest in time (within a minute).
func (r *Report) compareRegisters(capture, table string, ours, ref []Row, checks []check) {
	row := check{name: "(row)"}
	taken := map[int]bool{}
	for _, rr := range ref {
		rt, _ := parseTime(str(rr["created_at"]))
		best, bestD := -1, 60.0
		for j, o := range ours {
			if taken[j] || str(o["from_num"]) != str(rr["from_num"]) {
				continue
			}
			ot, _ := parseTime(str(o["created_at"]))
			d := math.Abs(ot.Sub(rt).Seconds())
			if str(o["sipcallerport"]) != str(rr["sipcallerport"]) {
				d += 30
			}
			if d < bestD {
				best, bestD = j, d
			}
		}
		var o Row
		if best >= 0 {
			taken[best] = true
			o = ours[best]
		}
		key := str(rr["from_num"]) + "@" + str(rr["created_at"])
		r.score(capture, key, table, row, true, presence(o != nil), "present", o)
		for _, c := range checks {
			r.score(capture, key, table, c, true, o[c.name], rr[c.name], o)
		}
	}
	for j, o := range ours {
		if !taken[j] {
			if relayLeg(o, ours, taken) {
				o = maps.Clone(o)
				o["_relay_leg"] = true
			}
			r.score(capture, str(o["from_num"])+"@"+str(o["created_at"]), table, row, true, "present", nil, o)
		}
	}
}

// relayLeg reports whether an unmatched row of ours is the other leg of a
// REGISTER relayed by a proxy (D5): a matched row of the same number, within
// a second, from another address.
func relayLeg(o Row, ours []Row, taken map[int]bool) bool {
	ot, _ := parseTime(str(o["created_at"]))
	for j, m := range ours {
		if !taken[j] || str(m["from_num"]) != str(o["from_num"]) || str(m["sipcallerip"]) == str(o["sipcallerip"]) {
			continue
		}
		if mt, _ := parseTime(str(m["created_at"])); math.Abs(mt.Sub(ot).Seconds()) < 1 {
			return true
		}
	}
	return false
}

// Table renders the per-column agreement as a Markdown table: issue 12's
// columns first, then the others (information only).
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| column | agree | compared | %% |\n|---|---:|---:|---:|\n")
	keys := append([]string(nil), r.order...)
	sort.SliceStable(keys, func(i, j int) bool {
		_, ci := r.Core[keys[i]]
		_, cj := r.Core[keys[j]]
		return ci && !cj
	})
	seen := map[string]bool{}
	extraHeader := false
	for _, k := range keys {
		s, core := r.Core[k]
		if seen[k] {
			continue
		}
		seen[k] = true
		if !core {
			s = r.Extra[k]
			if !extraHeader {
				fmt.Fprintf(&b, "| **not in issue 12's list (information)** | | | |\n")
				extraHeader = true
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f |\n", k, s.Match, s.Total, s.Pct())
	}
	return b.String()
}

// Adjusted counts the values that differ on purpose (DIFFERENCES.md) as
// agreeing.
func (r *Report) Adjusted() Score {
	return Score{Match: r.CoreTotal.Match + r.Deliberate, Total: r.CoreTotal.Total}
}

// Summary is the one-line figure: core values agreeing.
func (r *Report) Summary() string {
	a := r.Adjusted()
	return fmt.Sprintf("issue 12 columns: %d of %d values agree (%.2f %%), %d differ on purpose (%.2f %% with them); other columns: %d of %d (%.2f %%)",
		r.CoreTotal.Match, r.CoreTotal.Total, r.CoreTotal.Pct(), r.Deliberate, a.Pct(),
		r.ExtraTotal.Match, r.ExtraTotal.Total, r.ExtraTotal.Pct())
}

// CaptureTable renders the core agreement per capture.
func (r *Report) CaptureTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| capture | agree | compared | %% |\n|---|---:|---:|---:|\n")
	for _, c := range r.captureOrder {
		s := r.PerCapture[c]
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f |\n", c, s.Match, s.Total, s.Pct())
	}
	if len(r.Empty) > 0 {
		fmt.Fprintf(&b, "\nNo row on either side (VoIPmonitor's and ours): %s.\n", strings.Join(r.Empty, ", "))
	}
	return b.String()
}

// DiffList renders every disagreeing value, core columns first.
func (r *Report) DiffList() string {
	d := append([]Diff(nil), r.Diffs...)
	sort.SliceStable(d, func(i, j int) bool { return d[i].Core && !d[j].Core })
	var b strings.Builder
	fmt.Fprintf(&b, "| capture | row | column | ours | VoIPmonitor | on purpose |\n|---|---|---|---|---|---|\n")
	for _, x := range d {
		col := x.Column
		if !x.Core {
			col += " (info)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", x.Capture, cell(x.Row), col, cell(x.Ours), cell(x.Ref), x.Reason)
	}
	return b.String()
}

func cell(v any) string {
	if v == nil {
		return "NULL"
	}
	s := strings.ReplaceAll(fmt.Sprint(v), "|", "\\|")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
