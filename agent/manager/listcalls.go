package manager

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/call"
)

// callRow is one call being rendered: its summary and the time zone of its dates.
type callRow struct {
	s   call.Summary
	loc *time.Location
	key sortKey // the sort column's cell (sortRows)
}

// newCallRow summarises c once for the request.
func newCallRow(c *call.CDR, loc *time.Location, sensor int, now time.Time) callRow {
	return callRow{s: c.Summary(sensor, now), loc: loc}
}

// lastPacket is the call's last packet, its start before any.
func (r *callRow) lastPacket() time.Time {
	if r.s.LastPacket.IsZero() {
		return r.s.CallDate
	}
	return r.s.LastPacket
}

// rtpSrc / rtpDst are the caller's stream addresses (else the callee's, reversed).
func (r *callRow) rtpSrc() netip.Addr {
	switch a, b := &r.s.RTP[call.SideA], &r.s.RTP[call.SideB]; {
	case a.Present:
		return a.Src.Addr()
	case b.Present:
		return b.Dst.Addr()
	}
	return netip.Addr{}
}

func (r *callRow) rtpDst() netip.Addr {
	switch a, b := &r.s.RTP[call.SideA], &r.s.RTP[call.SideB]; {
	case a.Present:
		return a.Dst.Addr()
	case b.Present:
		return b.Src.Addr()
	}
	return netip.Addr{}
}

// wholeSeconds truncates a duration to whole seconds, never negative.
func wholeSeconds(d time.Duration) int64 { return max(0, int64(d/time.Second)) }

// column is one listcalls column: its name and how its value is encoded.
type column struct {
	name string
	enc  func(b []byte, r *callRow) []byte
}

func appendNull(b []byte, _ *callRow) []byte { return append(b, "null"...) }

func constInt(v int) func([]byte, *callRow) []byte {
	return func(b []byte, _ *callRow) []byte { return strconv.AppendInt(b, int64(v), 10) }
}

func constTrue(b []byte, _ *callRow) []byte { return append(b, "true"...) }

// mos10 is a MOS as VoIPmonitor's ×10 integer; 45 (the maximum) when not computed yet.
func mos10(v float64) int64 {
	if v <= 0 {
		return 45
	}
	return int64(math.Round(v * 10))
}

// streamCol renders one direction's figure; null without a stream.
func streamCol(side int, f func(b []byte, st *call.StreamFigures) []byte) func([]byte, *callRow) []byte {
	return func(b []byte, r *callRow) []byte {
		st := &r.s.RTP[side]
		if !st.Present {
			return append(b, "null"...)
		}
		return f(b, st)
	}
}

// appendCodecID writes the stream's codec as VoIPmonitor numbers it (a
// dynamic payload type by its SDP name: Opus at 48 kHz is 316).
func appendCodecID(b []byte, st *call.StreamFigures) []byte {
	return strconv.AppendInt(b, int64(st.CodecID), 10)
}

// mosCols are a side's MOS columns: per simulator the last interval's
// (src_mosf1), the average (_avg) and the lowest interval's (_min).
func mosCols(prefix string, s int) []column {
	type figures struct {
		last, avg, lowest func(*call.StreamFigures) float64
	}
	sims := []struct {
		name string
		figures
	}{
		{"mosf1", figures{
			func(st *call.StreamFigures) float64 { return st.MOSF1Last },
			func(st *call.StreamFigures) float64 { return st.MOSF1 },
			func(st *call.StreamFigures) float64 { return st.MOSF1Min }}},
		{"mosf2", figures{
			func(st *call.StreamFigures) float64 { return st.MOSF2Last },
			func(st *call.StreamFigures) float64 { return st.MOSF2 },
			func(st *call.StreamFigures) float64 { return st.MOSF2Min }}},
		{"mosAD", figures{
			func(st *call.StreamFigures) float64 { return st.MOSAdaptLast },
			func(st *call.StreamFigures) float64 { return st.MOSAdapt },
			func(st *call.StreamFigures) float64 { return st.MOSAdaptMin }}},
	}
	enc := func(get func(*call.StreamFigures) float64) func([]byte, *callRow) []byte {
		return streamCol(s, func(b []byte, st *call.StreamFigures) []byte { return strconv.AppendInt(b, mos10(get(st)), 10) })
	}
	var cols []column
	for _, sim := range sims {
		cols = append(cols,
			column{prefix + sim.name, enc(sim.last)},
			column{prefix + sim.name + "_avg", enc(sim.avg)},
			column{prefix + sim.name + "_min", enc(sim.lowest)})
	}
	return cols
}

// listcallsTrailingNulls: VoIPmonitor 2026.04.0 ends every listcalls row with
// five null values that have no header entry (recorded in
// voipmonitor-ref/manager/plain/listcalls.raw); positional parsers depend on
// the row shape, so they are kept.
const listcallsTrailingNulls = 5

// callColumns is VoIPmonitor's listcalls column list (spec §1.4), in order.
func callColumns() []column {
	cols := []column{
		{"callreference", func(b []byte, r *callRow) []byte { return appendCallRef(b, r.s.Ref) }},
		{"callid", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.s.CallID) }},
		{"calldate", func(b []byte, r *callRow) []byte { return appendDateTimeMs(b, r.s.CallDate, r.loc) }},
		{"calldate_num", func(b []byte, r *callRow) []byte { return strconv.AppendInt(b, r.s.CallDate.Unix(), 10) }},
		{"lastpackettime", func(b []byte, r *callRow) []byte { return strconv.AppendInt(b, r.lastPacket().Unix(), 10) }},
		{"duration", func(b []byte, r *callRow) []byte {
			return strconv.AppendInt(b, wholeSeconds(r.lastPacket().Sub(r.s.CallDate)), 10)
		}},
		{"connect_duration", func(b []byte, r *callRow) []byte {
			if !r.s.Connected {
				return append(b, '0')
			}
			return strconv.AppendInt(b, wholeSeconds(r.lastPacket().Sub(r.s.ConnectTime)), 10)
		}},
		{"caller", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.s.Caller) }},
		{"called", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.s.Called) }},
		{"caller_country", appendNull},
		{"called_country", appendNull},
		{"caller_international", constTrue},
		{"called_international", constTrue},
		{"callername", func(b []byte, r *callRow) []byte { return appendOptString(b, r.s.CallerName) }},
		{"callerdomain", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.s.CallerDomain) }},
		{"calleddomain", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.s.CalledDomain) }},
		{"calleragent", func(b []byte, r *callRow) []byte { return appendOptString(b, r.s.CallerUA) }},
		{"calledagent", func(b []byte, r *callRow) []byte { return appendOptString(b, r.s.CalledUA) }},
		{"callerip", func(b []byte, r *callRow) []byte { return appendIPNum(b, r.s.CallerIP) }},
		{"calledip", func(b []byte, r *callRow) []byte { return appendIPNum(b, r.s.CalledIP) }},
		{"callerip_country", appendNull},
		{"calledip_country", appendNull},
		{"callerip_encaps", constInt(0)},
		{"calledip_encaps", constInt(0)},
		{"callerip_encaps_prot", constInt(255)},
		{"calledip_encaps_prot", constInt(255)},
		{"sipproxies", appendNull},
		{"lastSIPresponseNum", func(b []byte, r *callRow) []byte { return strconv.AppendInt(b, int64(r.s.LastSIPResponseNum), 10) }},
		{"rtp_src", func(b []byte, r *callRow) []byte { return appendIPNum(b, r.rtpSrc()) }},
		{"rtp_dst", func(b []byte, r *callRow) []byte { return appendIPNum(b, r.rtpDst()) }},
		{"rtp_src_country", appendNull},
		{"rtp_dst_country", appendNull},
		{"callercodec", streamCol(call.SideA, appendCodecID)},
		{"calledcodec", streamCol(call.SideB, appendCodecID)},
	}
	cols = append(cols, mosCols("src_", call.SideA)...)
	cols = append(cols, mosCols("dst_", call.SideB)...)
	for _, s := range []struct {
		p    string
		side int
	}{{"src_", call.SideA}, {"dst_", call.SideB}} {
		cols = append(cols,
			column{s.p + "jitter", streamCol(s.side, func(b []byte, st *call.StreamFigures) []byte { return appendFloatF(b, st.AvgJitter) })},
			column{s.p + "jitter_avg", streamCol(s.side, func(b []byte, st *call.StreamFigures) []byte { return appendFloatF(b, st.AvgJitter) })},
			column{s.p + "jitter_max", streamCol(s.side, func(b []byte, st *call.StreamFigures) []byte { return appendFloatF(b, st.MaxJitter) })})
	}
	cols = append(cols,
		column{"src_received", streamCol(call.SideA, func(b []byte, st *call.StreamFigures) []byte { return strconv.AppendInt(b, int64(st.Received), 10) })},
		column{"dst_received", streamCol(call.SideB, func(b []byte, st *call.StreamFigures) []byte { return strconv.AppendInt(b, int64(st.Received), 10) })},
		column{"src_loss_abs", streamCol(call.SideA, func(b []byte, st *call.StreamFigures) []byte { return strconv.AppendInt(b, int64(st.Lost), 10) })},
		column{"dst_loss_abs", streamCol(call.SideB, func(b []byte, st *call.StreamFigures) []byte { return strconv.AppendInt(b, int64(st.Lost), 10) })},
		column{"src_loss", streamCol(call.SideA, func(b []byte, st *call.StreamFigures) []byte { return appendFloatF(b, st.LossPercent()) })},
		column{"dst_loss", streamCol(call.SideB, func(b []byte, st *call.StreamFigures) []byte { return appendFloatF(b, st.LossPercent()) })},
		column{"src_loss_last10sec", appendNull},
		column{"dst_loss_last10sec", appendNull},
		column{"id_sensor", func(b []byte, r *callRow) []byte { return strconv.AppendInt(b, int64(r.s.Sensor), 10) }},
		column{"vlan", func(b []byte, r *callRow) []byte {
			if r.s.VLAN <= 0 {
				return append(b, "65534"...) // VoIPmonitor's "no VLAN"
			}
			return strconv.AppendInt(b, int64(r.s.VLAN), 10)
		}},
	)
	return cols
}

// callTable renders listcalls / active_call_info; built once per Server.
type callTable struct {
	cols   []column
	index  map[string]int
	header []byte // ["callreference",...]
}

func newCallTable() *callTable {
	t := &callTable{cols: callColumns(), index: map[string]int{}}
	t.header = append(t.header, '[')
	for i, c := range t.cols {
		if i > 0 {
			t.header = append(t.header, ',')
		}
		t.header = appendJSONString(t.header, c.name)
		t.index[c.name] = i
	}
	t.header = append(t.header, ']')
	return t
}

func (t *callTable) appendRow(b []byte, r *callRow) []byte {
	b = append(b, '[')
	for i, c := range t.cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = c.enc(b, r)
	}
	for range listcallsTrailingNulls {
		b = append(b, ",null"...)
	}
	return append(b, ']')
}

func (t *callTable) appendObject(b []byte, r *callRow) []byte {
	b = append(b, '{')
	for i, c := range t.cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c.name)
		b = append(b, ':')
		b = c.enc(b, r)
	}
	return append(b, '}')
}

// listParams are listcalls' / listregisters' JSON parameters.
type listParams struct {
	present   bool // a JSON object was given: the summary element is added
	limit     int  // -1 = all
	sortField string
	sortAsc   bool
	filters   []string
	states    []string // listregisters
	zip       bool
}

// maxListTerms bounds the distinct filters and the distinct states of one
// listcalls / listregisters request: every row is tested against each of
// them, so a request repeating one filter thousands of times cost seconds
// of CPU per thousand calls while holding a snapshot slot.
const maxListTerms = 32

// addTerm appends t (lower case) to list unless it is there already; at
// most maxListTerms distinct terms (param names the parameter).
func addTerm(list []string, t, param string) ([]string, error) {
	t = strings.ToLower(strings.TrimSpace(t))
	if t == "" || slices.Contains(list, t) {
		return list, nil
	}
	if len(list) >= maxListTerms {
		return list, fmt.Errorf("%w: more than %d distinct %s", ErrTooManyTerms, maxListTerms, param)
	}
	return append(list, t), nil
}

// parseListParams reads `{"limit":"10","sort_field":...}`; values may be strings or numbers.
func parseListParams(args string) (listParams, error) {
	p := listParams{limit: -1}
	args = strings.TrimSpace(args)
	if args == "" {
		return p, nil
	}
	var m map[string]json.RawMessage
	err := json.Unmarshal([]byte(args), &m)
	if err != nil {
		return p, fmt.Errorf("bad json parameters: %w", err)
	}
	p.present = true
	str := func(k string) string {
		raw, ok := m[k]
		if !ok {
			return ""
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return strings.Trim(string(raw), `"`)
	}
	if v := str("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, fmt.Errorf("bad limit %q", v)
		}
		p.limit = max(n, 0)
	}
	p.sortField = str("sort_field")
	p.sortAsc = strings.EqualFold(str("sort_dir"), "asc")
	p.zip = strings.EqualFold(str("zip"), "yes")
	if raw, ok := m["filter"]; ok {
		var list []string
		if json.Unmarshal(raw, &list) != nil {
			if f := str("filter"); f != "" {
				list = []string{f}
			}
		}
		for _, f := range list {
			if p.filters, err = addTerm(p.filters, f, "filters"); err != nil {
				return p, err
			}
		}
	}
	if v := str("states"); v != "" {
		for _, s := range strings.Split(v, ",") {
			if p.states, err = addTerm(p.states, s, "states"); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// matchCall applies listcalls filters: each filter must occur (case
// insensitive) in one of the call's text fields or dotted IPs.
func matchCall(c *call.Summary, filters []string) bool {
	for _, f := range filters {
		hit := false
		for _, s := range [...]string{c.CallID, c.Caller, c.Called, c.CallerName, c.CallerDomain, c.CalledDomain, c.CallerUA, c.CalledUA} {
			if strings.Contains(strings.ToLower(s), f) {
				hit = true
				break
			}
		}
		if !hit && (strings.Contains(ipText(c.CallerIP), f) || strings.Contains(ipText(c.CalledIP), f)) {
			hit = true
		}
		if !hit {
			return false
		}
	}
	return true
}

func ipText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

// sortKey is a rendered cell reduced to something comparable.
type sortKey struct {
	null bool
	num  float64
	str  string
	isN  bool
}

func cellKey(cell []byte) sortKey {
	switch {
	case bytes.Equal(cell, []byte("null")):
		return sortKey{null: true}
	case len(cell) > 0 && cell[0] == '"':
		var s string
		if json.Unmarshal(cell, &s) == nil {
			return sortKey{str: s}
		}
		return sortKey{str: string(cell)}
	case bytes.Equal(cell, []byte("true")):
		return sortKey{num: 1, isN: true}
	case bytes.Equal(cell, []byte("false")):
		return sortKey{isN: true}
	}
	f, err := strconv.ParseFloat(string(cell), 64)
	if err != nil {
		return sortKey{str: string(cell)}
	}
	return sortKey{num: f, isN: true}
}

func compareKeys(a, b sortKey) int {
	switch {
	case a.null || b.null:
		return cmp.Compare(boolInt(!a.null), boolInt(!b.null))
	case a.isN && b.isN:
		return cmp.Compare(a.num, b.num)
	case a.isN != b.isN:
		return cmp.Compare(boolInt(!a.isN), boolInt(!b.isN))
	}
	return strings.Compare(a.str, b.str)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sortRows orders rows by a column (default calldate, descending). Ties
// keep a stable order by call reference.
func (t *callTable) sortRows(rows []callRow, field string, asc bool) {
	dir := -1
	if asc {
		dir = 1
	}
	idx, ok := t.index[field]
	if !ok || field == "calldate" || field == "calldate_num" {
		slices.SortFunc(rows, func(x, y callRow) int {
			if c := x.s.CallDate.Compare(y.s.CallDate); c != 0 {
				return dir * c
			}
			return dir * cmp.Compare(x.s.Ref, y.s.Ref)
		})
		return
	}
	var cell []byte
	for i := range rows {
		cell = t.cols[idx].enc(cell[:0], &rows[i])
		rows[i].key = cellKey(cell)
	}
	slices.SortStableFunc(rows, func(x, y callRow) int {
		if c := compareKeys(x.key, y.key); c != 0 {
			return dir * c
		}
		return dir * x.s.CallDate.Compare(y.s.CallDate)
	})
}
