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
		if name, user, host, ok := identity(m.Header(h)); ok {
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
		if _, user, host, ok := identity(m.Header(h)); ok {
			d.Caller, d.CallerDomain, d.CallerName = user, host, "anonymous"
			return
		}
	}
}

// identity reads an identity header's first name-addr: its display name,
// its user (a tel: URI's number) and host; false when it has no user.
func identity(v []byte) (name, user, host string, ok bool) {
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
	}
	return unquote(disp), user, host, user != ""
}
