package spool

import (
	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/internal/promfunc"
)

// Register puts the spool's series (pbx_spool_*) on reg, read at scrape
// time from Stats.
func (s *Spool) Register(reg prometheus.Registerer) error {
	c := promfunc.CounterOf(s.Stats)
	g := promfunc.GaugeOf(s.Stats)
	return promfunc.Register(reg,
		g("pbx_spool_calls", "Calls whose files are open now.", func(st *Stats) float64 { return float64(st.Calls) }),
		c("pbx_spool_sip_packets_total", "SIP packets stored.", func(st *Stats) uint64 { return st.SIPPackets }),
		c("pbx_spool_rtp_packets_total", "RTP packets stored (whole, silenced or cut).", func(st *Stats) uint64 { return st.RTPPackets }),
		c("pbx_spool_rtcp_packets_total", "RTCP packets stored.", func(st *Stats) uint64 { return st.RTCPPackets }),
		c("pbx_spool_dropped_packets_total", "Packets not stored because the disk queue was full.", func(st *Stats) uint64 {
			return st.DroppedSIP + st.DroppedRTP + st.DroppedRTCP + st.DroppedOther
		}),
		c("pbx_spool_dropped_audio_frames_total", "20 ms WAV frames not stored because the disk queue was full.", func(st *Stats) uint64 { return st.DroppedAudio }),
		g("pbx_spool_queued_bytes", "Bytes waiting for the disk.", func(st *Stats) float64 { return float64(st.Queued) }),
		c("pbx_spool_files_total", "Files completed.", func(st *Stats) uint64 { return st.Files }),
		c("pbx_spool_written_bytes_total", "Bytes written to disk.", func(st *Stats) uint64 { return st.Bytes }),
		g("pbx_spool_open_files", "Files open now.", func(st *Stats) float64 { return float64(st.OpenFiles) }),
		c("pbx_spool_file_errors_total", "Files given up after an I/O error.", func(st *Stats) uint64 { return st.Errors }),
		g("pbx_spool_pool_bytes", "Bytes of completed files in the spool (with size limits).", func(st *Stats) float64 { return float64(st.PoolBytes) }),
		c("pbx_spool_cleaned_files_total", "Files removed by the cleaner.", func(st *Stats) uint64 { return st.CleanedFiles }),
	)
}
