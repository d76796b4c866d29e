package main

import (
	"context"

	"pbx-agent/agent/manager"
)

// managerStats are sniffer_stat's figures: pbCountPacketDrop is the live
// capture's kernel drops.
func (d *daemon) managerStats() manager.Stats {
	return manager.Stats{PacketsDropped: d.sn.Stats().KernelDrops}
}

// managerReload is the manager's `reload`: what SIGHUP reloads.
func (d *daemon) managerReload(context.Context) error {
	d.reload()
	return nil
}
