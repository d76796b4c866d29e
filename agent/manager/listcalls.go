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
	"pbx-agent/sniffer/rtp"
)

// callRow is one call being rendered: the CDR and its chosen A/B streams.
type callRow struct {
	c      *call.CDR
	a, b   *rtp.Summary // stream sent by the caller (src_*), by the callee (dst_*)
	loc    *time.Location
	sensor int
}

func newCallRow(c *call.CDR, loc *time.Location, sensor int) callRow {
	r := callRow{c: c, loc: loc, sensor: sensor}
	a, b := c.StreamAB()
	if a >= 0 {
		r.a = &c.Streams[a]
	}
	if b >= 0 {
		r.b = &c.Streams[b]
	}
	return r
}

func (r *callRow) lastPacket() time.Time {
	if r.c.CallEnd.IsZero() {
		return r.c.CallDate
	}
	return r.c.CallEnd
}

// rtpSrc / rtpDst are the caller's stream addresses (else the callee's, reversed).
func (r *callRow) rtpSrc() netip.Addr {
	switch {
	case r.a != nil:
		return r.a.Src.Addr()
	case r.b != nil:
		return r.b.Dst.Addr()
	}
	return netip.Addr{}
}

func (r *callRow) rtpDst() netip.Addr {
	switch {
	case r.a != nil:
		return r.a.Dst.Addr()
	case r.b != nil:
		return r.b.Src.Addr()
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

type side int

const (
	sideSrc side = iota // caller's stream (A)
	sideDst             // callee's stream (B)
)

func (r *callRow) stream(s side) *rtp.Summary {
	if s == sideSrc {
		return r.a
	}
	return r.b
}

// appendCodecID writes the stream's codec as VoIPmonitor numbers it (a
// dynamic payload type by its SDP name: Opus at 48 kHz is 316).
func appendCodecID(b []byte, st *rtp.Summary) []byte {
	return strconv.AppendInt(b, int64(st.CodecID()), 10)
}

func streamCol(s side, f func(b []byte, st *rtp.Summary) []byte) func([]byte, *callRow) []byte {
	return func(b []byte, r *callRow) []byte {
		st := r.stream(s)
		if st == nil {
			return append(b, "null"...)
		}
		return f(b, st)
	}
}

func mosCols(prefix string, s side) []column {
	pick := []func(*rtp.Summary) float64{
		func(st *rtp.Summary) float64 { return st.MOSF1 },
		func(st *rtp.Summary) float64 { return st.MOSF2 },
		func(st *rtp.Summary) float64 { return st.MOSAdapt },
	}
	var cols []column
	for i, name := range []string{"mosf1", "mosf2", "mosAD"} {
		get := pick[i]
		enc := streamCol(s, func(b []byte, st *rtp.Summary) []byte { return strconv.AppendInt(b, mos10(get(st)), 10) })
		// Only one MOS figure per stream exists here: current = average = minimum.
		cols = append(cols,
			column{prefix + name, enc},
			column{prefix + name + "_avg", enc},
			column{prefix + name + "_min", enc})
	}
	return cols
}

func lossPercent(st *rtp.Summary) float64 {
	if st.Received+st.Lost <= 0 {
		return 0
	}
	return float64(st.Lost) * 100 / float64(st.Received+st.Lost)
}

// listcallsTrailingNulls: VoIPmonitor 2026.04.0 ends every listcalls row with
// five null values that have no header entry (recorded in
// voipmonitor-ref/manager/plain/listcalls.raw); positional parsers depend on
// the row shape, so they are kept.
const listcallsTrailingNulls = 5

// callColumns is VoIPmonitor's listcalls column list (spec §1.4), in order.
func callColumns() []column {
	cols := []column{
		{"callreference", func(b []byte, r *callRow) []byte { return appendCallRef(b, r.c.CallRef) }},
		{"callid", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.c.CallID) }},
		{"calldate", func(b []byte, r *callRow) []byte { return appendDateTimeMs(b, r.c.CallDate, r.loc) }},
		{"calldate_num", func(b []byte, r *callRow) []byte { return strconv.AppendInt(b, r.c.CallDate.Unix(), 10) }},
		{"lastpackettime", func(b []byte, r *callRow) []byte { return strconv.AppendInt(b, r.lastPacket().Unix(), 10) }},
		{"duration", func(b []byte, r *callRow) []byte {
			return strconv.AppendInt(b, wholeSeconds(r.lastPacket().Sub(r.c.CallDate)), 10)
		}},
		{"connect_duration", func(b []byte, r *callRow) []byte {
			if r.c.ConnectTime.IsZero() {
				return append(b, '0')
			}
			return strconv.AppendInt(b, wholeSeconds(r.lastPacket().Sub(r.c.ConnectTime)), 10)
		}},
		{"caller", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.c.Caller) }},
		{"called", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.c.Called) }},
		{"caller_country", appendNull},
		{"called_country", appendNull},
		{"caller_international", constTrue},
		{"called_international", constTrue},
		{"callername", func(b []byte, r *callRow) []byte { return appendOptString(b, r.c.CallerName) }},
		{"callerdomain", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.c.CallerDomain) }},
		{"calleddomain", func(b []byte, r *callRow) []byte { return appendJSONString(b, r.c.CalledDomain) }},
		{"calleragent", func(b []byte, r *callRow) []byte { return appendOptString(b, r.c.CallerUA) }},
		{"calledagent", func(b []byte, r *callRow) []byte { return appendOptString(b, r.c.CalledUA) }},
		{"callerip", func(b []byte, r *callRow) []byte { return appendIPNum(b, r.c.CallerIP) }},
		{"calledip", func(b []byte, r *callRow) []byte { return appendIPNum(b, r.c.CalledIP) }},
		{"callerip_country", appendNull},
		{"calledip_country", appendNull},
		{"callerip_encaps", constInt(0)},
		{"calledip_encaps", constInt(0)},
		{"callerip_encaps_prot", constInt(255)},
		{"calledip_encaps_prot", constInt(255)},
		{"sipproxies", appendNull},
		{"lastSIPresponseNum", func(b []byte, r *callRow) []byte { return strconv.AppendInt(b, int64(r.c.LastSIPResponseNum), 10) }},
		{"rtp_src", func(b []byte, r *callRow) []byte { return appendIPNum(b, r.rtpSrc()) }},
		{"rtp_dst", func(b []byte, r *callRow) []byte { return appendIPNum(b, r.rtpDst()) }},
		{"rtp_src_country", appendNull},
		{"rtp_dst_country", appendNull},
		{"callercodec", streamCol(sideSrc, appendCodecID)},
		{"calledcodec", streamCol(sideDst, appendCodecID)},
	}
	cols = append(cols, mosCols("src_", sideSrc)...)
	cols = append(cols, mosCols("dst_", sideDst)...)
	for _, s := range []struct {
		p    string
		side side
	}{{"src_", sideSrc}, {"dst_", sideDst}} {
		cols = append(cols,
			column{s.p + "jitter", streamCol(s.side, func(b []byte, st *rtp.Summary) []byte { return appendFloatF(b, st.AvgJitter) })},
			column{s.p + "jitter_avg", streamCol(s.side, func(b []byte, st *rtp.Summary) []byte { return appendFloatF(b, st.AvgJitter) })},
			column{s.p + "jitter_max", streamCol(s.side, func(b []byte, st *rtp.Summary) []byte { return appendFloatF(b, st.MaxJitter) })})
	}
	cols = append(cols,
		column{"src_received", streamCol(sideSrc, func(b []byte, st *rtp.Summary) []byte { return strconv.AppendInt(b, int64(st.Received), 10) })},
		column{"dst_received", streamCol(sideDst, func(b []byte, st *rtp.Summary) []byte { return strconv.AppendInt(b, int64(st.Received), 10) })},
		column{"src_loss_abs", streamCol(sideSrc, func(b []byte, st *rtp.Summary) []byte { return strconv.AppendInt(b, int64(st.Lost), 10) })},
		column{"dst_loss_abs", streamCol(sideDst, func(b []byte, st *rtp.Summary) []byte { return strconv.AppendInt(b, int64(st.Lost), 10) })},
		column{"src_loss", streamCol(sideSrc, func(b []byte, st *rtp.Summary) []byte { return appendFloatF(b, lossPercent(st)) })},
		column{"dst_loss", streamCol(sideDst, func(b []byte, st *rtp.Summary) []byte { return appendFloatF(b, lossPercent(st)) })},
		column{"src_loss_last10sec", appendNull},
		column{"dst_loss_last10sec", appendNull},
		column{"id_sensor", func(b []byte, r *callRow) []byte { return strconv.AppendInt(b, int64(r.sensor), 10) }},
		column{"vlan", func(b []byte, r *callRow) []byte {
			if r.c.VLAN <= 0 {
				return append(b, "65534"...) // VoIPmonitor's "no VLAN"
			}
			return strconv.AppendInt(b, int64(r.c.VLAN), 10)
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

// parseListParams reads `{"limit":"10","sort_field":...}`; values may be strings or numbers.
func parseListParams(args string) (listParams, error) {
	p := listParams{limit: -1}
	args = strings.TrimSpace(args)
	if args == "" {
		return p, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(args), &m); err != nil {
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
			if f = strings.TrimSpace(f); f != "" {
				p.filters = append(p.filters, strings.ToLower(f))
			}
		}
	}
	if v := str("states"); v != "" {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				p.states = append(p.states, strings.ToLower(s))
			}
		}
	}
	return p, nil
}

// matchCall applies listcalls filters: each filter must occur (case
// insensitive) in one of the call's text fields or dotted IPs.
func matchCall(c *call.CDR, filters []string) bool {
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
			if c := x.c.CallDate.Compare(y.c.CallDate); c != 0 {
				return dir * c
			}
			return dir * cmp.Compare(x.c.CallRef, y.c.CallRef)
		})
		return
	}
	keys := make(map[*call.CDR]sortKey, len(rows))
	var cell []byte
	for i := range rows {
		cell = t.cols[idx].enc(cell[:0], &rows[i])
		keys[rows[i].c] = cellKey(cell)
	}
	slices.SortStableFunc(rows, func(x, y callRow) int {
		if c := compareKeys(keys[x.c], keys[y.c]); c != 0 {
			return dir * c
		}
		return dir * x.c.CallDate.Compare(y.c.CallDate)
	})
}
