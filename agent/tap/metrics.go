package tap

import (
	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/internal/promfunc"
)

// Register puts the tapper's series (pbx_tap_*) on reg, read at scrape
// time from Stats.
func (t *Tapper) Register(reg prometheus.Registerer) error {
	c := promfunc.CounterOf(t.Stats)
	return promfunc.Register(reg,
		promfunc.Gauge("pbx_tap_taps", "ARI taps up now.", func() float64 { return float64(t.Stats().Taps) }),
		c("pbx_tap_started_total", "ARI taps set up.", func(st *Stats) uint64 { return st.Started }),
		c("pbx_tap_failed_total", "ARI tap set-ups that failed.", func(st *Stats) uint64 { return st.Failed }),
		c("pbx_tap_packets_total", "RTP packets received from Asterisk and decoded.", func(st *Stats) uint64 { return st.Packets }),
		c("pbx_tap_rejected_datagrams_total", "Datagrams from an unknown source or not RTP.", func(st *Stats) uint64 { return st.Unknown + st.NotRTP }),
		c("pbx_tap_teardowns_total", "ARI taps torn down.", func(st *Stats) uint64 { return st.Teardowns }),
	)
}
