package cdr

import (
	"crypto/sha256"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/spool"
)

// col is one column value of a row about to be inserted. nil is NULL.
type col struct {
	name string
	v    any
}

// row is an ordered list of column values for one table.
type row []col

// lookups are the ids of a CDR's strings in the lookup tables (0 = none).
type lookups struct {
	lastResponse       uint64
	callerUA, calledUA uint64
	reasonSIP          uint64
	reasonQ850         uint64
	responses          map[string]uint64 // cdr_sipresp: response text → cdr_sip_response.id
}

// rowOptions are the writer settings that show in the rows.
type rowOptions struct {
	idSensor  int  // -1 = unset (NULL in cdr.id_sensor, 0 in register_*.id_sensor)
	partition bool // child rows carry calldate
	mosMinAll bool // mosmin_f2 = no: a side's mos_min is the lowest of its three MOS
	// fromFirstInvite: response_time_from_first_invite = yes, the response
	// times count from the call's first INVITE
	fromFirstInvite bool
	ips             ipForms // which IP columns are varbinary (ipv6 = yes)
}

const maxDecimal93 = 999999.999

// dec3 formats a duration as decimal(9,3) seconds; nil when it does not fit
// (VoIPmonitor stores NULL then, see sip_ipv6_udp in voipmonitor-ref).
func dec3(d time.Duration) any {
	s := d.Seconds()
	if s < 0 || s > maxDecimal93 {
		return nil
	}
	return strconv.FormatFloat(math.Round(s*1000)/1000, 'f', 3, 64)
}

// dec3Clamp is dec3 but clamps to the column's range (progress_time, post_bye_delay).
func dec3Clamp(d time.Duration) any {
	s := math.Min(math.Max(d.Seconds(), 0), maxDecimal93)
	return strconv.FormatFloat(math.Round(s*1000)/1000, 'f', 3, 64)
}

// dec3Signed is dec3Clamp for signed columns (a_last_rtp_from_end is
// negative when RTP went on after the call's last SIP packet).
func dec3Signed(d time.Duration) any {
	s := math.Min(math.Max(d.Seconds(), -maxDecimal93), maxDecimal93)
	return strconv.FormatFloat(math.Round(s*1000)/1000, 'f', 3, 64)
}

// str truncates s to n characters of a latin1 column without splitting a
// UTF-8 sequence (the connection is latin1, so bytes are stored as sent).
func str(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s[len(s)-min(len(s), utf8.UTFMax):]) {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

func id(v uint64) any {
	if v == 0 {
		return nil
	}
	return v
}

func mult10Ceil(ms float64) int64 { return int64(math.Ceil(ms*10 - 1e-9)) }

func mos10(m float64) any {
	if m <= 0 {
		return nil
	}
	return int64(math.Round(m * 10))
}

func clampU(v, hi int64) int64 { return min(max(v, 0), hi) }

// The cdr.payload values VoIPmonitor gives fax calls (spec: "1000 = T.38,
// 1001 = T.30 fax").
const (
	PayloadT38 = 1000
	PayloadT30 = 1001
)

const (
	maxMedium   = 1<<24 - 1
	maxSmall    = 1<<16 - 1
	maxTiny     = 1<<8 - 1
	maxTinySign = 1<<7 - 1
)

// delayWeights are VoIPmonitor's weights of the d50…d300 buckets (spec §3.1).
var delayWeights = [7]int64{60, 80, 105, 135, 175, 250, 300}

type sideFigures struct {
	mosMin    any
	lossPerc  int64
	avgJit10  int64
	lost      int64
	delaySum  int64
	delayCnt  int64
	hasStream bool
}

// sideColumns appends the a_ or b_ columns of one stream.
func sideColumns(r row, p string, s *rtp.Summary, idx int, c *call.CDR, o rowOptions) (row, sideFigures) {
	var f sideFigures
	if s == nil {
		for _, n := range []string{"index", "payload", "saddr", "received", "lost", "reordered",
			"avgjitter_mult10", "maxjitter", "sl1", "sl2", "sl3", "sl4", "sl5", "sl6", "sl7", "sl8", "sl9", "sl10",
			"d50", "d70", "d90", "d120", "d150", "d200", "d300",
			"mos_f1_mult10", "mos_f2_mult10", "mos_adapt_mult10",
			"mos_f1_min_mult10", "mos_f2_min_mult10", "mos_adapt_min_mult10",
			"mos_min_mult10", "packet_loss_perc_mult1000", "delay_sum", "delay_cnt", "delay_avg_mult100",
			"last_rtp_from_end"} {
			r = append(r, col{p + n, nil})
		}
		return r, f
	}
	f.hasStream = true
	f.lost = clampU(int64(s.Lost), maxMedium)
	// The jitter columns are VoIPmonitor's jitter (rtp.Summary.CDRAvgJitter):
	// ceil(avg×10), ceil(max) as calltable.cpp writes them.
	f.avgJit10 = clampU(mult10Ceil(s.CDRAvgJitter), maxMedium)
	if tot := s.Received + s.Lost; tot > 0 {
		f.lossPerc = clampU(int64(math.Round(float64(s.Lost)*100000/float64(tot))), maxMedium)
	}
	for i, d := range s.D {
		f.delaySum += delayWeights[i] * int64(d)
		f.delayCnt += int64(d)
	}
	var delayAvg int64
	if f.delayCnt > 0 {
		delayAvg = int64(math.Round(float64(f.delaySum) * 100 / float64(f.delayCnt)))
	}
	// mos_min: the F2 MOS with mosmin_f2 = yes (VoIPmonitor's default),
	// else the lowest of the three (each the stream's average).
	f.mosMin = mos10(s.MOSF2)
	if o.mosMinAll {
		f.mosMin = mos10(min(s.MOSF1, s.MOSF2, s.MOSAdapt))
	}
	r = append(r,
		col{p + "index", int64(min(idx, maxTinySign))},
		col{p + "payload", int64(s.CodecID())},
		col{p + "saddr", o.ips.ip("cdr", p+"saddr", s.Src.Addr())},
		col{p + "received", clampU(int64(s.Received), maxMedium)},
		col{p + "lost", f.lost},
		col{p + "reordered", clampU(int64(s.Reordered), maxMedium)},
		col{p + "avgjitter_mult10", f.avgJit10},
		col{p + "maxjitter", clampU(int64(math.Ceil(s.CDRMaxJitter-1e-9)), maxSmall)},
	)
	for i, n := range s.SL {
		r = append(r, col{p + "sl" + strconv.Itoa(i+1), clampU(int64(n), maxMedium)})
	}
	for i, name := range []string{"d50", "d70", "d90", "d120", "d150", "d200", "d300"} {
		r = append(r, col{p + name, clampU(int64(s.D[i]), maxMedium)})
	}
	r = append(r,
		col{p + "mos_f1_mult10", mos10(s.MOSF1)},
		col{p + "mos_f2_mult10", mos10(s.MOSF2)},
		col{p + "mos_adapt_mult10", mos10(s.MOSAdapt)},
		col{p + "mos_f1_min_mult10", mos10(s.MOSF1Min)}, // the lowest interval's
		col{p + "mos_f2_min_mult10", mos10(s.MOSF2Min)},
		col{p + "mos_adapt_min_mult10", mos10(s.MOSAdaptMin)},
		col{p + "mos_min_mult10", f.mosMin},
		col{p + "packet_loss_perc_mult1000", f.lossPerc},
		col{p + "delay_sum", clampU(f.delaySum, maxMedium)},
		col{p + "delay_cnt", clampU(f.delayCnt, maxMedium)},
		col{p + "delay_avg_mult100", clampU(delayAvg, maxMedium)},
		col{p + "last_rtp_from_end", dec3Signed(lastSignal(c).Sub(lastRTP(c, s)))},
	)
	return r, f
}

// lastSignal is the call's last SIP message, which last_rtp_from_end counts
// from (VoIPmonitor's last_signal_packet_time_us); CallEnd for a record
// queued before LastSIP was kept.
func lastSignal(c *call.CDR) time.Time {
	if c.LastSIP.IsZero() {
		return c.CallEnd
	}
	return c.LastSIP
}

// lastRTP is the last RTP packet of any of the call's streams in s's
// direction: VoIPmonitor's last_rtp_a_packet_time_us / _b_ (calltable.cpp
// Call::read_rtp) follow every stream of a side, not only the one its a_/b_
// columns show (a re-INVITE's new stream outlives the first).
func lastRTP(c *call.CDR, s *rtp.Summary) time.Time {
	last := s.LastTime
	for i := range c.Streams {
		if st := &c.Streams[i]; st.Caller == s.Caller && st.LastTime.After(last) {
			last = st.LastTime
		}
	}
	return last
}

// cdrRow maps a CDR to its `cdr` row (spec/voipmonitor.md §3.1; the
// conventions checked against voipmonitor-ref's rows).
func cdrRow(c *call.CDR, ids *lookups, o rowOptions) row {
	r := callColumns(make(row, 0, 140), c, ids, o)
	ai, bi := c.StreamAB()
	var sa, sb *rtp.Summary
	if ai >= 0 {
		sa = &c.Streams[ai]
	}
	if bi >= 0 {
		sb = &c.Streams[bi]
	}
	var fa, fb sideFigures
	r, fa = sideColumns(r, "a_", sa, ai, c, o)
	r, fb = sideColumns(r, "b_", sb, bi, c, o)
	return qualityColumns(r, c, sa, sb, fa, fb)
}

// callTimes are the cdr row's nullable delays of a call, in seconds
// (decimal, 3 places): connected to end, start to first 18x/2xx, start to
// first RTP, BYE to its 200 OK.
func callTimes(c *call.CDR) (connect, progress, firstRTP, postBye any) {
	if !c.ConnectTime.IsZero() {
		connect = dec3(c.CallEnd.Sub(c.ConnectTime))
	}
	// progress is NULL without an 18x or 2xx (voipmonitor-ref).
	if !c.ProgressTime.IsZero() {
		progress = dec3Clamp(c.ProgressTime.Sub(c.CallDate))
	}
	var first time.Time
	for i := range c.Streams {
		if t := c.Streams[i].FirstTime; !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if !first.IsZero() {
		firstRTP = dec3Clamp(first.Sub(c.CallDate))
	}
	if !c.ByeTime.IsZero() && c.Bye == call.ByeOK {
		// BYE → its 200 OK; NULL when the BYE was not confirmed (as VoIPmonitor).
		postBye = dec3Clamp(c.CallEnd.Sub(c.ByeTime))
	}
	return connect, progress, firstRTP, postBye
}

// callColumns appends the columns about the call as a whole: times,
// parties, SIP addresses, how it ended, lookup ids, VLAN and sensor.
func callColumns(r row, c *call.CDR, ids *lookups, o rowOptions) row {
	connect, progress, firstRTP, postBye := callTimes(c)
	var who any
	if c.WhoHanged != call.HangerNone {
		who = string(c.WhoHanged)
	}
	// sighup: the call was still open when capture stopped (end of file,
	// shutdown) and was closed by the flush, whatever bye says.
	var sighup int64
	if c.ForcedClose || c.Bye == call.ByeForced {
		sighup = 1
	}
	var vlan, sensor any
	if c.VLAN > 0 {
		vlan = int64(c.VLAN)
	}
	if o.idSensor >= 0 {
		sensor = int64(o.idSensor)
	}
	var sipCause, q850Cause any
	if c.ReasonSIPCause > 0 || ids.reasonSIP != 0 {
		sipCause = clampU(int64(c.ReasonSIPCause), maxSmall)
	}
	if c.ReasonQ850Cause > 0 || ids.reasonQ850 != 0 {
		q850Cause = clampU(int64(c.ReasonQ850Cause), maxSmall)
	}
	var lastNum any
	if c.LastSIPResponseNum > 0 {
		lastNum = clampU(int64(c.LastSIPResponseNum), maxSmall)
	}
	return append(r,
		col{"calldate", c.CallDate.UTC()},
		col{"callend", c.CallEnd.UTC()},
		col{"duration", dec3(c.Duration())},
		col{"connect_duration", connect},
		col{"progress_time", progress},
		col{"first_rtp_time", firstRTP},
		col{"post_bye_delay", postBye},
		col{"caller", str(c.Caller, 255)},
		col{"caller_domain", str(c.CallerDomain, 255)},
		col{"caller_reverse", str(reverse(c.Caller), 255)},
		col{"callername", str(c.CallerName, 255)},
		col{"callername_reverse", str(reverse(c.CallerName), 255)},
		col{"called", str(c.Called, 255)},
		col{"called_domain", str(c.CalledDomain, 255)},
		col{"called_reverse", str(reverse(c.Called), 255)},
		col{"sipcallerip", o.ips.ip("cdr", "sipcallerip", c.CallerIP)},
		col{"sipcallerport", int64(c.CallerPort)},
		col{"sipcalledip", o.ips.ip("cdr", "sipcalledip", c.CalledIP)},
		col{"sipcalledport", int64(c.CalledPort)},
		col{"whohanged", who},
		col{"bye", clampU(int64(c.Bye), maxTiny)},
		col{"lastSIPresponse_id", id(ids.lastResponse)},
		col{"lastSIPresponseNum", lastNum},
		col{"reason_sip_cause", sipCause},
		col{"reason_sip_text_id", id(ids.reasonSIP)},
		col{"reason_q850_cause", q850Cause},
		col{"reason_q850_text_id", id(ids.reasonQ850)},
		col{"sighup", sighup},
		col{"a_ua_id", id(ids.callerUA)},
		col{"b_ua_id", id(ids.calledUA)},
		col{"vlan", vlan},
		col{"id_sensor", sensor},
		col{"response_time_100", responseTime(c.Response100, c, o)},
		col{"response_time_xxx", responseTime(c.ResponseXXX, c, o)},
	)
}

// responseTime is a response_time_100 / _xxx value: ms, NULL when the call
// had no such response (VoIPmonitor's calltable.cpp).
func responseTime(d call.ResponseDelay, c *call.CDR, o rowOptions) any {
	ms, ok := d.Millis(c.CallDate, o.fromFirstInvite)
	if !ok {
		return nil
	}
	return int64(ms)
}

// qualityColumns appends the whole call's codec and quality columns, taken
// from its two sides (sa, sb: nil for a side without a stream; fa, fb: the
// figures sideColumns found): the worst of the two, the delays summed.
func qualityColumns(r row, c *call.CDR, sa, sb *rtp.Summary, fa, fb sideFigures) row {
	var payload any
	switch {
	case c.FaxPackets > 0:
		payload = int64(PayloadT38) // VoIPmonitor: a call with UDPTL is T.38 whatever its RTP
	case c.FaxTones && !c.NotAcceptable:
		// faxdetect found CNG or CED in its G.711 audio: T.30, unless an
		// INVITE was answered 488 or 606 (VoIPmonitor's not_acceptable)
		payload = int64(PayloadT30)
	}
	if !fa.hasStream && !fb.hasStream {
		r = append(r, col{"payload", payload})
		for _, n := range []string{"jitter_mult10", "mos_min_mult10", "packet_loss_perc_mult1000",
			"lost", "delay_sum", "delay_cnt", "delay_avg_mult100"} {
			r = append(r, col{n, nil})
		}
		return r
	}
	switch {
	case payload != nil:
	case sa != nil:
		payload = int64(sa.CodecID())
	case sb != nil:
		payload = int64(sb.CodecID())
	}
	var mosMin any
	switch {
	case fa.mosMin != nil && fb.mosMin != nil:
		mosMin = min(fa.mosMin.(int64), fb.mosMin.(int64))
	case fa.mosMin != nil:
		mosMin = fa.mosMin
	default:
		mosMin = fb.mosMin
	}
	sum, cnt := fa.delaySum+fb.delaySum, fa.delayCnt+fb.delayCnt
	var avg int64
	if cnt > 0 {
		avg = int64(math.Round(float64(sum) * 100 / float64(cnt)))
	}
	r = append(r,
		col{"payload", payload},
		col{"jitter_mult10", max(fa.avgJit10, fb.avgJit10)},
		col{"mos_min_mult10", mosMin},
		col{"packet_loss_perc_mult1000", max(fa.lossPerc, fb.lossPerc)},
		col{"lost", max(fa.lost, fb.lost)},
		col{"delay_sum", clampU(sum, maxMedium)},
		col{"delay_cnt", clampU(cnt, maxMedium)},
		col{"delay_avg_mult100", clampU(avg, maxMedium)},
	)
	return r
}

func childPrefix(cdrID uint64, c *call.CDR, o rowOptions) row {
	r := row{{"cdr_ID", cdrID}}
	if o.partition {
		r = append(r, col{"calldate", c.CallDate.UTC()})
	}
	return r
}

// cdrNextRow is the cdr_next row: the spool base name (sanitised Call-ID,
// the same name the spool files carry), the INVITE's digest username and the
// hold times.
func cdrNextRow(cdrID uint64, c *call.CDR, o rowOptions) row {
	var digest, hold any
	if c.DigestUsername != "" {
		digest = str(c.DigestUsername, 255)
	}
	if h := holdText(c); h != "" {
		hold = str(h, 1024)
	}
	return append(childPrefix(cdrID, c, o),
		col{"fbasename", str(spool.FBasename(c.CallID), 255)},
		col{"digest_username", digest},
		col{"hold", hold},
	)
}

// holdText is cdr_next.hold: "+<s>" per time the call went on hold, whole
// seconds from calldate, comma-separated (VoIPmonitor writes "+0" for an
// INVITE offering a=inactive at the start of the call).
func holdText(c *call.CDR) string {
	var b strings.Builder
	for i, t := range c.Hold {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('+')
		b.WriteString(strconv.FormatInt(int64(max(t.Sub(c.CallDate), 0)/time.Second), 10))
	}
	return b.String()
}

// cdrRTPRows maps every stream to a cdr_rtp row; index is 1-based
// (cdr.a_index + 1, as voipmonitor-ref shows).
func cdrRTPRows(cdrID uint64, c *call.CDR, o rowOptions) []row {
	out := make([]row, 0, len(c.Streams))
	for i := range c.Streams {
		s := &c.Streams[i]
		var first, dur any
		if !s.FirstTime.IsZero() {
			first = dec3Clamp(s.FirstTime.Sub(c.CallDate))
			dur = dec3Clamp(s.LastTime.Sub(s.FirstTime))
		}
		out = append(out, append(childPrefix(cdrID, c, o),
			col{"saddr", o.ips.ip("cdr_rtp", "saddr", s.Src.Addr())},
			col{"sport", int64(s.Src.Port())},
			col{"daddr", o.ips.ip("cdr_rtp", "daddr", s.Dst.Addr())},
			col{"dport", int64(s.Dst.Port())},
			col{"ssrc", s.SSRC},
			col{"received", clampU(int64(s.Received), maxMedium)},
			col{"loss", clampU(int64(s.Lost), maxMedium)},
			col{"firsttime", first},
			col{"payload", clampU(int64(s.CodecID()), maxSmall)},
			// (unsigned)(maxjitter×10), as calltable.cpp
			col{"maxjitter_mult10", clampU(int64(s.CDRMaxJitter*10), maxSmall)},
			col{"index", int64(min(i+1, maxTiny))},
			col{"duration", dur},
		))
	}
	return out
}

// cdrSIPRespRows are the cdr_sipresp rows: one per distinct response (code
// and text as sent), in order of first appearance.
func cdrSIPRespRows(cdrID uint64, c *call.CDR, ids *lookups, o rowOptions) []row {
	resp := sipResponses(c)
	out := make([]row, 0, len(resp))
	for _, r := range resp {
		out = append(out, append(childPrefix(cdrID, c, o),
			col{"SIPresponse_id", id(ids.responses[responseText(r)])},
			col{"SIPresponseNum", clampU(int64(r.Code), maxSmall)},
		))
	}
	return out
}

// sipResponses are the CDR's distinct responses. A CDR queued by an older
// agent has only the codes: their texts are the final response as sent when
// it is the CDR's last one, else the standard reason phrase.
func sipResponses(c *call.CDR) []call.Response {
	if len(c.SIPResponses) > 0 {
		return c.SIPResponses
	}
	out := make([]call.Response, 0, len(c.Responses))
	for _, code := range c.Responses {
		r := call.Response{Code: code, Reason: reasonPhrases[code]}
		if t, ok := strings.CutPrefix(c.LastSIPResponse, strconv.Itoa(code)+" "); ok && code == c.LastSIPResponseNum {
			r.Reason = t
		}
		out = append(out, r)
	}
	return out
}

// responseText is a response's cdr_sip_response text: "200 OK".
func responseText(r call.Response) string {
	if r.Reason == "" {
		return strconv.Itoa(r.Code)
	}
	return strconv.Itoa(r.Code) + " " + r.Reason
}

// DTMF types in cdr_dtmf (VoIPmonitor's s_dtmf: sip_info, inband, rfc2833).
const (
	dtmfSIPInfo = 0
	dtmfInband  = 1
	dtmfRFC2833 = 2
)

// cdrDTMFRows are the cdr_dtmf rows: one per key press, firsttime in
// seconds from calldate.
func cdrDTMFRows(cdrID uint64, c *call.CDR, o rowOptions) []row {
	out := make([]row, 0, len(c.DTMF))
	for _, d := range c.DTMF {
		typ := int64(dtmfRFC2833)
		switch d.Source {
		case "sipinfo":
			typ = dtmfSIPInfo
		case "inband":
			typ = dtmfInband
		}
		out = append(out, append(childPrefix(cdrID, c, o),
			col{"daddr", o.ips.ip("cdr_dtmf", "daddr", d.Dst.Addr())},
			col{"saddr", o.ips.ip("cdr_dtmf", "saddr", d.Src.Addr())},
			col{"firsttime", dec3Clamp(d.Time.Sub(c.CallDate))},
			col{"dtmf", string(d.Digit)},
			col{"type", typ},
		))
	}
	return out
}

var reasonPhrases = map[int]string{
	100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
	200: "OK", 202: "Accepted", 301: "Moved Permanently", 302: "Moved Temporarily",
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
	407: "Proxy Authentication Required", 408: "Request Timeout", 480: "Temporarily Unavailable",
	481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
	488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
	501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
	600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

// registerRow maps a REGISTER to a register_state row, or to a
// register_failed row when its state is Failed.
func registerRow(g *call.Register, uaID uint64, o rowOptions) (table string, r row) {
	sensor := int64(max(o.idSensor, 0))
	table = "register_state"
	if g.State == call.RegFailed {
		table = "register_failed"
	}
	r = row{
		{"id_sensor", sensor},
		{"fname", int64(0)},
		{"created_at", g.Time.UTC()},
		{"sipcallerip", o.ips.ipNotNull(table, "sipcallerip", g.CallerIP)},
		{"sipcalledip", o.ips.ipNotNull(table, "sipcalledip", g.CalledIP)},
		{"sipcallerport", int64(g.CallerPort)},
		{"sipcalledport", int64(g.CalledPort)},
		{"from_num", str(g.FromNum, 255)},
		{"to_num", str(g.ToNum, 255)},
		{"contact_num", str(g.ContactNum, 255)},
		{"contact_domain", str(g.ContactDomain, 255)},
		{"digestusername", str(g.DigestUsername, 255)},
		{"digestrealm", str(g.DigestRealm, 255)},
		{"ua_id", id(uaID)},
		{"to_domain", str(g.ToDomain, 255)},
	}
	if g.State == call.RegFailed {
		var reason any
		if g.LastResponse != "" {
			reason = str(g.LastResponse, 255)
		}
		return "register_failed", append(r, col{"counter", int64(max(g.FailedAttempts, 1))}, col{"reason", reason})
	}
	return "register_state", append(r,
		col{"expires", int64(min(max(g.Expires, -1<<23), 1<<23-1))},
		col{"state", clampU(int64(g.State), maxTiny)},
	)
}

// key is the idempotency key of a record: the same call (or REGISTER) seen
// again — queue replay, agent restart, same capture replayed — has the same key.
type key [16]byte

func cdrKey(c *call.CDR, idSensor int) key {
	return hashKey("cdr", strconv.Itoa(idSensor), c.CallID, strconv.FormatInt(c.CallDate.UnixNano(), 10))
}

func registerKey(g *call.Register, idSensor int) key {
	return hashKey("reg", strconv.Itoa(idSensor), g.CallID, strconv.FormatInt(g.Time.UnixNano(), 10),
		strconv.Itoa(int(g.State)), g.FromNum, g.ContactNum)
}

func hashKey(parts ...string) key {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var k key
	copy(k[:], h.Sum(nil))
	return k
}
