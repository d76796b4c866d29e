package simulate

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
)

// msgKind is one SIP message of a dialog.
type msgKind uint8

const (
	mInvite       msgKind = iota
	mTrying               // 100 to INVITE
	mRinging              // 180
	mOK                   // 200 to INVITE, with SDP
	mAck                  // ACK to the 200
	mBye                  // from the caller or the PBX (callState.byCaller)
	mByeOK                // 200 to BYE
	mBusy                 // 486
	mCancel               // CANCEL
	mCancelOK             // 200 to CANCEL
	mTerminated           // 487 to INVITE
	mUnavailable          // 480 to INVITE
	mAckErr               // ACK to a failure response
	mRegister             // REGISTER without credentials
	mUnauthorized         // 401 with WWW-Authenticate
	mRegisterAuth         // REGISTER with Authorization
	mRegOK                // 200 to REGISTER
	mForbidden            // 403 to REGISTER
)

// fromClient reports whether the caller/registrant sends m in dialog d.
func (m msgKind) fromClient(d *callState) bool {
	switch m {
	case mInvite, mAck, mCancel, mAckErr, mRegister, mRegisterAuth:
		return true
	case mBye:
		return d.byCaller
	case mByeOK:
		return !d.byCaller
	}
	return false
}

const (
	clientUA = "simulate-phone/1.0"
	pbxUA    = "simulate-pbx/1.0"
	realm    = "simulate"
)

// pbxFinals are the PBX's header-only final answers to the first INVITE
// (or to its CANCEL): status code, reason phrase and the CSeq method.
var pbxFinals = map[msgKind]struct {
	code           int
	reason, method string
}{
	mBusy:        {486, "Busy Here", "INVITE"},
	mCancelOK:    {200, "OK", "CANCEL"},
	mTerminated:  {487, "Request Terminated", "INVITE"},
	mUnavailable: {480, "Temporarily Unavailable", "INVITE"},
}

// sipMessage builds message m of dialog d into g.msg and says who sends it.
func (g *Generator) sipMessage(d *callState, m msgKind) ([]byte, bool) {
	w := g.dialogWriter(d)
	var body []byte
	switch m {
	case mRegister, mRegisterAuth, mUnauthorized, mRegOK, mForbidden:
		w.registerMessage(m)
	default:
		body = g.callMessage(&w, m)
	}
	if body != nil {
		w.header("Content-Type", "application/sdp")
	}
	w.header("Content-Length", strconv.Itoa(len(body)))
	w.line()
	w.b = append(w.b, body...)
	g.msg = w.b
	return w.b, m.fromClient(d)
}

// dialogWriter writes one message of a dialog: the addresses every message
// of the dialog names (Via, From, To, Contact) are worked out once.
type dialogWriter struct {
	sipWriter
	d                             *callState
	tr, uriParam                  string // transport, and its URI parameter
	pbx                           string // the PBX's host in URIs
	clientVia, from, to, toTagged string
	clientContact, pbxContact     string
}

func (g *Generator) dialogWriter(d *callState) dialogWriter {
	w := dialogWriter{sipWriter: sipWriter{b: g.msg[:0]}, d: d, tr: "UDP", pbx: g.pbx.uri}
	if g.o.Transport == TransportTCP {
		w.tr, w.uriParam = "TCP", ";transport=tcp"
	}
	w.clientVia = fmt.Sprintf("SIP/2.0/%s %s:%d;branch=%s", w.tr, d.host.uri, d.cport, d.branch)
	w.from = fmt.Sprintf("\"Caller %d\" <sip:%s@%s>;tag=%s", d.idx, d.caller, d.host.uri, d.fromTag)
	w.to = fmt.Sprintf("<sip:%s@%s>", d.called, w.pbx)
	if d.reg {
		w.from = fmt.Sprintf("<sip:%s@%s>;tag=%s", d.caller, w.pbx, d.fromTag)
		w.to = fmt.Sprintf("<sip:%s@%s>", d.caller, w.pbx)
	}
	w.toTagged = w.to + ";tag=" + d.toTag
	w.clientContact = fmt.Sprintf("<sip:%s@%s:%d%s>", d.caller, d.host.uri, d.cport, w.uriParam)
	w.pbxContact = fmt.Sprintf("<sip:%s@%s:%d%s>", d.called, w.pbx, SIPPort, w.uriParam)
	return w
}

// request writes a request line and the headers every request has.
func (w *dialogWriter) request(method, uri, via, from, to string, cseq int) {
	w.line(method, " ", uri, " SIP/2.0")
	w.header("Via", via)
	w.header("Max-Forwards", "70")
	w.header("From", from)
	w.header("To", to)
	w.header("Call-ID", w.d.callID)
	w.header("CSeq", strconv.Itoa(cseq)+" "+method)
}

// response writes a status line and the headers copied from the request.
func (w *dialogWriter) response(code int, reason, via, from, to string, cseq int, method string) {
	w.line("SIP/2.0 ", strconv.Itoa(code), " ", reason)
	w.header("Via", via)
	w.header("From", from)
	w.header("To", to)
	w.header("Call-ID", w.d.callID)
	w.header("CSeq", strconv.Itoa(cseq)+" "+method)
}

// callMessage writes the headers of a call's message m and returns its SDP
// body (nil for none).
func (g *Generator) callMessage(w *dialogWriter, m msgKind) []byte {
	d, pbx := w.d, w.pbx
	switch m {
	case mInvite:
		w.request("INVITE", "sip:"+d.called+"@"+pbx, w.clientVia, w.from, w.to, 1)
		w.header("Contact", w.clientContact)
		w.header("User-Agent", clientUA)
		w.header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
		return g.sdpBody(d, &d.host, d.rtpPort[0])
	case mTrying:
		w.response(100, "Trying", w.clientVia, w.from, w.to, 1, "INVITE")
		w.header("Server", pbxUA)
	case mRinging:
		w.response(180, "Ringing", w.clientVia, w.from, w.toTagged, 1, "INVITE")
		w.header("Contact", w.pbxContact)
		w.header("Server", pbxUA)
	case mOK:
		w.response(200, "OK", w.clientVia, w.from, w.toTagged, 1, "INVITE")
		w.header("Contact", w.pbxContact)
		w.header("Server", pbxUA)
		w.header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
		return g.sdpBody(d, d.media, d.rtpPort[1])
	case mAck:
		w.request("ACK", fmt.Sprintf("sip:%s@%s:%d%s", d.called, pbx, SIPPort, w.uriParam), w.clientVia+"-ack", w.from, w.toTagged, 1)
		w.header("User-Agent", clientUA)
	case mBye:
		if d.byCaller {
			w.request("BYE", fmt.Sprintf("sip:%s@%s:%d%s", d.called, pbx, SIPPort, w.uriParam), w.clientVia+"-bye", w.from, w.toTagged, 2)
			w.header("User-Agent", clientUA)
		} else {
			w.request("BYE", fmt.Sprintf("sip:%s@%s:%d%s", d.caller, d.host.uri, d.cport, w.uriParam), g.pbxVia(d, w.tr), w.toTagged, w.from, 102)
			w.header("User-Agent", pbxUA)
		}
	case mByeOK:
		if d.byCaller {
			w.response(200, "OK", w.clientVia+"-bye", w.from, w.toTagged, 2, "BYE")
			w.header("Server", pbxUA)
		} else {
			w.response(200, "OK", g.pbxVia(d, w.tr), w.toTagged, w.from, 102, "BYE")
			w.header("User-Agent", clientUA)
		}
	case mBusy, mCancelOK, mTerminated, mUnavailable:
		st := pbxFinals[m]
		w.response(st.code, st.reason, w.clientVia, w.from, w.toTagged, 1, st.method)
		w.header("Server", pbxUA)
	case mCancel:
		w.request("CANCEL", "sip:"+d.called+"@"+pbx, w.clientVia, w.from, w.to, 1)
		w.header("User-Agent", clientUA)
	case mAckErr:
		w.request("ACK", "sip:"+d.called+"@"+pbx, w.clientVia, w.from, w.toTagged, 1)
		w.header("User-Agent", clientUA)
	}
	return nil
}

// registerMessage writes a registration's message m: REGISTER (without,
// then with credentials) and the PBX's 401, 200 or 403.
func (w *dialogWriter) registerMessage(m msgKind) {
	d, pbx := w.d, w.pbx
	switch m {
	case mRegister, mRegisterAuth:
		via, cseq := w.clientVia, 1
		if m == mRegisterAuth {
			via, cseq = w.clientVia+"-auth", 2
		}
		w.request("REGISTER", "sip:"+pbx, via, w.from, w.to, cseq)
		w.header("Contact", w.clientContact)
		w.header("Expires", "3600")
		if m == mRegisterAuth {
			w.header("Authorization", fmt.Sprintf(
				"Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"sip:%s\", response=\"%s\", algorithm=MD5",
				d.caller, realm, nonce(d), pbx, digestResponse(d.caller, d.callID)))
		}
		w.header("User-Agent", clientUA)
	case mUnauthorized:
		w.response(401, "Unauthorized", w.clientVia, w.from, w.toTagged, 1, "REGISTER")
		w.header("WWW-Authenticate", fmt.Sprintf("Digest realm=\"%s\", nonce=\"%s\", algorithm=MD5", realm, nonce(d)))
		w.header("Server", pbxUA)
	case mRegOK, mForbidden:
		via, cseq := w.clientVia, 1
		if d.steps[0].msg == mRegister && len(d.steps) > 2 {
			via, cseq = w.clientVia+"-auth", 2
		}
		if m == mRegOK {
			w.response(200, "OK", via, w.from, w.toTagged, cseq, "REGISTER")
			w.header("Contact", w.clientContact+";expires=3600")
		} else {
			w.response(403, "Forbidden", via, w.from, w.toTagged, cseq, "REGISTER")
		}
		w.header("Server", pbxUA)
	}
}

func (g *Generator) pbxVia(d *callState, tr string) string {
	return fmt.Sprintf("SIP/2.0/%s %s:%d;branch=z9hG4bK-pbx-%s", tr, g.pbx.uri, SIPPort, d.toTag)
}

func nonce(d *callState) string {
	sum := md5.Sum([]byte("nonce:" + d.callID))
	return hex.EncodeToString(sum[:8])
}

// digestResponse is a plausible-looking (not verifiable) digest response.
func digestResponse(user, callID string) string {
	sum := md5.Sum([]byte(user + ":" + callID))
	return hex.EncodeToString(sum[:])
}

// sdpBody builds the SDP offer or answer of h at port into g.sdp.
func (g *Generator) sdpBody(d *callState, h *host, port uint16) []byte {
	ipv := "IP4"
	if h.addr.Is6() {
		ipv = "IP6"
	}
	codec := "PCMU/8000"
	switch {
	case g.coded != nil:
		codec = g.coded.rtpmap
	case d.pt == 8:
		codec = "PCMA/8000"
	}
	w := &sipWriter{b: g.sdp[:0]}
	sess := strconv.Itoa(1000 + d.idx)
	w.line("v=0")
	w.line("o=- ", sess, " ", sess, " IN ", ipv, " ", h.addr.String())
	w.line("s=simulate")
	w.line("c=IN ", ipv, " ", h.addr.String())
	w.line("t=0 0")
	pt := strconv.Itoa(int(d.pt))
	w.line("m=audio ", strconv.Itoa(int(port)), " RTP/AVP ", pt, " 101")
	w.line("a=rtpmap:", pt, " ", codec)
	if g.coded != nil && g.coded.fmtp != "" {
		w.line("a=fmtp:", pt, " ", g.coded.fmtp)
	}
	w.line("a=rtpmap:101 telephone-event/8000")
	w.line("a=fmtp:101 0-16")
	w.line("a=ptime:", strconv.Itoa(int(ptimeOf(g.coded).Milliseconds())))
	w.line("a=sendrecv")
	g.sdp = w.b
	return w.b
}

// sipWriter appends CRLF-terminated lines.
type sipWriter struct{ b []byte }

func (w *sipWriter) line(parts ...string) {
	for _, p := range parts {
		w.b = append(w.b, p...)
	}
	w.b = append(w.b, '\r', '\n')
}

func (w *sipWriter) header(name, value string) { w.line(name, ": ", value) }
