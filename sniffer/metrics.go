package sniffer

import (
	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/internal/promfunc"
)

// Register puts the packet path's series on reg: capture, decode and HEP
// input (pbx_sniffer_*, pbx_decoder_*, pbx_hep_input_*) and the call
// table's (call.Table.Register).
// Every value is read at scrape time from Stats.
func (s *Sniffer) Register(reg prometheus.Registerer) error {
	c := promfunc.CounterOf(s.Stats)
	err := promfunc.Register(reg,
		c("pbx_sniffer_frames_total", "Frames read from the capture source.", func(st *Stats) uint64 { return st.Frames }),
		c("pbx_sniffer_decode_errors_total", "Malformed frames skipped.", func(st *Stats) uint64 { return st.DecodeErrors }),
		c("pbx_sniffer_sip_messages_total", "SIP messages parsed.", func(st *Stats) uint64 { return st.SIP }),
		c("pbx_sniffer_sip_errors_total", "Datagrams on SIP ports that did not parse as SIP.", func(st *Stats) uint64 { return st.SIPErrors }),
		c("pbx_sniffer_media_packets_total", "RTP/RTCP packets of known calls.", func(st *Stats) uint64 { return st.Media }),
		c("pbx_sniffer_capture_drops_total", "Packets the kernel dropped before the agent read them.", func(st *Stats) uint64 { return st.KernelDrops }),
		c("pbx_sniffer_tcp_flows_evicted_total", "SIP-over-TCP flows dropped to stay within the flow limit.", func(st *Stats) uint64 { return st.TCPEvicted }),
		c("pbx_sniffer_websocket_flows_dropped_total", "SIP-over-websocket flows given up because a message exceeded 64 KiB.", func(st *Stats) uint64 { return st.WSDropped }),
		c("pbx_sniffer_duplicates_total", "Packets dropped as copies of one already handled (deduplicate, several interfaces).", func(st *Stats) uint64 { return st.Duplicates }),
		c("pbx_sniffer_rtp_streams_refused_total", "RTP packets that would have started a stream past a call's limit of 64 (a sender cycling SSRCs): counted, stored by the spool, not analysed.", func(st *Stats) uint64 { return st.StreamsRefused }),
		c("pbx_sniffer_dtmf_dropped_total", "RFC 2833 digits not kept past a call's limit of 512.", func(st *Stats) uint64 { return st.DTMFDropped }),
		c("pbx_sniffer_ipv6_ignored_total", "IPv6 packets ignored unread (ipv6 = no, as VoIPmonitor).", func(st *Stats) uint64 { return st.IPv6Ignored }),
		c("pbx_sniffer_sctp_dropped_total", "SIP-over-SCTP fragments or messages given up (out of order, over 64 KiB, no room, idle).", func(st *Stats) uint64 { return st.SCTPDropped }),
		c("pbx_hep_input_packets_total", "HEP packets accepted (capture and network).", func(st *Stats) uint64 { return st.HEP.Packets }),
		c("pbx_hep_input_errors_total", "HEP packets dropped as undecodable (truncated, bad chunk lengths, bad RTCP JSON).", func(st *Stats) uint64 { return st.HEP.Errors }),
		c("pbx_hep_input_auth_failed_total", "HEP packets dropped for a wrong or missing capture password.", func(st *Stats) uint64 { return st.HEP.AuthFailed }),
		c("pbx_hep_input_duplicates_total", "SIP messages seen both on the wire and by HEP, counted once.", func(st *Stats) uint64 { return st.HEP.Duplicates }),
		c("pbx_hep_input_time_ahead_total", "HEP packets stamped more than 10 s after their arrival, timed by their arrival instead.", func(st *Stats) uint64 { return st.HEP.TimeAhead }),
		c("pbx_hep_input_rtcp_reports_total", "RTCP reports received as HEP JSON and applied.", func(st *Stats) uint64 { return st.HEP.RTCPJSON }),
		c("pbx_decoder_not_ip_total", "Frames without IP (ARP, LLDP, …).", func(st *Stats) uint64 { return st.Decoder.NotIP }),
		c("pbx_decoder_not_transport_total", "IP packets without UDP, TCP or SCTP (ICMP, OSPF, …).", func(st *Stats) uint64 { return st.Decoder.NotTransport }),
		c("pbx_decoder_fragments_total", "IP fragments received.", func(st *Stats) uint64 { return st.Decoder.Fragments }),
		c("pbx_decoder_tunnelled_total", "Encapsulation headers unwrapped (GRE, ERSPAN, VXLAN, MPLS, 802.1ad).", func(st *Stats) uint64 { return st.Decoder.Tunnelled }),
		c("pbx_decoder_reassembled_total", "Datagrams rebuilt from IP fragments.", func(st *Stats) uint64 { return st.Decoder.Reassembled }),
		promfunc.Gauge("pbx_sniffer_tcp_flows", "SIP-over-TCP flows followed now.", func() float64 { return float64(s.Stats().TCPFlows) }),
	)
	if err != nil {
		return err
	}
	return s.table.Register(reg)
}
