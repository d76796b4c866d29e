package main

import "github.com/prometheus/client_golang/prometheus"

// registerMetrics has every component put its own series on the private
// registry (each reads its figures at scrape time; no second copy here).
func (d *daemon) registerMetrics() error {
	type registerer interface {
		Register(prometheus.Registerer) error
	}
	parts := []registerer{d.sn, d.player, d.web}
	for _, p := range []struct {
		on bool
		r  registerer
	}{
		{d.spool != nil, d.spool}, {d.writer != nil, d.writer}, {d.manager != nil, d.manager},
		{d.ami != nil, d.ami}, {d.ari != nil, d.ari}, {d.tap != nil, d.tap}, {d.http != nil, d.http},
		{d.hep.in != nil, d.hep.in}, {d.hep.out != nil, d.hep.out},
	} {
		if p.on { // a nil part is off (its typed nil must not be called)
			parts = append(parts, p.r)
		}
	}
	for _, p := range parts {
		if err := p.Register(d.reg); err != nil {
			return err
		}
	}
	return nil
}
