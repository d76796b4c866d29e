package main

import (
	"math"
	"net/netip"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/rtp"
)

// Replay JSON field names follow VoIPmonitor's cdr columns (agent/README.md).

const timeLayout = "2006-01-02 15:04:05.000"

func fmtTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Round(time.Millisecond).Format(timeLayout)
}

func ipString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

func callJSON(c *call.CDR) map[string]any {
	m := map[string]any{
		"type":               "call",
		"callid":             c.CallID,
		"callreference":      c.CallRef,
		"calldate":           fmtTime(c.CallDate),
		"callend":            fmtTime(c.CallEnd),
		"duration":           seconds(c.Duration()),
		"connect_duration":   seconds(c.ConnectDuration()),
		"progress_time":      nil,
		"caller":             c.Caller,
		"called":             c.Called,
		"caller_domain":      c.CallerDomain,
		"called_domain":      c.CalledDomain,
		"callername":         c.CallerName,
		"sipcallerip":        ipString(c.CallerIP),
		"sipcalledip":        ipString(c.CalledIP),
		"sipcallerport":      c.CallerPort,
		"sipcalledport":      c.CalledPort,
		"lastSIPresponseNum": c.LastSIPResponseNum,
		"lastSIPresponse":    c.LastSIPResponse,
		"sip_responses":      c.Responses,
		"bye":                int(c.Bye),
		"whohanged":          string(c.WhoHanged),
		"a_ua":               c.CallerUA,
		"b_ua":               c.CalledUA,
		"reinvites":          c.ReInvites,
		"vlan":               c.VLAN,
	}
	if !c.ProgressTime.IsZero() {
		m["progress_time"] = seconds(c.ProgressTime.Sub(c.CallDate))
	}
	// response_time_100 / _xxx in ms as the cdr row has them with
	// VoIPmonitor's default rule (null without such a response).
	for k, d := range map[string]call.ResponseDelay{"response_time_100": c.Response100, "response_time_xxx": c.ResponseXXX} {
		m[k] = nil
		if ms, ok := d.Millis(c.CallDate, false); ok {
			m[k] = ms
		}
	}
	if c.PAssertedIdentity != "" {
		m["p_asserted_identity"] = c.PAssertedIdentity
	}
	if c.RemotePartyID != "" {
		m["remote_party_id"] = c.RemotePartyID
	}
	if c.ReasonQ850Cause != 0 {
		m["reason_q850_cause"] = c.ReasonQ850Cause
		m["reason_q850_text"] = c.ReasonQ850Text
	}
	if c.ReasonSIPCause != 0 {
		m["reason_sip_cause"] = c.ReasonSIPCause
		m["reason_sip_text"] = c.ReasonSIPText
	}
	if c.SRTP {
		m["srtp"] = true
	}
	if c.Fax {
		m["fax"] = true
	}
	if c.FaxTones {
		m["fax_tones"] = true
	}
	if len(c.Hold) > 0 {
		hold := make([]any, len(c.Hold))
		for i, h := range c.Hold {
			hold[i] = fmtTime(h)
		}
		m["hold"] = hold
	}
	ai, bi := c.StreamAB()
	streamJSON(m, "a_", streamAt(c.Streams, ai))
	streamJSON(m, "b_", streamAt(c.Streams, bi))
	if len(c.Streams) > 0 {
		m["rtp_streams"] = len(c.Streams)
	}
	if len(c.DTMF) > 0 {
		digits := make([]map[string]any, len(c.DTMF))
		for i, d := range c.DTMF {
			digits[i] = map[string]any{"time": fmtTime(d.Time), "digit": string(d.Digit), "type": d.Source}
		}
		m["dtmf"] = digits
	}
	return m
}

// streamAt returns &ss[i], or nil for i < 0.
func streamAt(ss []rtp.Summary, i int) *rtp.Summary {
	if i < 0 {
		return nil
	}
	return &ss[i]
}

func streamJSON(m map[string]any, p string, s *rtp.Summary) {
	if s == nil {
		return
	}
	m[p+"saddr"] = ipString(s.Src.Addr())
	m[p+"sport"] = s.Src.Port()
	m[p+"daddr"] = ipString(s.Dst.Addr())
	m[p+"dport"] = s.Dst.Port()
	m[p+"ssrc"] = s.SSRC
	m[p+"payload"] = s.Payload
	m[p+"received"] = s.Received
	m[p+"lost"] = s.Lost
	m[p+"avgjitter"] = round3(s.AvgJitter)
	m[p+"maxjitter"] = round3(s.MaxJitter)
	m[p+"maxdelta"] = round3(s.MaxDelta)
	m[p+"mos_f1"] = round3(s.MOSF1)
	m[p+"mos_f2"] = round3(s.MOSF2)
	m[p+"mos_adapt"] = round3(s.MOSAdapt)
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func registerJSON(r *call.Register) map[string]any {
	return map[string]any{
		"type":               "register",
		"callid":             r.CallID,
		"created_at":         fmtTime(r.Time),
		"from_num":           r.FromNum,
		"from_domain":        r.FromDomain,
		"to_num":             r.ToNum,
		"to_domain":          r.ToDomain,
		"contact_num":        r.ContactNum,
		"contact_domain":     r.ContactDomain,
		"digestusername":     r.DigestUsername,
		"digestrealm":        r.DigestRealm,
		"sipcallerip":        ipString(r.CallerIP),
		"sipcalledip":        ipString(r.CalledIP),
		"sipcallerport":      r.CallerPort,
		"sipcalledport":      r.CalledPort,
		"expires":            r.Expires,
		"state":              r.State.Name(),
		"state_num":          int(r.State),
		"ua":                 r.UA,
		"failed_attempts":    r.FailedAttempts,
		"lastSIPresponseNum": r.LastResponseNum,
	}
}
