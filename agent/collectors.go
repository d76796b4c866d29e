package main

import "github.com/prometheus/client_golang/prometheus"

// registerMetrics has every component put its own series on the private
// registry (each reads its figures at scrape time; no second copy here).
func (d *daemon) registerMetrics() error {
	type registerer interface {
		Register(prometheus.Registerer) error
	}
	parts := []registerer{d.sn, d.player}
	if d.spool != nil {
		parts = append(parts, d.spool)
	}
	if d.writer != nil {
		parts = append(parts, d.writer)
	}
	if d.manager != nil {
		parts = append(parts, d.manager)
	}
	if d.ami != nil {
		parts = append(parts, d.ami)
	}
	if d.ari != nil {
		parts = append(parts, d.ari)
	}
	if d.tap != nil {
		parts = append(parts, d.tap)
	}
	if d.http != nil {
		parts = append(parts, d.http)
	}
	if d.hep.in != nil {
		parts = append(parts, d.hep.in)
	}
	if d.hep.out != nil {
		parts = append(parts, d.hep.out)
	}
	for _, p := range parts {
		if err := p.Register(d.reg); err != nil {
			return err
		}
	}
	return nil
}
