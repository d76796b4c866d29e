package cdrquery

import "strings"

// column is one field of a LISTING row: its VoIPmonitor name and the SQL
// expression that yields it (aliases: c = cdr, n = cdr_next, r =
// cdr_sip_response, ua/ub = cdr_ua of A and B). The IP columns
// (ipColumns) are rendered as text by IPText.
type column struct{ name, expr string }

// ipColumns are the fields whose expr is an IP column.
var ipColumns = map[string]bool{"sipcallerip": true, "sipcalledip": true, "a_saddr": true, "b_saddr": true}

// listColumns are the fields of every LISTING row, in output order. Names are
// VoIPmonitor's cdr column names; IPs are rendered dotted as the GUI shows
// them, and the lookup ids are joined to their texts (lastSIPresponse, a_ua,
// b_ua) the way the GUI's grid does.
var listColumns = []column{
	{"ID", "c.ID"},
	{"id_sensor", "c.id_sensor"},
	{"calldate", "c.calldate"},
	{"callend", "c.callend"},
	{"duration", "c.duration"},
	{"connect_duration", "c.connect_duration"},
	{"progress_time", "c.progress_time"},
	{"first_rtp_time", "c.first_rtp_time"},
	{"caller", "c.caller"},
	{"caller_domain", "c.caller_domain"},
	{"callername", "c.callername"},
	{"called", "c.called"},
	{"called_domain", "c.called_domain"},
	{"sipcallerip", "c.sipcallerip"},
	{"sipcallerport", "c.sipcallerport"},
	{"sipcalledip", "c.sipcalledip"},
	{"sipcalledport", "c.sipcalledport"},
	{"whohanged", "c.whohanged"},
	{"bye", "c.bye"},
	{"lastSIPresponseNum", "c.lastSIPresponseNum"},
	{"lastSIPresponse_id", "c.lastSIPresponse_id"},
	{"lastSIPresponse", "r.lastSIPresponse"},
	{"a_ua", "ua.ua"},
	{"b_ua", "ub.ua"},
	{"payload", "c.payload"},
	{"a_payload", "c.a_payload"},
	{"b_payload", "c.b_payload"},
	{"a_saddr", "c.a_saddr"},
	{"b_saddr", "c.b_saddr"},
	{"a_received", "c.a_received"},
	{"b_received", "c.b_received"},
	{"a_lost", "c.a_lost"},
	{"b_lost", "c.b_lost"},
	{"a_avgjitter_mult10", "c.a_avgjitter_mult10"},
	{"b_avgjitter_mult10", "c.b_avgjitter_mult10"},
	{"a_maxjitter", "c.a_maxjitter"},
	{"b_maxjitter", "c.b_maxjitter"},
	{"a_mos_f1_mult10", "c.a_mos_f1_mult10"},
	{"b_mos_f1_mult10", "c.b_mos_f1_mult10"},
	{"a_mos_f2_mult10", "c.a_mos_f2_mult10"},
	{"b_mos_f2_mult10", "c.b_mos_f2_mult10"},
	{"a_mos_adapt_mult10", "c.a_mos_adapt_mult10"},
	{"b_mos_adapt_mult10", "c.b_mos_adapt_mult10"},
	{"mos_min_mult10", "c.mos_min_mult10"},
	{"packet_loss_perc_mult1000", "c.packet_loss_perc_mult1000"},
	{"jitter_mult10", "c.jitter_mult10"},
	{"delay_avg_mult100", "c.delay_avg_mult100"},
	{"a_rtcp_maxjitter", "c.a_rtcp_maxjitter"},
	{"b_rtcp_maxjitter", "c.b_rtcp_maxjitter"},
	{"a_rtcp_maxfr", "c.a_rtcp_maxfr"},
	{"b_rtcp_maxfr", "c.b_rtcp_maxfr"},
	{"vlan", "c.vlan"},
	{"fbasename", "n.fbasename"},
}

const listJoins = ` FROM cdr c
 LEFT JOIN cdr_next n ON n.cdr_ID = c.ID
 LEFT JOIN cdr_sip_response r ON r.id = c.lastSIPresponse_id
 LEFT JOIN cdr_ua ua ON ua.id = c.a_ua_id
 LEFT JOIN cdr_ua ub ON ub.id = c.b_ua_id`

// Columns returns the names of the LISTING row fields, in order.
func Columns() []string {
	out := make([]string, len(listColumns))
	for i, c := range listColumns {
		out[i] = c.name
	}
	return out
}

// GroupColumns are the fields of a grouped (SIP response summary) row, in
// the order of the seed's example.
var groupColumns = []column{
	{"lastSIPresponseNum", "c.lastSIPresponseNum"},
	{"lastSIPresponse_id", "c.lastSIPresponse_id"},
	{"cnt_all", "COUNT(*)"},
	{"duration_all", "ROUND(COALESCE(SUM(c.connect_duration),0))"},
	{"acd_all", "ROUND(SUM(c.connect_duration) / NULLIF(SUM(c.connect_duration IS NOT NULL),0), 4)"},
	{"asr_all", "SUM(c.connect_duration IS NOT NULL) / COUNT(*) * 100"},
	{"mos_all", "AVG(c.mos_min_mult10 / 10)"},
	{"packets_lost_all", "AVG(c.packet_loss_perc_mult1000 / 1000)"},
	{"jitter_all", "AVG(c.jitter_mult10 / 10)"},
	{"delay_all", "AVG(c.delay_avg_mult100)"},
	{"cnt_ok", "NULL"},
	{"cnt_err", "NULL"},
	{"lastSIPresponse", "MAX(r.lastSIPresponse)"},
	{"id", "MAX(r.lastSIPresponse)"},
}

// GroupColumns returns the names of the grouped row fields, in order.
func GroupColumns() []string {
	out := make([]string, len(groupColumns))
	for i, c := range groupColumns {
		out[i] = c.name
	}
	return out
}

// sortable maps a sort "property" to its ORDER BY expression. Only these
// names are accepted: nothing from the request reaches SQL text.
var sortable = map[string]string{
	"ID": "c.ID", "id": "c.ID", "cdrId": "c.ID",
	"calldate": "c.calldate", "calldate2": "c.calldate", "callend": "c.callend",
	"duration": "c.duration", "connect_duration": "c.connect_duration",
	"progress_time": "c.progress_time", "caller": "c.caller", "called": "c.called",
	"callername": "c.callername", "caller_domain": "c.caller_domain",
	"called_domain": "c.called_domain", "sipcallerip": "c.sipcallerip",
	"sipcalledip": "c.sipcalledip", "lastSIPresponseNum": "c.lastSIPresponseNum",
	"bye": "c.bye", "id_sensor": "c.id_sensor", "payload": "c.payload",
	"a_lost": "c.a_lost", "b_lost": "c.b_lost", "lost": "c.lost",
	"jitter_mult10": "c.jitter_mult10", "mos_min_mult10": "c.mos_min_mult10",
	"packet_loss_perc_mult1000": "c.packet_loss_perc_mult1000",
	"delay_avg_mult100":         "c.delay_avg_mult100", "a_saddr": "c.a_saddr",
	"b_saddr": "c.b_saddr", "vlan": "c.vlan",
}

// specialOrders are the orderBy* flags and their ORDER BY terms.
var specialOrders = []struct{ param, expr string }{
	{"orderByLoss", "c.packet_loss_perc_mult1000 DESC"},
	{"orderByDelay", "c.delay_avg_mult100 DESC"},
	{"orderByFixed1", "LEAST(COALESCE(c.a_mos_f1_mult10,255), COALESCE(c.b_mos_f1_mult10,255)) ASC"},
	{"orderByFixed2", "LEAST(COALESCE(c.a_mos_f2_mult10,255), COALESCE(c.b_mos_f2_mult10,255)) ASC"},
	{"orderByAdapt", "LEAST(COALESCE(c.a_mos_adapt_mult10,255), COALESCE(c.b_mos_adapt_mult10,255)) ASC"},
	{"orderByCallDuration_asc", "c.duration ASC"},
	{"orderByCallDuration_desc", "c.duration DESC"},
	{"orderBySrcSIP_IP_asc", "c.sipcallerip ASC"},
	{"orderBySrcSIP_IP_desc", "c.sipcallerip DESC"},
	{"orderByDstSIP_IP_asc", "c.sipcalledip ASC"},
	{"orderByDstSIP_IP_desc", "c.sipcalledip DESC"},
	{"orderBySrcNumber_asc", "c.caller ASC"},
	{"orderBySrcNumber_desc", "c.caller DESC"},
	{"orderByDstNumber_asc", "c.called ASC"},
	{"orderByDstNumber_desc", "c.called DESC"},
	{"orderByCallerName_asc", "c.callername ASC"},
	{"orderByCallerName_desc", "c.callername DESC"},
	{"orderByLastSIPrespNum_asc", "c.lastSIPresponseNum ASC"},
	{"orderByLastSIPrespNum_desc", "c.lastSIPresponseNum DESC"},
}

// SelectSQL is the SELECT of every LISTING field with its joins, without
// WHERE or ORDER BY (one CDR: append " WHERE c.ID = ?"); ipv6 says the IP
// columns are varbinary(16) (VoIPmonitor's ipv6 = yes).
func SelectSQL(ipv6 bool) string { return selectList(listColumns, ipv6) + listJoins }

// selectList is "SELECT expr, expr, …" of cols.
func selectList(cols []column, ipv6 bool) string {
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = c.expr
		if ipColumns[c.name] {
			exprs[i] = IPText(c.expr, ipv6)
		}
	}
	return "SELECT " + strings.Join(exprs, ", ")
}

// IPText is the SQL expression that renders IP column col as text: dotted
// IPv4 from VoIPmonitor's int unsigned column (ipv6 = no), IPv4 or IPv6
// text from its varbinary(16) column (ipv6 = yes: 4 or 16 bytes).
func IPText(col string, ipv6 bool) string {
	if ipv6 {
		return "INET6_NTOA(" + col + ")"
	}
	return "INET_NTOA(" + col + ")"
}
