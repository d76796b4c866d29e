package call

import (
	"bytes"
	"strings"

	"pbx-agent/sniffer/sip"
)

// CallerID says which identity headers of an INVITE give the caller's
// number, domain and name in place of From's, as VoIPmonitor's options of
// the same names (sniff.cpp, the caller number of a new call).
type CallerID struct {
	PAssertedIdentity  bool // passertedidentity
	PPreferredIdentity bool // ppreferredidentity
	RemotePartyID      bool // remotepartyid
	// RemotePartyFirst (remotepartypriority) looks at Remote-Party-ID
	// before the other two.
	RemotePartyFirst bool
	// NumberWithParams (callernum_numberonly = no) no longer reads the
	// number of an identity header's URI with parameters but no '@'
	// ("<sip:+4930111;cpc=ordinary>"): it gives no number then, and the
	// next header or From is used, as VoIPmonitor's. The zero value is its
	// default (yes: the number before the ';'). From keeps no number then
	// either way (parity DIFFERENCES.md D4).
	NumberWithParams bool
}

// apply sets d's caller from the first enabled identity header that has a
// number, in VoIPmonitor's order (P-Asserted-Identity, P-Preferred-Identity,
// Remote-Party-ID; Remote-Party-ID first with RemotePartyFirst). A From of
// "anonymous" (a withheld number) takes the number and domain from those
// headers too, Remote-Party-ID last even when not enabled, and keeps
// "anonymous" as its name.
func (o CallerID) apply(m *sip.Message, d *CDR) {
	var order []string
	if o.RemotePartyFirst && o.RemotePartyID {
		order = append(order, "Remote-Party-ID")
	}
	if o.PAssertedIdentity {
		order = append(order, "P-Asserted-Identity")
	}
	if o.PPreferredIdentity {
		order = append(order, "P-Preferred-Identity")
	}
	if !o.RemotePartyFirst && o.RemotePartyID {
		order = append(order, "Remote-Party-ID")
	}
	for _, h := range order {
		if name, user, host, ok := o.identity(m.Header(h)); ok {
			d.CallerName, d.Caller, d.CallerDomain = name, user, host
			return
		}
	}
	if !strings.EqualFold(d.Caller, "anonymous") {
		return
	}
	if !o.RemotePartyFirst || !o.RemotePartyID { // VoIPmonitor looks at it last then
		order = append(order, "Remote-Party-ID")
	}
	for _, h := range order {
		if _, user, host, ok := o.identity(m.Header(h)); ok {
			d.Caller, d.CallerDomain, d.CallerName = user, host, "anonymous"
			return
		}
	}
}

// identity reads an identity header's first name-addr: its display name,
// its user (a tel: URI's number) and host; false when it has no user.
func (o CallerID) identity(v []byte) (name, user, host string, ok bool) {
	if i := bytes.IndexByte(v, ','); i >= 0 && bytes.IndexByte(v[:i], '"') < 0 {
		v = v[:i] // several identities (sip: and tel:): the first
	}
	disp, uri, _, err := sip.ParseNameAddr(v)
	if err != nil {
		return "", "", "", false
	}
	if len(uri) > 4 && strings.EqualFold(string(uri[:4]), "tel:") {
		num := uri[4:]
		if i := bytes.IndexByte(num, ';'); i >= 0 {
			num = num[:i]
		}
		user = string(num)
	} else {
		user, host = userHost(uri)
		user = o.number(uri, user)
	}
	return unquote(disp), user, host, user != ""
}

// number is the caller's number of a sip: or sips: URI whose user part
// userHost read as user, as VoIPmonitor reads it (sniff.cpp:1749-1818,
// _parse_peername for a caller): the user part ends at a ';', so
// "sip:+4930111;cpc=ordinary@carrier.example" is +4930111 whatever
// callernum_numberonly says; with no '@' after the ';' the number before
// it counts only with callernum_numberonly = yes (sniff.cpp:1780).
func (o CallerID) number(uri []byte, user string) string {
	if i := strings.IndexByte(user, ';'); i >= 0 {
		return user[:i]
	}
	if user != "" || o.NumberWithParams {
		return user
	}
	var rest []byte
	for _, scheme := range []string{"sip:", "sips:"} {
		if len(uri) > len(scheme) && strings.EqualFold(string(uri[:len(scheme)]), scheme) {
			rest = uri[len(scheme):]
		}
	}
	if i := bytes.IndexByte(rest, ';'); i > 0 && bytes.IndexByte(rest, '@') < 0 {
		return string(rest[:i])
	}
	return ""
}
