package call

import (
	"net/netip"
	"time"

	"pbx-agent/sniffer/rtp"
)

// ByeCode is VoIPmonitor's cdr.bye value: how a call ended.
type ByeCode int

// VoIPmonitor's bye codes (spec/voipmonitor.md §3.1).
const (
	ByeNoOK           ByeCode = 0   // no 200 OK to the INVITE
	ByeAnsweredNoBye  ByeCode = 1   // answered, no BYE seen
	ByeNoOKForBye     ByeCode = 2   // BYE without its 200 OK
	ByeOK             ByeCode = 3   // BYE and its 200 OK
	ByeTimeout        ByeCode = 102 // absolute timeout (Config.MaxDuration)
	ByeRTPTimeout     ByeCode = 104 // no packet for Config.IdleTimeout after its media
	ByeOneWay         ByeCode = 105 // no reply, Config.OneWayTimeout after its last packet
	ByeZombie         ByeCode = 107 // no 18x, 2xx nor media 300 s after the INVITE
	ByeSIPOnlyTimeout ByeCode = 108 // no media, Config.SIPOnlyTimeout after the INVITE
	ByeForced         ByeCode = 110 // forced termination (agent shutdown, end of capture)
)

// Hanger says which side sent the BYE (cdr.whohanged).
type Hanger string

const (
	HangerNone   Hanger = ""
	HangerCaller Hanger = "caller"
	HangerCallee Hanger = "callee"
)

// CDR is one call's record: a snapshot while the call is active and the final
// record once it ends. Field names follow VoIPmonitor's cdr columns.
type CDR struct {
	CallID       string
	CallRef      uint64 // callreference, unique while the call is active
	CallDate     time.Time
	CallEnd      time.Time // last SIP (or RTP) packet of the call
	ProgressTime time.Time // first 18x; zero when none
	ConnectTime  time.Time // 200 OK to the INVITE; zero when not answered
	ByeTime      time.Time // first BYE; zero when none
	LastSIP      time.Time // the call's last SIP message (CallEnd may be later: media)

	Caller, Called             string
	CallerDomain, CalledDomain string
	CallerName                 string
	PAssertedIdentity          string
	RemotePartyID              string
	CallerIP, CalledIP         netip.Addr
	CallerPort, CalledPort     uint16
	VLAN                       int

	LastSIPResponseNum int
	LastSIPResponse    string // "200 OK"
	Responses          []int  // every distinct final/provisional code seen, in order
	// SIPResponses are the distinct responses (code and reason phrase as
	// sent) to any request of the call, in order of first appearance
	// (VoIPmonitor's cdr_sipresp rows).
	SIPResponses    []Response
	ReasonQ850Cause int
	ReasonQ850Text  string
	ReasonSIPCause  int
	ReasonSIPText   string

	Bye       ByeCode
	WhoHanged Hanger
	// ForcedClose is set for a call still in the table when it was flushed
	// (end of a capture file, shutdown): VoIPmonitor's cdr.sighup.
	ForcedClose bool
	// DigestUsername is the username of the credentials an INVITE carried
	// (Authorization / Proxy-Authorization; cdr_next.digest_username).
	DigestUsername string
	CallerUA       string // a_ua: User-Agent of the caller
	CalledUA       string // b_ua: User-Agent/Server of the callee

	ReInvites int
	SRTP      bool        // the SDP offered encrypted media (RTP/SAVP, a=crypto): the sniffer cannot hear it
	Fax       bool        // the SDP offered T.38 fax (m=image, UDPTL): its packets are not RTP streams
	Hold      []time.Time // times the call went on hold (a=sendonly/inactive)

	// FaxPackets counts the UDPTL packets seen on the T.38 addresses (CDR
	// payload 1000, as VoIPmonitor writes a call with UDPTL).
	FaxPackets int `json:",omitempty"`
	// FaxTones: with faxdetect, a G.711 stream carried a fax tone (CNG or
	// CED) after the call's last SDP (CDR payload 1001, T.30 fax, as
	// VoIPmonitor writes it, unless NotAcceptable).
	FaxTones bool `json:",omitempty"`
	// NotAcceptable: an INVITE of the call was answered 488 or 606 (a
	// refused T.38 re-INVITE, say): VoIPmonitor's not_acceptable, which
	// keeps such a call from payload 1001.
	NotAcceptable bool `json:",omitempty"`

	// Response100 and ResponseXXX time the call's responses: 100 Trying
	// and any other code (VoIPmonitor's cdr.response_time_100 and
	// response_time_xxx; ResponseDelay.Millis makes the column).
	Response100 ResponseDelay `json:",omitzero"`
	ResponseXXX ResponseDelay `json:",omitzero"`

	Streams []rtp.Summary // every RTP stream of the call (cdr_rtp rows)
	DTMF    []DTMF        // digits, RFC 2833/4733 and SIP INFO, in time order
	Paused  []Interval    // recording paused (pausecall); an open End means still paused
	Active  bool          // still in progress when the snapshot was taken
}

// StreamAB returns the indexes in Streams of VoIPmonitor's stream A (sent by
// the caller) and B (sent by the callee): on each side the one with the most
// packets (received + lost); -1 when a side has none. Every view of a call
// (CDR row, listcalls, replay JSON, dashboard) picks its A/B through this.
func (c *CDR) StreamAB() (a, b int) {
	a, b = -1, -1
	best := [2]int{-1, -1}
	for i := range c.Streams {
		s := &c.Streams[i]
		n, side := s.Received+s.Lost, 1
		if s.Caller {
			side = 0
		}
		if n > best[side] {
			best[side] = n
			if side == 0 {
				a = i
			} else {
				b = i
			}
		}
	}
	return a, b
}

// Duration is callend - calldate, in whole seconds as VoIPmonitor stores it.
func (c *CDR) Duration() time.Duration { return c.CallEnd.Sub(c.CallDate) }

// ConnectDuration is callend - connect time, 0 when the call was not answered.
func (c *CDR) ConnectDuration() time.Duration {
	if c.ConnectTime.IsZero() {
		return 0
	}
	return c.CallEnd.Sub(c.ConnectTime)
}

// ResponseDelay is how soon a call's requests met one kind of response, in
// capture time cut to microseconds (as VoIPmonitor reads packet times).
type ResponseDelay struct {
	// First is the first such response to any request of the call; zero
	// when none came (the column is NULL then).
	First time.Time `json:",omitzero"`
	// Min is the shortest time from an INVITE to the first such response
	// of its transaction (sent back along the INVITE's path, same CSeq
	// number, whatever the CSeq method: a 200 to a CANCEL counts), over
	// the call's INVITEs; 0 when no INVITE was answered so.
	Min time.Duration `json:",omitzero"`
}

// MaxResponseMillis is the largest value of the smallint unsigned columns.
const MaxResponseMillis = 65535

// Millis is the response_time_100 / response_time_xxx column: Min in
// milliseconds (VoIPmonitor's default), or with fromFirstInvite
// (response_time_from_first_invite = yes) the time from the call's first
// INVITE (invite) to First; rounded half up, capped at 65,535. ok is false
// for NULL: no such response at all.
func (d ResponseDelay) Millis(invite time.Time, fromFirstInvite bool) (ms int, ok bool) {
	if d.First.IsZero() {
		return 0, false
	}
	delay := d.Min
	if fromFirstInvite {
		delay = d.First.Sub(invite.Truncate(time.Microsecond))
		if delay < 0 {
			// VoIPmonitor subtracts unsigned microseconds: a response
			// stamped before the INVITE wraps round to the cap.
			return MaxResponseMillis, true
		}
	}
	us := int64(delay / time.Microsecond)
	return int(min((us+500)/1000, MaxResponseMillis)), true
}

// Response is one SIP response: its code and reason phrase as sent.
type Response struct {
	Code   int
	Reason string
}

// Interval is a span of capture time.
type Interval struct{ Start, End time.Time }

// DTMF is one key press seen in a call (cdr_dtmf row).
type DTMF struct {
	Time     time.Time
	Digit    byte   // '0'-'9', '*', '#', 'A'-'D'
	Source   string // "rfc2833" or "sipinfo"
	Src, Dst netip.AddrPort
}

// RegisterState is VoIPmonitor's register_state.state value.
type RegisterState int

const (
	RegOK         RegisterState = 1
	RegFailed     RegisterState = 2
	RegUnknownOK  RegisterState = 3
	RegManyMsgs   RegisterState = 4
	RegExpired    RegisterState = 5
	RegUnregister RegisterState = 6
)

// Name is the state's name as VoIPmonitor shows it ("OK", "Failed", ...), or
// "" for a value it does not define.
func (s RegisterState) Name() string {
	if s < RegOK || s > RegUnregister {
		return ""
	}
	return registerStateNames[s-RegOK]
}

var registerStateNames = [...]string{"OK", "Failed", "UnknownMessageOK", "ManyRegMessages", "Expired", "Unregister"}

// Register is one REGISTER summary (register_state / register_failed row).
type Register struct {
	Time            time.Time
	CallID          string
	FromNum         string
	FromDomain      string
	ToNum           string
	ToDomain        string
	ContactNum      string
	ContactDomain   string
	DigestUsername  string
	DigestRealm     string
	CallerIP        netip.Addr // REGISTER source
	CalledIP        netip.Addr
	CallerPort      uint16
	CalledPort      uint16
	Expires         int
	State           RegisterState
	UA              string
	FailedAttempts  int
	LastResponseNum int
	// LastResponse is the last final response's status line without the
	// version ("403 Forbidden"), with its Warning header's text when it
	// has one ("403 Forbidden; Warning: 399 pbx \"bad password\"").
	LastResponse string `json:",omitempty"`
}
