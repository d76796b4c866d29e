package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/agent/manager"
	"pbx-agent/sniffer"
)

// registerSnifferMetrics exposes the packet path's counters: every counter is
// read at scrape time from the component that owns it (no second copy).
func registerSnifferMetrics(reg prometheus.Registerer, sn *sniffer.Sniffer, srv *manager.Server) error {
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		counter("pbx_sniffer_frames_total", "Frames read from the capture source.", func() uint64 { return sn.Stats().Frames }),
		counter("pbx_sniffer_decode_errors_total", "Malformed frames skipped.", func() uint64 { return sn.Stats().DecodeErrors }),
		counter("pbx_sniffer_sip_messages_total", "SIP messages parsed.", func() uint64 { return sn.Stats().SIP }),
		counter("pbx_sniffer_sip_errors_total", "Datagrams on SIP ports that did not parse as SIP.", func() uint64 { return sn.Stats().SIPErrors }),
		counter("pbx_sniffer_media_packets_total", "RTP/RTCP packets of known calls.", func() uint64 { return sn.Stats().Media }),
		counter("pbx_sniffer_capture_drops_total", "Packets the kernel dropped before the agent read them.", func() uint64 { return sn.Stats().KernelDrops }),
		counter("pbx_calls_started_total", "Calls seen starting (INVITE).", func() uint64 { return sn.Table().Stats().CallsStarted }),
		counter("pbx_calls_ended_total", "Calls finished and recorded.", func() uint64 { return sn.Table().Stats().CallsEnded }),
		counter("pbx_sip_retransmissions_total", "SIP retransmissions recognised (not counted twice).", func() uint64 { return sn.Table().Stats().Retransmissions }),
		counter("pbx_calls_refused_total", "INVITEs ignored because the call limit was reached (INVITE flood).", func() uint64 { return sn.Table().Stats().CallsRefused }),
		counter("pbx_sniffer_tcp_flows_evicted_total", "SIP-over-TCP flows dropped to stay within the flow limit.", func() uint64 { return sn.Stats().TCPEvicted }),
		gauge("pbx_calls_active", "Calls in progress.", func() float64 { return float64(sn.Table().ActiveCount()) }),
	}
	if srv != nil {
		cs = append(cs,
			counter("pbx_manager_connections_total", "Manager API connections accepted.", func() uint64 { return srv.Counters().Accepted }),
			counter("pbx_manager_refused_total", "Manager API connections refused (limits).", func() uint64 { return srv.Counters().Refused }),
			counter("pbx_manager_commands_total", "Manager API commands served.", func() uint64 { return srv.Counters().Served }),
		)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
