// Package promfunc builds Prometheus series read at scrape time from the
// component that owns the figure, so no counter is kept twice. Each
// component's Register method uses it to put its own series on the agent's
// private registry.
package promfunc

import "github.com/prometheus/client_golang/prometheus"

// Counter is a counter whose value is f() at scrape time.
func Counter(name, help string, f func() uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
}

// Gauge is a gauge whose value is f() at scrape time.
func Gauge(name, help string, f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
}

// Register registers every collector on reg, stopping at the first error.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// CounterOf returns a maker of counters read from one component's stats
// snapshot: each series calls snap at scrape time and picks its field.
func CounterOf[S any](snap func() S) func(name, help string, field func(*S) uint64) prometheus.Collector {
	return func(name, help string, field func(*S) uint64) prometheus.Collector {
		return Counter(name, help, func() uint64 { st := snap(); return field(&st) })
	}
}

// GaugeOf is CounterOf for gauges.
func GaugeOf[S any](snap func() S) func(name, help string, field func(*S) float64) prometheus.Collector {
	return func(name, help string, field func(*S) float64) prometheus.Collector {
		return Gauge(name, help, func() float64 { st := snap(); return field(&st) })
	}
}
