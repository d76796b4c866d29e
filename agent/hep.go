package main

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"pbx-agent/internal/every"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/hep"
)

// hepParts are the HEP listeners and sender of a daemon (nil when off).
type hepParts struct {
	in  *hep.Listener
	out *hep.Sender
}

// newHEP configures HEP input (hep = yes: the packet path decodes HEP found
// in captures, and, live, listens on hep_bind_ip:hep_bind_port) and output
// (hep_destination) on the sniffer's config.
func (d *daemon) newHEP(snCfg *sniffer.Config) error {
	cfg := d.cfg
	live := d.fl.capture == ""
	if cfg.HEP {
		snCfg.HEP = sniffer.HEPInput{Enabled: true, Port: uint16(cfg.HEPBindPort), Password: cfg.HEPPassword, UseSystemTime: cfg.HEPUseSystemTime, Concurrent: live}
	}
	if cfg.HEPDestination != "" {
		id := cfg.HEPCaptureID
		if id == 0 {
			id = max(cfg.IDSensor, 1)
		}
		node := cfg.HEPNodeName
		if node == "" {
			node, _ = os.Hostname()
		}
		s, err := hep.NewSender(hep.SenderConfig{Addr: cfg.HEPDestination, Network: cfg.HEPDestinationTransport,
			CaptureID: uint32(id), Password: cfg.HEPDestinationPassword, NodeName: node, Logger: d.log})
		if err != nil {
			return err
		}
		d.hep.out, snCfg.HEPOut = s, s
	}
	return nil
}

// listenHEP binds the HEP input sockets (live only: a replayed file's HEP
// is decoded from the file). Called once the sniffer exists.
func (d *daemon) listenHEP() error {
	cfg := d.cfg
	if !cfg.HEP || d.fl.capture != "" || !cfg.Sniffer {
		return nil
	}
	addr := net.JoinHostPort(cfg.HEPBindIP, strconv.Itoa(cfg.HEPBindPort))
	l, err := hep.Listen(hep.ListenConfig{Addr: addr, UDP: cfg.HEPBindUDP, TCP: true, Handler: d.sn.HandleHEP, Logger: d.log})
	if err != nil {
		return bindError(context.Background(), "hep_bind_port", addr, cfg.Path, err)
	}
	d.hep.in = l
	return nil
}

// runHEP starts the HEP sender on the servers' group and the listeners on
// their own context; the returned stop ends the listeners (before the call
// table is flushed) and waits for them.
func (d *daemon) runHEP(g *errgroup.Group, servers context.Context) (stop func()) {
	if d.hep.out != nil {
		g.Go(func() error { return ignoreCanceled(d.hep.out.Run(servers)) })
	}
	if d.hep.in == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(servers)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.hep.in.Serve(ctx)
	}()
	return func() { cancel(); <-done }
}

// hepOnly keeps the call table's clock going when HEP is the only input
// (no interface, hep = yes): calls time out as they would live.
func (d *daemon) hepOnly(ctx context.Context) error {
	d.log.Info("no capture interface; HEP input only", "hep_bind", net.JoinHostPort(d.cfg.HEPBindIP, strconv.Itoa(d.cfg.HEPBindPort)))
	every.Tick(ctx, time.Second, func(now time.Time) bool {
		d.sn.Tick(now)
		return true
	})
	return nil
}
