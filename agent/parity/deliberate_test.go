package parity

import (
	"fmt"
	"strings"
)

// Reasons the agent differs from VoIPmonitor on purpose. Each is a row of
// testdata/parity/DIFFERENCES.md; keep the two in step.
const (
	reasonUnregister = "D1: an unregistration is stored as state 6 (Unregister)"
	reasonCancel408  = "D2: the INVITE's real final response (408), not a synthesised 487"
	reasonIPv6Host   = "D3: the whole IPv6 host, not the text before its first ':'"
	reasonRelayLegs  = "D5: a REGISTER relayed by a proxy is one registration per leg, each OK"
)

// deliberate says why a differing value differs on purpose, or "" when it
// should not differ. oursRow is the agent's row the value came from (nil
// when the agent has no such row).
func deliberate(d Diff, oursRow Row) string {
	table, column, _ := strings.Cut(d.Column, ".")
	switch {
	case table == "register_state" && str(oursRow["state"]) == "6" &&
		(column == "(row)" && d.Ref == nil || column == "state" && str(d.Ref) == "1"):
		// VoIPmonitor writes nothing when the 200 OK to REGISTER
		// Expires: 0 lacks a Contact, and state 1 with expires 0 when it
		// has one.
		return reasonUnregister
	case table == "register_state" && column == "(row)" && d.Ref == nil && oursRow["_relay_leg"] == true,
		table == "register_state" && column == "state" && str(d.Ref) == "3" && str(oursRow["state"]) == "1":
		// VoIPmonitor takes both legs of a relayed REGISTER (one
		// Call-ID) as one call: the first leg's addresses, the last
		// 200 OK's expiry, and state 3 because that 200 OK's CSeq was
		// answered already on the other leg.
		return reasonRelayLegs
	case table == "cdr" && str(oursRow["lastSIPresponseNum"]) == "408" && str(d.Ref) != "" &&
		(column == "lastSIPresponseNum" && str(d.Ref) == "487" ||
			column == "_joined.lastSIPresponse" && strings.HasPrefix(str(d.Ref), "487 ")):
		return reasonCancel408
	case table == "cdr" && (column == "caller_domain" || column == "called_domain") &&
		strings.Contains(str(d.Ours), ":") && str(d.Ref) != "" && strings.HasPrefix(str(d.Ours), str(d.Ref)+":"):
		return reasonIPv6Host
	}
	return ""
}

// reasonIDs lists the reasons (for the report's legend).
var reasonIDs = []string{reasonUnregister, reasonCancel408, reasonIPv6Host, reasonRelayLegs}

func legend() string {
	var b strings.Builder
	for _, r := range reasonIDs {
		fmt.Fprintf(&b, "* %s\n", r)
	}
	return b.String()
}
