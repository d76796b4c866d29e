package ami

import "github.com/prometheus/client_golang/prometheus"

// Register adds the client's metrics (pbx_ami_*) to reg: whether it is
// logged in, connects and failures, when the last error happened, events
// received and notifications dropped. A wrong secret shows as
// pbx_ami_up 0 with pbx_ami_auth_failures_total growing.
func (c *Client) Register(reg prometheus.Registerer) error {
	st := func() Stats { return c.Stats() }
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pbx_ami_up", Help: "1 while the AMI session is logged in, else 0."},
			func() float64 { return b2f(c.State() == StateUp) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pbx_ami_backoff", Help: "1 while the AMI client waits before its next connect attempt."},
			func() float64 { return b2f(c.State() == StateBackoff) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pbx_ami_connects_total", Help: "Successful AMI logins (the first one and every reconnect)."},
			func() float64 { return float64(st().Connects) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pbx_ami_failures_total", Help: "AMI connect attempts that failed plus sessions lost."},
			func() float64 { return float64(st().Failures) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pbx_ami_auth_failures_total", Help: "AMI logins refused (wrong user or secret)."},
			func() float64 { return float64(st().AuthFailures) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pbx_ami_last_error_timestamp_seconds", Help: "Unix time of the last AMI connect failure or lost session (0: none)."},
			func() float64 { return unixSeconds(st()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pbx_ami_events_total", Help: "AMI events received."},
			func() float64 { return float64(st().Events) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pbx_ami_events_dropped_total", Help: "AMI notifications dropped because a subscriber's queue was full."},
			func() float64 { return float64(st().Dropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pbx_ami_channels_refused_total", Help: "AMI events ignored because they would have added a channel past the tracker's limit of 100,000 live channels."},
			func() float64 { return float64(st().TrackerRefused) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pbx_ami_resyncs_total", Help: "CoreShowChannels snapshots applied (after each login and each gap)."},
			func() float64 { return float64(st().Resyncs) }),
	}
	for _, m := range cs {
		if err := reg.Register(m); err != nil {
			return err
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(s Stats) float64 {
	if s.LastError.IsZero() {
		return 0
	}
	return float64(s.LastError.UnixNano()) / 1e9
}
