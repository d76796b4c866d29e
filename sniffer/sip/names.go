package sip

// hdrID identifies a well-known header so lookups do not compare names.
// 0 means "not in the table": compare the name itself.
type hdrID uint8

const (
	hUnknown hdrID = iota
	hCallID
	hFrom
	hTo
	hCSeq
	hVia
	hContact
	hContentLength
	hContentType
	hContentEncoding
	hSubject
	hSupported
	hEvent
	hReferTo
	hAllowEvents
	hReferredBy
	hAcceptContact
	hRejectContact
	hRequestDisposition
	hSessionExpires
	hIdentity
	hIdentityInfo
	hDate
	hUserAgent
	hServer
	hRoute
	hRecordRoute
	hAllow
	hRequire
	hProxyRequire
	hUnsupported
	hAccept
	hAcceptEncoding
	hAcceptLanguage
	hPath
	hServiceRoute
	hMaxForwards
	hExpires
	hPAssertedIdentity
	hRemotePartyID
	hWarning
	hReason
	hCallInfo
	hAlertInfo
	hErrorInfo
	hPAssociatedURI
	hInReplyTo
	hHistoryInfo
	hDiversion
	numHdrIDs
)

type hdrName struct {
	full    string
	compact byte // 0 when the header has no compact form
	list    bool // values may be joined with commas (RFC 3261 section 7.3.1)
}

// hdrNames is indexed by hdrID. Compact forms: RFC 3261 section 20 and the
// IANA SIP parameters registry.
var hdrNames = [numHdrIDs]hdrName{
	hCallID:             {"Call-ID", 'i', false},
	hFrom:               {"From", 'f', false},
	hTo:                 {"To", 't', false},
	hCSeq:               {"CSeq", 0, false},
	hVia:                {"Via", 'v', true},
	hContact:            {"Contact", 'm', true},
	hContentLength:      {"Content-Length", 'l', false},
	hContentType:        {"Content-Type", 'c', false},
	hContentEncoding:    {"Content-Encoding", 'e', true},
	hSubject:            {"Subject", 's', false},
	hSupported:          {"Supported", 'k', true},
	hEvent:              {"Event", 'o', false},
	hReferTo:            {"Refer-To", 'r', false},
	hAllowEvents:        {"Allow-Events", 'u', true},
	hReferredBy:         {"Referred-By", 'b', false},
	hAcceptContact:      {"Accept-Contact", 'a', true},
	hRejectContact:      {"Reject-Contact", 'j', true},
	hRequestDisposition: {"Request-Disposition", 'd', true},
	hSessionExpires:     {"Session-Expires", 'x', false},
	hIdentity:           {"Identity", 'y', false},
	hIdentityInfo:       {"Identity-Info", 'n', false},
	hDate:               {"Date", 0, false},
	hUserAgent:          {"User-Agent", 0, false},
	hServer:             {"Server", 0, false},
	hRoute:              {"Route", 0, true},
	hRecordRoute:        {"Record-Route", 0, true},
	hAllow:              {"Allow", 0, true},
	hRequire:            {"Require", 0, true},
	hProxyRequire:       {"Proxy-Require", 0, true},
	hUnsupported:        {"Unsupported", 0, true},
	hAccept:             {"Accept", 0, true},
	hAcceptEncoding:     {"Accept-Encoding", 0, true},
	hAcceptLanguage:     {"Accept-Language", 0, true},
	hPath:               {"Path", 0, true},
	hServiceRoute:       {"Service-Route", 0, true},
	hMaxForwards:        {"Max-Forwards", 0, false},
	hExpires:            {"Expires", 0, false},
	hPAssertedIdentity:  {"P-Asserted-Identity", 0, true},
	hRemotePartyID:      {"Remote-Party-ID", 0, true},
	hWarning:            {"Warning", 0, true},
	hReason:             {"Reason", 0, true},
	hCallInfo:           {"Call-Info", 0, true},
	hAlertInfo:          {"Alert-Info", 0, true},
	hErrorInfo:          {"Error-Info", 0, true},
	hPAssociatedURI:     {"P-Associated-URI", 0, true},
	hInReplyTo:          {"In-Reply-To", 0, true},
	hHistoryInfo:        {"History-Info", 0, true},
	hDiversion:          {"Diversion", 0, true},
}

// compactIDs maps a lower-case compact letter to its header.
func compactID(c byte) hdrID {
	c = lower(c)
	for id := hdrID(1); id < numHdrIDs; id++ {
		if hdrNames[id].compact == c {
			return id
		}
	}
	return hUnknown
}

// lookupID returns the well-known id of a header name (full or compact,
// any case) without allocating.
func lookupID[T string | []byte](name T) hdrID {
	if len(name) == 1 {
		return compactID(name[0])
	}
	for id := hdrID(1); id < numHdrIDs; id++ {
		if equalFold(name, hdrNames[id].full) {
			return id
		}
	}
	return hUnknown
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares ASCII case-insensitively.
func equalFold[T, U string | []byte](a T, b U) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}
