package main

import (
	"cmp"
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/bpf"
	"golang.org/x/sync/errgroup"

	"pbx-agent/agent/cdr"
	"pbx-agent/agent/config"
	"pbx-agent/agent/correlate"
	"pbx-agent/agent/dbconn"
	"pbx-agent/agent/demo"
	"pbx-agent/agent/discover"
	"pbx-agent/agent/health"
	"pbx-agent/agent/manager"
	"pbx-agent/agent/manager/wire"
	"pbx-agent/agent/metrics"
	"pbx-agent/agent/recording"
	"pbx-agent/agent/sdnotify"
	"pbx-agent/agent/sensors"
	"pbx-agent/agent/tap"
	"pbx-agent/ami"
	"pbx-agent/ami/ari"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/spool"
	"pbx-agent/webui"
	"pbx-agent/webui/player"
)

const defaultConfigPath = "/etc/pbx-agent/pbx-agent.conf"

//go:embed default.conf
var embeddedConfig []byte

// shutdownGrace bounds the ordered shutdown (flush calls, CDRs, spool).
const shutdownGrace = 30 * time.Second

// daemonFlags are the daemon's command line (agent/README.md).
type daemonFlags struct {
	config          string
	capture         string
	realtime        bool
	exitAfterReplay bool
	set             map[string]string
	version         bool          // --version: print it, run nothing
	amiTranscript   string        // -ami: recorded AMI session beside -r
	transcript      *transcript   // loaded from amiTranscript
	embedded        bool          // running on the embedded default config
	ari             *discover.ARI // ARI endpoint found in http.conf/ari.conf
}

func parseDaemonFlags(args []string, stderr io.Writer) (*daemonFlags, error) {
	f := &daemonFlags{set: map[string]string{}}
	fs := flag.NewFlagSet("pbx-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_ = writeUsage(stderr)
		fmt.Fprintln(stderr, "\ndaemon flags (each replaces the config file's value):")
		fs.PrintDefaults()
	}
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.StringVar(&f.config, "config", defaultConfigPath, "config file (voipmonitor.conf-style INI)")
	fs.StringVar(&f.capture, "r", "", "read packets from a pcap/pcapng file instead of an interface")
	fs.BoolVar(&f.realtime, "realtime", false, "with -r: feed packets at their recorded pace")
	fs.BoolVar(&f.exitAfterReplay, "exit-after-replay", false, "with -r: stop once the file is read")
	fs.StringVar(&f.amiTranscript, "ami", "", "with -r: a recorded AMI session of the same calls (as `pbx-agent replay -ami`): the dashboard shows their Asterisk channels")
	addSetFlag(fs, f.set)
	for _, k := range []string{"interface", "sipport", "id_sensor", "spooldir", "managerip", "managerport", "managersocket", "http_bind", "mysqlhost", "mysqlport", "mysqlsocket", "mysqldb", "mysqlusername", "mysqlpassword"} {
		fs.Func(k, "config key "+k+" (overrides the file)", func(v string) error { f.set[k] = v; return nil })
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return f, nil
}

// loadConfig reads the config file; a missing default file (or -config "")
// means the embedded default (a fresh clone, `make run`), reported by
// embedded.
func loadConfig(path string, set map[string]string, logger *slog.Logger) (cfg *config.Config, embedded bool, err error) {
	if path != "" { // -config "" asks for the embedded default
		cfg, err = config.Load(path, set)
		if err == nil || path != defaultConfigPath || !errors.Is(err, fs.ErrNotExist) {
			return cfg, false, err
		}
	}
	logger.Info("no config file; using the embedded default", "path", path)
	cfg, err = config.Parse("embedded default.conf", embeddedConfig, set)
	if err == nil && set["spooldir"] == "" {
		// Any folder, any user: the demo's spool goes to the temp dir.
		cfg.SpoolDir = filepath.Join(os.TempDir(), fmt.Sprintf("pbx-agent-demo-%d", os.Getuid()))
	}
	return cfg, true, err
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
	if fl.version {
		_, err := fmt.Fprintf(stdout, "pbx-agent %s\n", version)
		return err
	}
	if fl.amiTranscript != "" {
		if fl.capture == "" {
			return usageError{errors.New("-ami TRANSCRIPT goes with -r CAPTURE (the recorded AMI session of the same calls)")}
		}
		if fl.transcript, err = loadTranscript(fl.amiTranscript); err != nil {
			return err
		}
	}
	boot := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, embedded, err := loadConfig(fl.config, fl.set, boot)
	if err != nil {
		return err
	}
	fl.embedded = embedded
	log := newLogger(cfg, stderr)
	// The zone of every stored time and spool directory (utc, timezone):
	// said once, as a restart that changes it mixes two zones in one table.
	log.Info("pbx-agent starting", "version", version, "config", cfg.Path, "time_zone", zoneLabel(cfg))
	if w := cfg.NoEffectWarning(); w != "" {
		log.Warn(w)
	}
	for _, w := range cfg.Warnings { // from Load: settings VoIPmonitor ignores (half a MySQL key pair)
		log.Warn(w)
	}
	if !embedded {
		// Fill what the config leaves empty from Asterisk's own files;
		// explicit settings always win, each discovered value is logged once.
		res, err := discover.Run(cfg, log)
		if err != nil {
			log.Warn("auto-discovery incomplete", "err", err)
		}
		if res != nil && res.ARI != nil {
			fl.ari = res.ARI
		}
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
	db      *sql.DB // nil without a database
	web     *webui.Handler
	http    *webui.Server // nil when http_bind is empty
	reg     *prometheus.Registry
	notify  *sdnotify.Notifier
	ami     *ami.Client // nil without an AMI login
	amiSub  *ami.Subscription
	ari     *ari.Client // nil without ARI
	rec     *recording.Orchestrator
	tap     *tap.Tapper // ARI snoop + externalMedia for calls the sniffer cannot hear; nil without AMI+ARI
	player  *player.Handler
	sensors *sensors.Registry // nil without a database
	remote  *sensors.Client   // the other sensors' manager APIs; nil without a database
	hep     hepParts          // HEP input listeners and output (hep.go)

	// capState is what /readyz says of the packet source.
	capState captureState
	// replayed is the channel table of a recorded AMI session replayed
	// beside the capture (-ami, the demo); nil otherwise.
	replayed atomic.Pointer[ami.Tracker]
}

func newDaemon(cfg *config.Config, fl *daemonFlags, log *slog.Logger) (*daemon, error) {
	d := &daemon{cfg: cfg, fl: fl, log: log}
	var ports sniffer.PortSet
	for _, r := range cfg.SIPPorts {
		if err := ports.Add(fmt.Sprintf("%d-%d", r.Lo, r.Hi)); err != nil {
			return nil, err
		}
	}
	if cfg.DatabaseEnabled() && cfg.Sniffer {
		w, err := cdr.New(cdrOptions(cfg), log)
		if err != nil {
			return nil, err
		}
		d.writer = w
	}
	callCfg := call.Config{OnCallEnd: d.callEnded, OnRegister: d.registerChanged,
		IdleTimeout: cfg.RTPTimeout, SIPOnlyTimeout: cfg.SIPOnlyTimeout, MaxDuration: cfg.MaxCallDuration, OneWayTimeout: cfg.OneWayTimeout, NATAliases: cfg.NATAliases,
		Register: registerRules(cfg), CalledFromURI: cfg.DestinationNumberMode == 2, LastDestNumber: cfg.LastDestNumber, NoSIPOverlap: !cfg.SIPOverlap, UpdateDstnumOnAnswer: cfg.UpdateDstnumOnAnswer,
		CallerID: call.CallerID{PAssertedIdentity: cfg.PAssertedIdentity, PPreferredIdentity: cfg.PPreferredIdentity,
			RemotePartyID: cfg.RemotePartyID, RemotePartyFirst: cfg.RemotePartyPriority, NumberWithParams: !cfg.CallerNumberOnly}}
	if fl.capture != "" && !fl.realtime {
		callCfg.IdleTimeout = -1 // a file's clock may jump; EOF ends every call
	}
	snCfg := sniffer.Config{SIPPorts: ports, SIPByPortOnly: !cfg.SIPDetect, VXLANPort: uint16(cfg.VXLANPort), SaveGraph: cfg.SaveGraph, FaxDetect: cfg.FaxDetect,
		IgnoreRTPAfterByeOK: cfg.IgnoreRTPAfterByeOK,
		IPv4Only:            !cfg.IPv6, // ipv6 = no: IPv6 packets are ignored, as VoIPmonitor's
		// Several interfaces may carry the same packet: always deduplicated.
		Deduplicate: cfg.Deduplicate || capture.Several(strings.Join(cfg.Interface, ",")),
		Call:        callCfg, Logger: log, Workers: mediaWorkers(cfg)}
	snCfg.F1, snCfg.F2, snCfg.Adapt = jitterBuffers(cfg)
	// A file replayed as fast as it reads must not lose spool packets: the
	// packet path then waits for the disk (live capture never does).
	waitForDisk := fl.capture != "" && !fl.realtime
	if !cfg.Sniffer {
		log.Info("sniffer = no: web front end without capture (no spool, no CDRs of its own)")
	} else if sp, err := newSpool(cfg, log, waitForDisk); err != nil {
		return nil, err
	} else if sp != nil {
		d.spool = sp
		snCfg.Media, snCfg.SIPHook = sp, sp.SIP
	}
	if err := d.newHEP(&snCfg); err != nil {
		return nil, err
	}
	d.sn = sniffer.New(snCfg)
	if err := d.listenHEP(); err != nil {
		return nil, err
	}
	d.newAsterisk()
	if cfg.ManagerPort > 0 || cfg.ManagerSocket != "" {
		addr := ""
		if cfg.ManagerPort > 0 {
			addr = net.JoinHostPort(cfg.ManagerIP, strconv.Itoa(cfg.ManagerPort))
		}
		mcfg := manager.Config{
			Addr:              addr,
			Socket:            cfg.ManagerSocket,
			EnableUnencrypted: cfg.ManagerEnableUnencrypted,
			MaxConnsPerSource: cfg.ManagerConnsPerSource,
			FirstByteTimeout:  cfg.ManagerFirstByteTimeout,
			AESMaxFailures:    cfg.ManagerAESMaxFailures,
			AESBlock:          cfg.ManagerAESBlock,
			Calls:             managerCalls{sn: d.sn, rec: d.rec, audit: d.auditPause},
			SpoolDir:          cfg.SpoolDir,
			SensorID:          cfg.IDSensor,
			Build:             "pbx-agent " + version,
			Location:          cfg.TimeLocation(), // listcalls/listregisters times, as VoIPmonitor's (utc, timezone)
			ZoneName:          cfg.ZoneName(),
			Logger:            log,
			Stats:             d.managerStats,
			Reload:            d.managerReload,
		}
		if d.spool != nil {
			mcfg.Audio = pcmAudio{d.spool}
			mcfg.Commands = map[string]manager.Command{"listen_stream": manager.ListenStreamCommand(d.spool)}
		}
		if cfg.ManagerAESKey != "" {
			key, err := wire.ParseAESKey(cfg.ManagerAESKey, cfg.ManagerAESIV)
			if err != nil {
				return nil, err
			}
			mcfg.Keys = wire.StaticKey(key)
		}
		d.manager = manager.New(mcfg)
	}
	if err := d.newWeb(); err != nil {
		return nil, err
	}
	d.notify = sdnotify.FromEnv()
	return d, nil
}

// newAsterisk builds the AMI client (when a login is configured or was
// discovered), the ARI client (when found), and the recording orchestrator
// that pauses the sniffer and Asterisk's recordings together.
func (d *daemon) newAsterisk() {
	cfg, log := d.cfg, d.log
	rc := recording.Config{Calls: d.sn.Table(), Logger: log}
	if cfg.AMIUser != "" && cfg.AMISecret != "" {
		host := cfg.AMIHost
		if host == "" {
			host = "127.0.0.1"
		}
		d.ami = ami.New(ami.Config{Addr: net.JoinHostPort(host, strconv.Itoa(cfg.AMIPort)), Username: cfg.AMIUser, Secret: cfg.AMISecret, MD5: cfg.AMIAuthMD5, Logger: log})
		d.amiSub = d.ami.Subscribe(1024)
		rc.AMI, rc.Channels = d.ami, d.ami.Tracker()
	} else if !d.fl.embedded {
		log.Info("no AMI login configured or discovered; Asterisk channels are not followed")
	}
	if a := d.fl.ari; a != nil && a.URL != "" {
		d.ari = ari.New(ari.Config{URL: a.URL, Username: a.User, Password: a.Password, SubscribeAll: true, Logger: log})
		rc.ARI = d.ari
	}
	d.rec = recording.New(rc)
	if d.ami != nil && d.ari != nil {
		t, err := tap.New(d.tapConfig())
		if err != nil {
			log.Warn("ARI tap unavailable", "err", err)
		} else {
			d.tap = t
		}
	}
}

// tapConfig is the ARI tap's configuration: stereo (Split: one snoop per
// direction, caller left and callee right, as the sniffer's own audio).
func (d *daemon) tapConfig() tap.Config {
	return tap.Config{ARI: d.ari, Listen: "127.0.0.1:0", Prefix: fmt.Sprintf("pbxagent-tap-%d-", d.cfg.IDSensor), Logger: d.log,
		Target: d.tapTarget, Paused: d.sn.Table().Paused, Split: true,
		Active: func(ref uint64) bool { _, ok := d.sn.Lookup(ref); return ok }}
}

// tapTarget finds the Asterisk channel of a sniffed call for the ARI tap.
func (d *daemon) tapTarget(ref uint64) (tap.Target, bool) {
	c, ok := d.sn.Lookup(ref)
	if !ok {
		return tap.Target{}, false
	}
	return channelTarget(d.ami.Tracker().Channels(), c.CallID)
}

// channelTarget is the channel of the SIP dialog callID. A channel Asterisk
// placed (a Dial's callee leg: linked to another channel) faces the SIP
// callee, so what it sends Asterisk is the callee's voice (Outbound).
func channelTarget(chs []ami.Channel, callID string) (tap.Target, bool) {
	for _, ch := range chs {
		if ch.CallID == callID {
			return tap.Target{Channel: ch.Uniqueid, Outbound: ch.Linkedid != "" && ch.Linkedid != ch.Uniqueid}, true
		}
	}
	return tap.Target{}, false
}

// useTap says when live listening goes through ARI: encrypted media (SRTP
// in the SDP), or RTP the sniffer sees but cannot decode.
func (d *daemon) useTap(ref uint64) bool {
	if c, ok := d.sn.Lookup(ref); ok && c.SRTP {
		return true
	}
	return d.spool != nil && tap.Undecodable(d.spool.AudioStats, 50)(ref)
}

// newWeb builds the metrics registry and the web APIs (VoIPmonitor's
// php/ routes, /metrics) on http_bind.
func (d *daemon) newWeb() error {
	cfg, log := d.cfg, d.log
	d.reg = metrics.NewRegistry(version)
	if cfg.DatabaseEnabled() {
		db, err := dbconn.Open(webDSN(cfg), log)
		if err != nil {
			return fmt.Errorf("web API database: %w", err)
		}
		d.db = db
	}
	wo := webui.Options{
		DB: d.db, Users: loadWebUsers(cfg, log), DisableAuth: cfg.APIDisableAuth,
		Calls: managerCalls{sn: d.sn, rec: d.rec},
		Spool: webui.DirSpool{Root: cfg.SpoolDir, Location: cfg.TimeLocation()}, SensorID: cfg.IDSensor, Logger: log,
		Location:  cfg.TimeLocation(), // the zone of stored times (utc, timezone)
		CallsNow:  d.sn.Now,           // a replayed capture's clock while it plays
		PublicURL: cfg.HTTPPublicURL, BindAddr: cfg.HTTPBind, AllowedHosts: cfg.HTTPAllowedHosts,
	}
	if d.db != nil {
		// Many sensors, one database: this agent keeps its `sensors` row
		// fresh and reaches the others through their manager APIs.
		if err := d.newSensors(&wo); err != nil {
			return err
		}
	}
	d.web = webui.New(wo)
	d.healthProbe().Register(d.web)
	d.web.Handle("GET /metrics", metrics.Handler(d.reg, log))
	po := player.Options{Auth: d.web, Calls: d.sn, SensorID: cfg.IDSensor, Channels: d.channelNames, Logger: log, Now: d.sn.Now,
		Location: cfg.TimeLocation()}
	switch {
	case d.tap != nil && d.spool != nil:
		po.Audio = tap.Source{Local: d.spool, Tap: d.tap, UseTap: d.useTap}
	case d.tap != nil:
		po.Audio = tap.Source{Tap: d.tap, UseTap: func(uint64) bool { return true }}
	case d.spool != nil:
		po.Audio = d.spool
	}
	if d.remote != nil {
		po.RemoteLookup = d.remote.PlayerLookup // any online sensor's calls
	}
	d.player = player.New(po)
	d.player.Mount(d.web)
	if cfg.HTTPBind != "" {
		d.http = webui.NewServer(webui.ServerConfig{Addr: cfg.HTTPBind, TLSCert: cfg.HTTPTLSCert, TLSKey: cfg.HTTPTLSKey, Logger: log}, d.web)
	}
	return d.registerMetrics()
}

// newSensors registers this agent in `sensors` and gives the web APIs a
// client to the other sensors (their active calls, pause, files).
func (d *daemon) newSensors(wo *webui.Options) error {
	cfg := d.cfg
	self := sensors.Self{ID: cfg.IDSensor, Name: cfg.SensorName, Host: sensors.AdvertiseHost(cfg.ManagerIP), Port: cfg.ManagerPort, Version: version,
		Location: cfg.TimeLocation(), ZoneName: cfg.ZoneName()}
	keys := &sensors.Keys{DB: d.db, PerSensor: map[int]wire.AESKey{}}
	for _, v := range cfg.SensorManagerKeys {
		id, k, err := sensors.ParseSensorKey(v)
		if err != nil {
			return err
		}
		keys.PerSensor[id] = k
	}
	if cfg.ManagerAESKey != "" {
		k, err := wire.ParseAESKey(cfg.ManagerAESKey, cfg.ManagerAESIV)
		if err != nil {
			return err
		}
		keys.Default = &k
		self.KeyID = sensors.KeyID(k)
	}
	reg, err := sensors.New(sensors.Options{DB: d.db, Self: self, Heartbeat: cfg.SensorHeartbeat, StaleAfter: cfg.SensorOfflineAfter, Logger: d.log})
	if err != nil {
		return err
	}
	d.sensors = reg
	client := sensors.NewClient(sensors.ClientOptions{Dir: reg, Keys: keys, Logger: d.log})
	d.remote = client
	wo.Remote = sensors.WebRemote{Client: client}
	// The other sensors' spools are named in this agent's zone: a site's
	// sensors share utc/timezone, as they share one database.
	wo.Spool = sensors.Spool{Local: wo.Spool, Client: client, Location: cfg.TimeLocation()}
	return nil
}

// channelNames lists the Asterisk channels of a call (dashboard), when AMI
// is followed.
func (d *daemon) channelNames(c *call.CDR) []string {
	tr := d.tracker()
	if tr == nil {
		return nil
	}
	var names []string
	for _, ch := range tr.Channels() {
		if ch.CallID == c.CallID {
			names = append(names, ch.Name)
		}
	}
	return names
}

// tracker is the Asterisk channel table: the AMI login's, else a recorded
// AMI session's (-ami, the demo); nil when neither.
func (d *daemon) tracker() *ami.Tracker {
	if d.ami != nil {
		return d.ami.Tracker()
	}
	return d.replayed.Load()
}

// webDSN is the CDR database for the web APIs: VoIPmonitor's latin1 tables.
// Times are read as strings (parseTime=false) and interpreted in the zone
// of stored times by webui (Options.Location); no time.Time is passed as
// an argument, so loc=UTC here changes nothing.
func webDSN(cfg *config.Config) string {
	dsn := cfg.MySQLDSN()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "collation=latin1_swedish_ci&loc=UTC&parseTime=false&interpolateParams=true"
}

// loadWebUsers reads the web API users: manager.conf's, then users_file's.
// A missing manager.conf is not fatal (the API then refuses everyone unless
// api_disable_auth is set).
func loadWebUsers(cfg *config.Config, log *slog.Logger) []webui.User {
	var users []webui.User
	if cfg.AsteriskManagerConf != "" {
		u, err := webui.LoadManagerUsers(cfg.AsteriskManagerConf)
		if err != nil {
			log.Warn("web API users: manager.conf not read", "err", err)
		}
		users = append(users, u...)
	}
	if cfg.UsersFile != "" {
		u, err := webui.LoadUsersFile(cfg.UsersFile)
		if err != nil {
			log.Warn("web API users: users_file not read", "err", err)
		}
		users = append(users, u...)
	}
	return users
}

// reload re-reads what can change without a restart (SIGHUP): web users.
func (d *daemon) reload() {
	_ = d.notify.Reloading()
	d.web.SetUsers(loadWebUsers(d.cfg, d.log))
	d.log.Info("reloaded", "what", "web API users")
	_ = d.notify.Ready()
}

// newSpool builds the per-call pcap/audio spool from savesip/savertp/
// saveaudio, or returns nil when nothing is to be saved.
func newSpool(cfg *config.Config, log *slog.Logger, waitForDisk bool) (*spool.Spool, error) {
	mode, err := spool.ParseRTPMode(cfg.SaveRTP)
	if err != nil {
		return nil, err
	}
	audio := ""
	switch cfg.SaveAudio {
	case "wav", "ogg":
		audio = cfg.SaveAudio
	case "", "no":
	default:
		log.Warn("saveaudio format not supported; writing no audio", "saveaudio", cfg.SaveAudio)
	}
	rtcp := mode != spool.RTPOff
	if cfg.SaveRTCP != nil {
		rtcp = *cfg.SaveRTCP
	}
	if !cfg.SaveSIP && mode == spool.RTPOff && !rtcp && audio == "" {
		return nil, nil
	}
	// 40 ms of wait for late packets keeps live listening under 100 ms.
	zip := func(on bool, level int) int {
		if on {
			return level
		}
		return 0
	}
	return spool.New(spool.Config{Dir: cfg.SpoolDir, SaveSIP: cfg.SaveSIP, SaveRTP: mode, SaveRTCP: rtcp,
		SaveAudio: audio, AudioMono: !cfg.SaveAudioStereo, AudioDelay: 40 * time.Millisecond, WaitForDisk: waitForDisk, Location: cfg.TimeLocation(),
		ZipSIP: zip(cfg.PcapZipSIP, cfg.PcapZipLevelSIP), ZipRTP: zip(cfg.PcapZipRTP, cfg.PcapZipLevelRTP),
		IOWorkers: runtime.GOMAXPROCS(0), // they also compress
		Shards:    mediaWorkers(cfg),     // one lock per media worker
		Pool:      poolLimits(cfg, waitForDisk), Logger: log})
}

// mediaWorkers is the number of media workers (rtpthreads, default one per
// core).
func mediaWorkers(cfg *config.Config) int { return cmp.Or(cfg.RTPThreads, runtime.NumCPU()) }

// poolLimits are the spool's maxpool* limits (none with cleanspool = no).
// A file replayed at full speed keeps its size limits but not its age
// limits: an old capture's calls would be removed as soon as written.
func poolLimits(cfg *config.Config, fileReplay bool) spool.PoolLimits {
	if !cfg.CleanSpool {
		return spool.PoolLimits{}
	}
	mb := func(n int) int64 { return int64(n) << 20 }
	p := spool.PoolLimits{Size: mb(cfg.MaxPoolSizeMB), Days: cfg.MaxPoolDays,
		SIPSize: mb(cfg.MaxPoolSIPSizeMB), RTPSize: mb(cfg.MaxPoolRTPSizeMB), AudioSize: mb(cfg.MaxPoolAudioSizeMB),
		SIPDays: cfg.MaxPoolSIPDays, RTPDays: cfg.MaxPoolRTPDays, AudioDays: cfg.MaxPoolAudioDays,
		Interval: cfg.CleanSpoolInterval}
	if fileReplay {
		p.Days, p.SIPDays, p.RTPDays, p.AudioDays = 0, 0, 0, 0
	}
	return p
}

func (d *daemon) callEnded(c *call.CDR) {
	if d.spool != nil {
		d.spool.CallEnded(c)
	}
	d.log.Info("call", "callid", c.CallID, "calldate", c.CallDate.Format(timeLayout), "caller", c.Caller, "called", c.Called,
		"duration", seconds(c.Duration()), "connect_duration", seconds(c.ConnectDuration()), "lastSIPresponse", c.LastSIPResponse,
		"bye", int(c.Bye), "rtp_streams", len(c.Streams))
	if d.writer != nil {
		// The call's Asterisk channel, Linkedid and hang-up cause go with
		// its CDR (cdr_asterisk): the channel hung up before the call's
		// end grace ran out.
		var a *cdr.Asterisk
		if tr := d.tracker(); tr != nil {
			a = correlate.Record(c, tr, correlate.DefaultSlack)
		}
		if err := d.writer.EnqueueCorrelated(c, a); err != nil {
			d.log.Error("CDR not queued", "callid", c.CallID, "err", err)
		}
	}
}

func (d *daemon) registerChanged(r *call.Register) {
	d.log.Debug("register", "aor", r.ToNum+"@"+r.ToDomain, "state", r.State.Name(), "expires", r.Expires)
	if d.writer != nil {
		if err := d.writer.EnqueueRegister(r); err != nil {
			d.log.Error("REGISTER not queued", "aor", r.ToNum, "err", err)
		}
	}
}

func (d *daemon) run(ctx context.Context) error {
	// Every listener is bound before anything starts and before READY: a
	// port in use stops the daemon here, with a non-zero exit.
	ls, err := d.bind(ctx)
	if err != nil {
		return err
	}
	if d.manager != nil {
		// Ready before anything serves: the HTTP API never answers while the
		// manager API still closes connections unanswered.
		d.manager.SetReady(true)
	}
	servers, stopServers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServers()
	g, failed := errgroup.WithContext(servers)
	// A part that fails once running (its error is g's first) stops the
	// daemon as SIGTERM does: capture ends, then the ordered shutdown below.
	ctx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	defer context.AfterFunc(failed, stopCapture)()
	if d.spool != nil {
		// Its workers write until spool.Close (in closeCalls, after capture)
		// has written everything out; servers ends only after that.
		g.Go(func() error { return d.spool.Run(servers) })
	}
	stopPlayer := d.runPlayer(ctx)
	stopCDRs := d.runCDRs(ctx, g)
	d.serve(g, servers, ls)
	stopHEP := d.runHEP(g, servers)

	capErr := d.capture(ctx)
	stopHEP()
	if capErr != nil {
		d.capState.set(health.CaptureStopped)
	}
	_ = d.notify.Stopping()
	// Ordered shutdown: capture has stopped; close open calls (their CDRs go
	// to the writer), then the listeners end, the writer flushes (stopCDRs),
	// then servers.
	d.closeCalls(ctx)
	if capErr == nil && d.fl.capture != "" && !d.fl.exitAfterReplay {
		d.log.Info("capture file read; serving until stopped", "file", d.fl.capture)
		<-ctx.Done()
	}
	if d.manager != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = d.manager.Shutdown(sctx)
		cancel()
	}
	stopPlayer()
	stopCDRs()
	stopServers()
	werr := g.Wait()
	if d.db != nil {
		d.db.Close()
	}
	if werr != nil {
		d.log.Error("pbx-agent stopped: a part failed", "err", werr)
	}
	if capErr != nil && !errors.Is(capErr, context.Canceled) {
		return capErr
	}
	d.log.Info("pbx-agent stopped", "calls_started", d.sn.Table().Stats().CallsStarted)
	return werr
}

// runPlayer runs the player; the returned stop ends its listeners (before
// the CDR flush) and waits for them.
func (d *daemon) runPlayer(ctx context.Context) (stop func()) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- d.player.Run(pctx) }()
	return func() {
		cancel()
		<-done
	}
}

// runCDRs runs the CDR writer in g. The returned stop flushes what is
// queued (within shutdownGrace) and ends the writer: call it before g.Wait,
// the writer's Run returns only once stopped.
func (d *daemon) runCDRs(ctx context.Context, g *errgroup.Group) (stop func()) {
	if d.writer == nil {
		return func() {}
	}
	wctx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	g.Go(func() error { return d.writer.Run(wctx) })
	return func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		if err := d.writer.Flush(fctx); err != nil {
			d.log.Error("CDR flush", "err", err)
		}
		stopWriter()
	}
}

// serve runs in g, until servers ends, the APIs on their bound listeners
// (manager, HTTP, metrics), the sensors client, the AMI and ARI clients,
// the recorder, the tap, the status log and the SIGHUP reload.
func (d *daemon) serve(g *errgroup.Group, servers context.Context, ls *listeners) {
	if d.manager != nil {
		g.Go(func() error {
			err := d.manager.ListenAndServe(servers)
			if errors.Is(err, manager.ErrServerClosed) {
				return nil
			}
			if err != nil {
				d.log.Error("manager API stopped", "err", err)
			}
			return err
		})
	}
	if d.http != nil {
		g.Go(func() error {
			err := d.http.ServeContext(servers, ls.http)
			if err != nil {
				d.log.Error("HTTP server stopped", "err", err)
			}
			return err
		})
	}
	if d.sensors != nil {
		g.Go(func() error { return ignoreCanceled(d.sensors.Run(servers)) })
	}
	if d.cfg.MetricsBind != "" {
		g.Go(func() error { return metrics.ServeListener(servers, ls.metrics, d.reg, d.log) })
	}
	if d.ami != nil {
		g.Go(func() error { return ignoreCanceled(d.ami.Run(servers)) })
	}
	var ariUpdates <-chan ari.Update
	if d.ari != nil {
		ariUpdates = d.ari.Updates()
		g.Go(func() error { return ignoreCanceled(d.ari.Run(servers)) })
	}
	var amiNotes <-chan ami.Notification
	if d.amiSub != nil {
		amiNotes = d.amiSub.C()
	}
	g.Go(func() error { return ignoreCanceled(d.rec.Run(servers, amiNotes, ariUpdates)) })
	if d.tap != nil {
		g.Go(func() error { return ignoreCanceled(d.tap.Run(servers)) })
	}
	g.Go(func() error { d.logStatus(servers, statusEvery); return nil })
	if testPart != nil {
		g.Go(func() error { return testPart(servers) })
	}
	// SIGHUP is caught from here on (its default would end the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	g.Go(func() error {
		defer signal.Stop(hup)
		for {
			select {
			case <-servers.Done():
				return nil
			case <-hup:
				d.reload()
			}
		}
	})
}

// closeCalls ends the calls still open once capture has stopped (their CDRs
// go to the writer) and writes the spool out, within shutdownGrace.
func (d *daemon) closeCalls(ctx context.Context) {
	d.sn.Flush()
	if d.spool != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		if err := d.spool.Close(sctx); err != nil {
			d.log.Error("spool close", "err", err)
		}
		cancel()
	}
}

// capture runs the packet source until it ends or ctx is cancelled.
func (d *daemon) capture(ctx context.Context) error {
	if d.manager != nil {
		d.manager.SetReady(true)
	}
	_ = d.notify.Ready()
	if !d.cfg.Sniffer {
		// A web front end: servers run until SIGTERM.
		d.capState.set(health.CaptureFrontEnd)
		<-ctx.Done()
		return nil
	}
	d.capState.set(health.CaptureRunning)
	switch {
	case d.fl.capture != "":
		return d.replayFile(ctx, d.fl.capture)
	case len(d.cfg.Interface) > 0:
		return d.captureLive(ctx)
	case d.hep.in != nil:
		return d.hepOnly(ctx)
	case !d.fl.embedded:
		return fmt.Errorf("no capture interface configured or discovered: set interface = in %s, or run with -r FILE", d.cfg.Path)
	}
	// The embedded default: replay the bundled capture at its recorded
	// pace, over and over, so listcalls, the web API and live listening
	// always have calls to show.
	d.log.Info("no interface configured; replaying the bundled call at its recorded pace, in a loop, with its recorded AMI session",
		"file", demo.CaptureName)
	for ctx.Err() == nil {
		if err := d.replayDemo(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		d.sn.Flush()
	}
	return nil
}

// replayFile reads the capture file (-r) with its AMI transcript, if any.
func (d *daemon) replayFile(ctx context.Context, file string) error {
	if d.cfg.Filter != "" {
		// VoIPmonitor's -r opens the file without pcap_setfilter too.
		d.log.Info("filter applies to live capture only: -r reads every frame of the file, as VoIPmonitor's -r", "filter", d.cfg.Filter)
	}
	t := d.fl.transcript
	if t != nil && !d.fl.realtime {
		// Read as fast as it goes, the calls end before the session's
		// second half would be applied: its hang-ups (causes) first.
		t = t.whole()
	}
	err := d.withTranscript(t, func() error {
		return d.sn.ReplayFile(ctx, file, sniffer.RunOptions{Realtime: d.fl.realtime})
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if err == nil {
		d.capState.set(health.CaptureReplayed)
	}
	return err
}

// captureLive captures the configured interfaces (eth0,eth1 or any: one
// capture of them all, one call table) until ctx ends. Each
// interface_libpcap_filter entry is a capture of its own (captureSets);
// the frames of all of them go to the one packet path.
func (d *daemon) captureLive(ctx context.Context) error {
	base := capture.UDPPortFilter()
	if !d.cfg.SIPDetect { // SIP only on sipport: the kernel drops TCP/SCTP elsewhere
		ranges := make([]capture.PortRange, len(d.cfg.SIPPorts))
		for i, r := range d.cfg.SIPPorts {
			ranges[i] = capture.PortRange{Lo: r.Lo, Hi: r.Hi}
		}
		base = capture.SIPPortFilter(ranges)
	}
	sets := captureSets(d.cfg)
	// With media workers, one fanout socket per worker, each read by its own
	// goroutine, the workers shared out over the captures.
	per := max(mediaWorkers(d.cfg)/len(sets), 1)
	var srcs []capture.Source
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	for i, set := range sets {
		lives, err := d.openCapture(set, base, i, per)
		if err != nil {
			return err
		}
		for _, l := range lives {
			srcs = append(srcs, l)
		}
		d.log.Info("capturing", "interface", set.iface, "filter", set.expr, "sockets", len(lives))
	}
	err := d.sn.RunSources(ctx, srcs, sniffer.RunOptions{})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// captureSet is one capture of captureLive: its interfaces (a name, a
// list or any) and the pcap-filter expression its sockets keep.
type captureSet struct{ iface, expr string }

// captureSets are the captures the config asks for: the interfaces
// without interface_libpcap_filter entries together, filtered by filter,
// then a capture per entry on its interface filtered by (filter) and
// (entry), as VoIPmonitor opens a pcap handle per entry
// (pcap_queue.cpp:7106-7130, :4075-4084). Overlapping entries capture a
// frame twice, as VoIPmonitor's: deduplicate = yes handles it once.
func captureSets(cfg *config.Config) []captureSet {
	if len(cfg.InterfaceFilters) == 0 {
		return []captureSet{{strings.Join(cfg.Interface, ","), cfg.Filter}}
	}
	var rest []string
	for _, name := range cfg.Interface {
		if !slices.ContainsFunc(cfg.InterfaceFilters, func(f config.InterfaceFilter) bool { return f.Interface == name }) {
			rest = append(rest, name)
		}
	}
	var sets []captureSet
	if len(rest) > 0 {
		sets = append(sets, captureSet{strings.Join(rest, ","), cfg.Filter})
	}
	for _, f := range cfg.InterfaceFilters {
		sets = append(sets, captureSet{f.Interface, cfg.CaptureExpr(f)})
	}
	return sets
}

// openCapture opens capture i's sockets: n in one fanout group (a group
// per capture: the kernel shares a group's frames out among its sockets,
// which must all keep the same frames; capture_fanout's id + i, else one of
// this process), else one. Its expression runs in the kernel after the
// agent's own cut (base).
func (d *daemon) openCapture(set captureSet, base []bpf.Instruction, i, n int) ([]capture.Live, error) {
	user, err := capture.CompileFilter(set.expr)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	prog, err := user.After(base)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	if user != nil {
		d.log.Info("capture filter", "interface", set.iface, "filter", user.String(), "bpf_instructions", len(prog))
	}
	group := func(id int) uint16 {
		if id == 0 {
			return 0
		}
		return uint16((id-1+i)%0xffff + 1)
	}
	opts := capture.LiveOptions{Interface: set.iface, Filter: prog,
		BlockSize: 1 << 20, NumBlocks: max(d.cfg.RingBufferMB, 1), Fanout: group(d.cfg.CaptureFanout), BlockTimeout: d.cfg.CaptureBlockTimeout}
	if n > 1 && opts.Fanout == 0 {
		opts.Fanout = group(os.Getpid()%0xffff + 1)
	}
	lives, err := capture.OpenFanout(opts, n)
	if err != nil && n > 1 {
		d.log.Warn("no fanout sockets, one socket reads the interface", "interface", set.iface, "err", err)
		opts.Fanout = group(d.cfg.CaptureFanout)
		lives, err = capture.OpenFanout(opts, 1)
	}
	return lives, err
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// jitterBuffers are the MOS simulators jitterbuffer_f1, _f2 and _adapt
// configure (F2's size is VoIPmonitor's fixed 200 ms).
func jitterBuffers(cfg *config.Config) (f1, f2, adapt rtp.JBConfig) {
	off := rtp.JBConfig{Size: -1}
	f1, f2, adapt = off, off, off
	if cfg.JitterF1 {
		f1 = rtp.JBConfig{Size: cfg.JitterF1Size, Resync: cfg.JitterF1Resync}
	}
	if cfg.JitterF2 {
		f2 = rtp.DefaultF2
	}
	if cfg.JitterAdapt {
		adapt = rtp.JBConfig{Size: cfg.JitterAdaptSize, Resync: cfg.JitterAdaptResync, Adaptive: true}
	}
	return f1, f2, adapt
}

// zoneLabel names the zone of stored times for the start-up line:
// "UTC (utc = yes)", or the zone's name with its current offset.
func zoneLabel(cfg *config.Config) string {
	loc := cfg.TimeLocation()
	if loc == time.UTC {
		return "UTC (utc = yes)"
	}
	name := cfg.ZoneName()
	abbr, _ := time.Now().In(loc).Zone()
	if name == "" {
		name = abbr
	}
	return name + " (" + abbr + ", utc = no)"
}
