package ari

import "github.com/prometheus/client_golang/prometheus"

// Register adds the client's metrics (pbx_ari_*) to reg: whether the event
// socket is up, connects and failures (a wrong password is a failure with
// pbx_ari_up 0), when the last error happened, events received, updates
// dropped and undecodable events.
func (c *Client) Register(reg prometheus.Registerer) error {
	counter := func(name, help string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(c.Stats())) })
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pbx_ari_up", Help: "1 while the ARI event socket is connected, else 0."},
			func() float64 {
				if c.Connected() {
					return 1
				}
				return 0
			}),
		counter("pbx_ari_connects_total", "ARI event socket connections (the first one and every reconnect).", func(s Stats) uint64 { return s.Connects }),
		counter("pbx_ari_failures_total", "ARI event socket connects that failed (wrong password included) plus sockets lost.", func(s Stats) uint64 { return s.Failures }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pbx_ari_last_error_timestamp_seconds", Help: "Unix time of the last ARI connect failure or lost socket (0: none)."},
			func() float64 {
				if t := c.Stats().LastError; !t.IsZero() {
					return float64(t.UnixNano()) / 1e9
				}
				return 0
			}),
		counter("pbx_ari_events_total", "ARI event frames received.", func(s Stats) uint64 { return s.Events }),
		counter("pbx_ari_events_dropped_total", "ARI recording updates dropped because the queue was full.", func(s Stats) uint64 { return s.UpdatesDropped }),
		counter("pbx_ari_state_evicted_total", "Channels, recordings, bridges or bridge members ARI told of, forgotten to stay within the limit (8192 each).", func(s Stats) uint64 { return s.Evicted }),
		counter("pbx_ari_events_bad_total", "ARI event frames that did not decode.", func(s Stats) uint64 { return s.BadEvents }),
	}
	for _, m := range cs {
		if err := reg.Register(m); err != nil {
			return err
		}
	}
	return nil
}
