package hep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"pbx-agent/sniffer/rtp"
)

// RTCPReport is an RTCP report as JSON (HEP protocol type 5), the form
// Asterisk's res_hep_rtcp and heplify send. Quirk of Asterisk: in reports
// it received, "ssrc" holds the SR's NTP seconds, not the sender's SSRC;
// the report blocks' source_ssrc are right, and are what is used.
type RTCPReport struct {
	SSRC        flexUint `json:"ssrc"`
	Type        int      `json:"type"`
	ReportCount int      `json:"report_count"`
	Sender      *struct {
		NTPSec  flexUint `json:"ntp_timestamp_sec"`
		NTPUsec flexUint `json:"ntp_timestamp_usec"`
		RTPTime flexUint `json:"rtp_timestamp"`
		Packets flexUint `json:"packets"`
		Octets  flexUint `json:"octets"`
	} `json:"sender_information"`
	RawBlocks []struct {
		SourceSSRC   flexUint `json:"source_ssrc"`
		FractionLost flexUint `json:"fraction_lost"`
		PacketsLost  flexInt  `json:"packets_lost"`
		HighestSeq   flexUint `json:"highest_seq_no"`
		Jitter       flexUint `json:"ia_jitter"`
		LSR          flexUint `json:"lsr"`
		DLSR         flexUint `json:"dlsr"`
	} `json:"report_blocks"`
}

// Parse decodes an RTCP JSON report (it allocates: reports are rare, one
// per stream every few seconds).
func (r *RTCPReport) Parse(b []byte) error {
	*r = RTCPReport{}
	if err := json.Unmarshal(b, r); err != nil {
		return fmt.Errorf("%w: %w", ErrRTCPJSON, err)
	}
	return nil
}

// Blocks copies the report blocks into dst as reception reports and
// returns how many it copied.
func (r *RTCPReport) Blocks(dst []rtp.ReceptionReport) int {
	n := 0
	for _, b := range r.RawBlocks {
		if n == len(dst) {
			break
		}
		dst[n] = rtp.ReceptionReport{Reporter: uint32(r.SSRC), SSRC: uint32(b.SourceSSRC), FractionLost: uint8(b.FractionLost),
			TotalLost: int32(b.PacketsLost), LastSeq: uint32(b.HighestSeq), Jitter: uint32(b.Jitter), LSR: uint32(b.LSR), DLSR: uint32(b.DLSR)}
		n++
	}
	return n
}

// flexUint accepts a JSON number or a string holding one (res_hep_rtcp
// writes NTP times and LSR as strings).
type flexUint uint64

func (f *flexUint) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(string(bytes.Trim(b, `"`)), 10, 64)
	*f = flexUint(v)
	return err
}

type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(string(bytes.Trim(b, `"`)), 10, 64)
	*f = flexInt(v)
	return err
}

// AppendRTCPJSON appends the JSON form of an RTCP compound packet (its first
// SR, else its first RR) to dst, the shape res_hep_rtcp sends; nothing is
// appended when c has neither. It allocates nothing once dst has room.
func AppendRTCPJSON(dst []byte, c *rtp.Compound) []byte {
	var ssrc uint32
	typ := rtp.TypeRR
	switch {
	case c.NSenders > 0:
		ssrc, typ = c.Senders[0].SSRC, rtp.TypeSR
	case c.NReports > 0:
		ssrc = c.Reports[0].Reporter
	default:
		return dst
	}
	n := 0
	for i := 0; i < c.NReports; i++ {
		if c.Reports[i].Reporter == ssrc {
			n++
		}
	}
	dst = append(dst, `{"ssrc":`...)
	dst = strconv.AppendUint(dst, uint64(ssrc), 10)
	dst = append(dst, `,"type":`...)
	dst = strconv.AppendInt(dst, int64(typ), 10)
	dst = append(dst, `,"report_count":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	if typ == rtp.TypeSR {
		si := &c.Senders[0]
		dst = append(dst, `,"sender_information":{"ntp_timestamp_sec":"`...)
		dst = strconv.AppendUint(dst, si.NTPTime>>32, 10)
		dst = append(dst, `","ntp_timestamp_usec":"`...)
		dst = strconv.AppendUint(dst, (si.NTPTime&0xffffffff)*1000000>>32, 10)
		dst = append(dst, `","rtp_timestamp":`...)
		dst = strconv.AppendUint(dst, uint64(si.RTPTime), 10)
		dst = append(dst, `,"packets":`...)
		dst = strconv.AppendUint(dst, uint64(si.PacketCount), 10)
		dst = append(dst, `,"octets":`...)
		dst = strconv.AppendUint(dst, uint64(si.OctetCount), 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"report_blocks":[`...)
	first := true
	for i := 0; i < c.NReports; i++ {
		rr := &c.Reports[i]
		if rr.Reporter != ssrc {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, `{"source_ssrc":`...)
		dst = strconv.AppendUint(dst, uint64(rr.SSRC), 10)
		dst = append(dst, `,"fraction_lost":`...)
		dst = strconv.AppendUint(dst, uint64(rr.FractionLost), 10)
		dst = append(dst, `,"packets_lost":`...)
		dst = strconv.AppendInt(dst, int64(rr.TotalLost), 10)
		dst = append(dst, `,"highest_seq_no":`...)
		dst = strconv.AppendUint(dst, uint64(rr.LastSeq), 10)
		dst = append(dst, `,"ia_jitter":`...)
		dst = strconv.AppendUint(dst, uint64(rr.Jitter), 10)
		dst = append(dst, `,"lsr":"`...)
		dst = strconv.AppendUint(dst, uint64(rr.LSR), 10)
		dst = append(dst, `","dlsr":`...)
		dst = strconv.AppendUint(dst, uint64(rr.DLSR), 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}
