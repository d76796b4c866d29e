package cdr

import (
	"context"
	"database/sql"
	"encoding/binary"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// VoIPmonitor's ipv6 setting decides the type of every IP column: int
// unsigned (the IPv4 address as a big-endian number) with ipv6 = no,
// varbinary(16) with ipv6 = yes, filled with MariaDB's INET6_ATON of the
// address's text (sql_db.cpp SqlDb_row::add(vmIP) and ip.cpp
// _getStringForMysqlIpColumn): 16 bytes for an IPv6 address, 4 for an IPv4
// one. It writes each column in the form its type asks for
// (SqlDb::isIPv6Column), and at start its checkSchema takes the mode from
// cdr.sipcallerip's type, whatever the setting says.

// ipColumns are the IP columns of the tables the writer fills.
var ipColumns = map[string][]string{
	"cdr":             {"sipcallerip", "sipcalledip", "a_saddr", "b_saddr"},
	"cdr_rtp":         {"saddr", "daddr"},
	"cdr_dtmf":        {"daddr", "saddr"},
	"register_state":  {"sipcallerip", "sipcalledip"},
	"register_failed": {"sipcallerip", "sipcalledip"},
}

// ipv4Column matches an IP column's definition in tableDDL (ipv6 = no).
var ipv4Column = regexp.MustCompile(`^(\s*"([^"]+)") int\(10\) unsigned( .*)$`)

// ddlBody returns a table's body for the IP mode: with ipv6 its IP columns
// are varbinary(16), as VoIPmonitor's VM_IPV6_TYPE_MYSQL_COLUMN makes them.
func ddlBody(table, body string, ipv6 bool) string {
	cols := ipColumns[table]
	if !ipv6 || len(cols) == 0 {
		return body
	}
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		m := ipv4Column.FindStringSubmatch(l)
		if m != nil && slices.Contains(cols, m[2]) {
			lines[i] = m[1] + " varbinary(16)" + m[3]
		}
	}
	return strings.Join(lines, "\n")
}

// ipForms says, per "table.column", which IP columns are varbinary: the
// form the writer gives each address. The zero value is ipv6 = no.
type ipForms map[string]bool

// v6 reports whether cdr.sipcallerip is varbinary: the database's mode.
func (f ipForms) v6() bool { return f["cdr.sipcallerip"] }

// readIPForms reads the type of every IP column the writer fills.
func readIPForms(ctx context.Context, db *sql.DB) (ipForms, error) {
	rows, err := db.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('cdr','cdr_rtp','cdr_dtmf','register_state','register_failed')`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	f := ipForms{}
	for rows.Next() {
		var table, column, typ string
		if err := rows.Scan(&table, &column, &typ); err != nil {
			return nil, err
		}
		if slices.Contains(ipColumns[table], column) && strings.Contains(strings.ToLower(typ), "binary") {
			f[table+"."+column] = true
		}
	}
	return f, rows.Err()
}

// ip is the value of an IP column: ip4's number, or with a varbinary
// column the address's bytes (4 for IPv4, 16 for IPv6); NULL when unset.
func (f ipForms) ip(table, column string, a netip.Addr) any {
	if !f[table+"."+column] {
		return ip4(a)
	}
	return ipBytes(a)
}

// ipNotNull is ip for NOT NULL columns (register_*): 0, or 0.0.0.0's four
// bytes, when there is no address (VoIPmonitor's unset vmIP is 0.0.0.0).
func (f ipForms) ipNotNull(table, column string, a netip.Addr) any {
	if !f[table+"."+column] {
		return ip4NotNull(a)
	}
	if v := ipBytes(a); v != nil {
		return v
	}
	return []byte{0, 0, 0, 0}
}

// ipBytes is INET6_ATON of the address's text: NULL when it is invalid.
func ipBytes(a netip.Addr) any {
	switch {
	case a.Is4():
		b := a.As4()
		return b[:]
	case a.Is6():
		b := a.As16()
		return b[:]
	}
	return nil
}

// ip4 is VoIPmonitor's int unsigned IPv4 column value (ipv6 = no); NULL for
// an IPv6 or missing address.
func ip4(a netip.Addr) any {
	a = a.Unmap()
	if !a.Is4() {
		return nil
	}
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// ip4NotNull is ip4 for NOT NULL columns (register_*): 0 when not IPv4.
func ip4NotNull(a netip.Addr) any {
	if v := ip4(a); v != nil {
		return v
	}
	return uint32(0)
}
