package manager

import (
	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/internal/promfunc"
)

// Register puts the server's series (pbx_manager_*) on reg, read at scrape
// time from Counters.
func (s *Server) Register(reg prometheus.Registerer) error {
	c := promfunc.CounterOf(s.Counters)
	return promfunc.Register(reg,
		c("pbx_manager_connections_total", "Manager API connections accepted.", func(n *Counters) uint64 { return n.Accepted }),
		c("pbx_manager_refused_total", "Manager API connections refused (limits).", func(n *Counters) uint64 { return n.Refused }),
		c("pbx_manager_commands_total", "Manager API commands served.", func(n *Counters) uint64 { return n.Served }),
		c("pbx_manager_unknown_commands_total", "Manager API requests naming no known command.", func(n *Counters) uint64 { return n.NotFound }),
		c("pbx_manager_bad_requests_total", "Manager API requests too large or not complete in time.", func(n *Counters) uint64 { return n.TooLarge + n.TimedOut }),
		c("pbx_manager_need_aes_total", "Plaintext requests refused because a key is set.", func(n *Counters) uint64 { return n.NeedAES }),
		c("pbx_manager_decrypt_failed_total", "Encrypted requests refused (bad padding or length, no command at the start, unknown command, stale or replayed sealed request); each is logged with its source.", func(n *Counters) uint64 { return n.DecryptFailed }),
		c("pbx_manager_blocked_connections_total", "Connections closed unread because their source is blocked after failed AES requests.", func(n *Counters) uint64 { return n.Blocked }),
		c("pbx_manager_sources_blocked_total", "Times a source was blocked after failed AES requests.", func(n *Counters) uint64 { return n.SourcesBlocked }),
		c("pbx_manager_sources_evicted_total", "Sources holding nothing in force (no connection open, no failed AES request in its window, no block) forgotten to make room for a new source in the full per-source table (65,536).", func(n *Counters) uint64 { return n.SourcesEvicted }),
		c("pbx_manager_sources_pooled_total", "Connections and failed AES requests of new sources counted on one shared entry because every source in the full per-source table had a connection open, a failure in its window or a block.", func(n *Counters) uint64 { return n.SourcesPooled }),
		promfunc.Gauge("pbx_manager_sources_blocked", "Sources blocked now after failed AES requests.", func() float64 { return float64(s.Counters().BlockedNow) }),
		promfunc.Gauge("pbx_manager_connections", "Manager API connections open now.", func() float64 { return float64(s.Counters().Active) }),
		promfunc.Gauge("pbx_manager_listen_workers", "Calls listened to through listen/readaudio now.", func() float64 { n, _, _ := s.listen.counts(); return float64(n) }),
		promfunc.Counter("pbx_manager_listen_dropped_bytes_total", "PCM bytes listen clients lost to a full buffer.", func() uint64 { _, d, _ := s.listen.counts(); return d }),
		promfunc.Counter("pbx_manager_listen_refused_total", "listen ids refused because every listening slot (256, all calls) was taken.", func() uint64 { _, _, r := s.listen.counts(); return r }),
	)
}
