package parity

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// compared tables: what the agent writes that VoIPmonitor's files hold too.
var dataTables = []string{"cdr", "cdr_next", "cdr_rtp", "cdr_sipresp", "cdr_dtmf", "register_state", "register_failed"}

// ipColumns are the IP columns per table (ipv6 = no: int unsigned; ipv6 =
// yes: varbinary(16), 4 bytes for IPv4 and 16 for IPv6).
var ipColumns = map[string][]string{
	"cdr":             {"sipcallerip", "sipcalledip", "a_saddr", "b_saddr"},
	"cdr_rtp":         {"saddr", "daddr"},
	"cdr_dtmf":        {"saddr", "daddr"},
	"register_state":  {"sipcallerip", "sipcalledip"},
	"register_failed": {"sipcallerip", "sipcalledip"},
}

// ReadTables reads the agent's rows from db, with the lookup texts and IP
// texts added the way the reference files carry them; ipv6 says the IP
// columns are varbinary(16).
func ReadTables(ctx context.Context, db *sql.DB, ipv6 bool) (Tables, error) {
	out := Tables{}
	for _, t := range dataTables {
		rows, err := readTable(ctx, db, "SELECT * FROM `"+t+"`")
		if err != nil {
			return nil, fmt.Errorf("parity: read %s: %w", t, err)
		}
		out[t] = rows
	}
	look := map[string]map[string]string{}
	for name, q := range map[string]string{
		"response": "SELECT `id`, `lastSIPresponse` FROM `cdr_sip_response`",
		"ua":       "SELECT `id`, `ua` FROM `cdr_ua`",
		"reason":   "SELECT `id`, `reason` FROM `cdr_reason`",
	} {
		rows, err := readTable(ctx, db, q)
		if err != nil {
			return nil, fmt.Errorf("parity: read lookup %s: %w", name, err)
		}
		m := map[string]string{}
		for _, r := range rows {
			id, _ := r["id"].(string)
			for k, v := range r {
				if k != "id" && v != nil {
					m[id] = v.(string)
				}
			}
		}
		look[name] = m
	}
	join := func(r Row, idCol, table, as string) {
		if id, ok := r[idCol].(string); ok {
			if s, ok := look[table][id]; ok {
				r["_joined."+as] = s
			}
		}
	}
	for _, r := range out["cdr"] {
		join(r, "lastSIPresponse_id", "response", "lastSIPresponse")
		join(r, "a_ua_id", "ua", "a_ua")
		join(r, "b_ua_id", "ua", "b_ua")
		join(r, "reason_sip_text_id", "reason", "reason_sip_text")
		join(r, "reason_q850_text_id", "reason", "reason_q850_text")
	}
	for _, r := range out["cdr_sipresp"] {
		join(r, "SIPresponse_id", "response", "SIPresponse")
	}
	for _, t := range []string{"register_state", "register_failed"} {
		for _, r := range out[t] {
			join(r, "ua_id", "ua", "ua")
		}
	}
	for t, cols := range ipColumns {
		for _, r := range out[t] {
			for _, c := range cols {
				if s, ok := ipText(r[c], ipv6); ok {
					r["_ip_text."+c] = s
				}
			}
		}
	}
	return out, nil
}

// ipText turns an int unsigned IPv4 column value into dotted text, or with
// ipv6 a varbinary one (its bytes) into IPv4 or IPv6 text.
func ipText(v any, ipv6 bool) (string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", false
	}
	if ipv6 {
		a, ok := netip.AddrFromSlice([]byte(s))
		if !ok {
			return "", false
		}
		return a.String(), true
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return "", false
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n))
	return netip.AddrFrom4(b).String(), true
}

func readTable(ctx context.Context, db *sql.DB, q string) ([]Row, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []Row
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make(Row, len(cols))
		for i, c := range cols {
			if vals[i] == nil {
				r[c] = nil
			} else {
				r[c] = strings.Clone(string(vals[i]))
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
