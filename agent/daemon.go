package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"pbx-agent/agent/cdr"
	"pbx-agent/agent/config"
	"pbx-agent/agent/manager"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/spool"
)

const defaultConfigPath = "/etc/pbx-agent/pbx-agent.conf"

// defaultCapture is what the agent replays when neither an interface nor a
// capture file is configured (`make run` from a fresh clone).
const defaultCapture = "testdata/pcap/asterisk-call-answered.pcap"

//go:embed default.conf
var embeddedConfig []byte

// shutdownGrace bounds the ordered shutdown (flush calls, CDRs, spool).
const shutdownGrace = 30 * time.Second

// daemonFlags are the daemon's command line (CLI.md).
type daemonFlags struct {
	config          string
	capture         string
	realtime        bool
	exitAfterReplay bool
	set             map[string]string
}

func parseDaemonFlags(args []string, stderr io.Writer) (*daemonFlags, error) {
	f := &daemonFlags{set: map[string]string{}}
	fs := flag.NewFlagSet("pbx-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", defaultConfigPath, "config file (voipmonitor.conf-style INI)")
	fs.StringVar(&f.capture, "r", "", "read packets from a pcap/pcapng file instead of an interface")
	fs.BoolVar(&f.realtime, "realtime", false, "with -r: feed packets at their recorded pace")
	fs.BoolVar(&f.exitAfterReplay, "exit-after-replay", false, "with -r: stop once the file is read")
	fs.Func("set", "override a config key: -set key=value (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("want key=value, got %q", s)
		}
		f.set[strings.TrimSpace(k)] = strings.TrimSpace(v)
		return nil
	})
	for _, k := range []string{"interface", "sipport", "id_sensor", "spooldir", "managerip", "managerport", "managersocket", "http_bind", "mysqlhost", "mysqlport", "mysqlsocket", "mysqldb", "mysqlusername", "mysqlpassword"} {
		fs.Func(k, "config key "+k+" (overrides the file)", func(v string) error { f.set[k] = v; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return f, nil
}

// loadConfig reads the config file; a missing default file means the
// embedded default (a fresh clone, `make run`).
func loadConfig(path string, set map[string]string, logger *slog.Logger) (*config.Config, error) {
	cfg, err := config.Load(path, set)
	if err == nil || path != defaultConfigPath || !errors.Is(err, fs.ErrNotExist) {
		return cfg, err
	}
	logger.Info("no config file; using the embedded default", "path", path)
	return config.Parse("embedded default.conf", embeddedConfig, set)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// runDaemon runs the agent: capture (live or -r FILE) and every server the
// config enables, until ctx ends, then shuts down in order: stop capture →
// close open calls → flush CDRs → close servers.
func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl, err := parseDaemonFlags(args, stderr)
	if err != nil {
		return err
	}
	boot := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := loadConfig(fl.config, fl.set, boot)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	log.Info("pbx-agent starting", "version", version, "config", cfg.Path)
	for _, ign := range cfg.Ignored {
		log.Warn("config key accepted but has no effect", "key", ign)
	}
	d, err := newDaemon(cfg, fl, log)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

// daemon holds the wired components.
type daemon struct {
	cfg     *config.Config
	fl      *daemonFlags
	log     *slog.Logger
	sn      *sniffer.Sniffer
	spool   *spool.Spool // nil when nothing is saved
	writer  *cdr.Writer  // nil without a database
	manager *manager.Server
}

func newDaemon(cfg *config.Config, fl *daemonFlags, log *slog.Logger) (*daemon, error) {
	d := &daemon{cfg: cfg, fl: fl, log: log}
	var ports sniffer.PortSet
	for _, r := range cfg.SIPPorts {
		if err := ports.Add(fmt.Sprintf("%d-%d", r.Lo, r.Hi)); err != nil {
			return nil, err
		}
	}
	if cfg.DatabaseEnabled() {
		w, err := cdr.NewWriter(cfg, log, cdr.WithVersion(version))
		if err != nil {
			return nil, err
		}
		d.writer = w
	}
	callCfg := call.Config{OnCallEnd: d.callEnded, OnRegister: d.registerChanged}
	if fl.capture != "" && !fl.realtime {
		callCfg.IdleTimeout = -1 // a file's clock may jump; EOF ends every call
	}
	snCfg := sniffer.Config{SIPPorts: ports, Call: callCfg, Logger: log}
	if sp, err := newSpool(cfg, log, func(ref uint64) bool { return d.sn.Table().Paused(ref) }); err != nil {
		return nil, err
	} else if sp != nil {
		d.spool = sp
		snCfg.Media, snCfg.SIPHook = sp, sp.SIP
	}
	d.sn = sniffer.New(snCfg)
	if cfg.ManagerPort > 0 || cfg.ManagerSocket != "" {
		addr := ""
		if cfg.ManagerPort > 0 {
			addr = net.JoinHostPort(cfg.ManagerIP, strconv.Itoa(cfg.ManagerPort))
		}
		mcfg := manager.Config{
			Addr:              addr,
			Socket:            cfg.ManagerSocket,
			EnableUnencrypted: cfg.ManagerEnableUnencrypted,
			Calls:             managerCalls{d.sn},
			SpoolDir:          cfg.SpoolDir,
			SensorID:          cfg.IDSensor,
			Build:             "pbx-agent " + version,
			Location:          time.UTC,
			Logger:            log,
		}
		if cfg.ManagerAESKey != "" {
			key, err := manager.ParseAESKey(cfg.ManagerAESKey, cfg.ManagerAESIV)
			if err != nil {
				return nil, err
			}
			mcfg.Keys = manager.StaticKey(key)
		}
		d.manager = manager.New(mcfg)
	}
	return d, nil
}

// newSpool builds the per-call pcap/audio spool from savesip/savertp/
// saveaudio, or returns nil when nothing is to be saved.
func newSpool(cfg *config.Config, log *slog.Logger, paused func(ref uint64) bool) (*spool.Spool, error) {
	mode, err := spool.ParseRTPMode(cfg.SaveRTP)
	if err != nil {
		return nil, err
	}
	audio := ""
	if cfg.SaveAudio == "wav" {
		audio = "wav"
	} else if cfg.SaveAudio != "" && cfg.SaveAudio != "no" {
		log.Warn("saveaudio format not supported; writing no audio", "saveaudio", cfg.SaveAudio)
	}
	if !cfg.SaveSIP && mode == spool.RTPOff && audio == "" {
		return nil, nil
	}
	return spool.New(spool.Config{Dir: cfg.SpoolDir, SaveSIP: cfg.SaveSIP, SaveRTP: mode, SaveRTCP: mode != spool.RTPOff,
		SaveAudio: audio, Location: time.UTC, Logger: log}, paused)
}

func (d *daemon) callEnded(c *call.CDR) {
	if d.spool != nil {
		d.spool.CallEnded(c)
	}
	d.log.Info("call", "callid", c.CallID, "calldate", c.CallDate.Format(timeLayout), "caller", c.Caller, "called", c.Called,
		"duration", seconds(c.Duration()), "connect_duration", seconds(c.ConnectDuration()), "lastSIPresponse", c.LastSIPResponse,
		"bye", int(c.Bye), "rtp_streams", len(c.Streams))
	if d.writer != nil {
		if err := d.writer.Enqueue(c); err != nil {
			d.log.Error("CDR not queued", "callid", c.CallID, "err", err)
		}
	}
}

func (d *daemon) registerChanged(r *call.Register) {
	d.log.Debug("register", "aor", r.ToNum+"@"+r.ToDomain, "state", registerStateName(r.State), "expires", r.Expires)
	if d.writer != nil {
		if err := d.writer.EnqueueRegister(r); err != nil {
			d.log.Error("REGISTER not queued", "aor", r.ToNum, "err", err)
		}
	}
}

func (d *daemon) run(ctx context.Context) error {
	servers, stopServers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServers()
	g, _ := errgroup.WithContext(servers)
	if d.writer != nil {
		writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
		defer stopWriter()
		g.Go(func() error { return d.writer.Run(writerCtx) })
		defer func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
			defer cancel()
			if err := d.writer.Flush(fctx); err != nil {
				d.log.Error("CDR flush", "err", err)
			}
			stopWriter()
		}()
	}
	if d.manager != nil {
		g.Go(func() error {
			err := d.manager.ListenAndServe(servers)
			if errors.Is(err, manager.ErrServerClosed) {
				return nil
			}
			return err
		})
	}

	capErr := d.capture(ctx)
	// Ordered shutdown: capture has stopped; close open calls (their CDRs go
	// to the writer), then the writer flushes (deferred above), then servers.
	d.sn.Flush()
	if d.spool != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		if err := d.spool.Close(sctx); err != nil {
			d.log.Error("spool close", "err", err)
		}
		cancel()
	}
	if capErr == nil && d.fl.capture != "" && !d.fl.exitAfterReplay {
		d.log.Info("capture file read; serving until stopped", "file", d.fl.capture)
		<-ctx.Done()
	}
	if d.manager != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = d.manager.Shutdown(sctx)
		cancel()
	}
	stopServers()
	werr := g.Wait()
	if capErr != nil && !errors.Is(capErr, context.Canceled) {
		return capErr
	}
	d.log.Info("pbx-agent stopped", "calls_started", d.sn.Table().Stats().CallsStarted)
	return werr
}

// capture runs the packet source until it ends or ctx is cancelled.
func (d *daemon) capture(ctx context.Context) error {
	if d.manager != nil {
		d.manager.SetReady(true)
	}
	file := d.fl.capture
	if file == "" && len(d.cfg.Interface) == 0 {
		// The embedded default: replay the bundled capture at its recorded
		// pace, over and over, so listcalls, the web API and live listening
		// always have calls to show.
		d.log.Info("no interface configured; replaying the bundled capture at its recorded pace, in a loop", "file", defaultCapture)
		for ctx.Err() == nil {
			if err := d.sn.ReplayFile(ctx, defaultCapture, sniffer.RunOptions{Realtime: true}); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			d.sn.Flush()
		}
		return nil
	}
	if file != "" {
		err := d.sn.ReplayFile(ctx, file, sniffer.RunOptions{Realtime: d.fl.realtime})
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	if len(d.cfg.Interface) > 1 {
		d.log.Warn("several interfaces configured; capturing on the first", "interface", d.cfg.Interface[0])
	}
	src, err := capture.OpenLive(capture.LiveOptions{Interface: d.cfg.Interface[0], Filter: capture.UDPPortFilter()})
	if err != nil {
		return err
	}
	defer src.Close()
	d.log.Info("capturing", "interface", d.cfg.Interface[0])
	err = d.sn.Run(ctx, src, sniffer.RunOptions{})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// managerCalls adapts the sniffer to the manager API's view of calls.
type managerCalls struct{ sn *sniffer.Sniffer }

func (m managerCalls) Active() []call.CDR                 { return m.sn.ActiveCalls() }
func (m managerCalls) Lookup(ref uint64) (call.CDR, bool) { return m.sn.Lookup(ref) }
func (m managerCalls) Registers() []call.Register         { return m.sn.Table().Registers() }
func (m managerCalls) Pause(ref uint64, on bool) error {
	if err := m.sn.Table().SetPaused(ref, on); errors.Is(err, call.ErrNoCall) {
		return manager.ErrCallNotFound
	} else if err != nil {
		return err
	}
	return nil
}
